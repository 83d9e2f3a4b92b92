import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  createClient,
  createUser,
  expectOAuthError,
  familyOf,
  login,
  loginOk,
  refresh,
  refreshOk,
  token,
  uniq,
} from "./helpers.ts";

describe.each(DATABASES)("admin API on %s", (kind) => {
  let ti: TestIssuer;

  beforeAll(async () => {
    // The first test sends 30 wrong admin tokens on purpose; failed-authentication throttling
    // has its own test (admin-token-throttling.test.ts).
    ti = await startTestIssuer({ database: kind, env: { EVERGREEN_RATE_LIMIT_AUTH_FAILURES: "1000" } });
  });
  afterAll(() => ti?.close());

  async function call(method: string, path: string, authorization?: string, body?: unknown) {
    const res = await fetch(ti.url + path, {
      method,
      headers: {
        ...(authorization ? { authorization } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }

  it("refuses requests without the admin token or with a wrong one, and changes nothing", async () => {
    const name = uniq("intruder-");
    for (const auth of [
      undefined,
      "Bearer wrong",
      `Bearer ${ti.adminToken}x`,
      `Basic ${Buffer.from(`admin:${ti.adminToken}`).toString("base64")}`,
      ti.adminToken,
    ]) {
      for (const [method, path, body] of [
        ["GET", "/admin/users"],
        ["POST", "/admin/users", { username: name, password: "password123" }],
        ["GET", "/admin/clients"],
        ["POST", "/admin/clients", { grant_types: ["password"] }],
        ["POST", "/admin/keys/rotate"],
        ["GET", "/admin/audit"],
      ] as [string, string, unknown?][]) {
        const res = await call(method, path, auth, body);
        expect(res.status, `${method} ${path} with ${auth}`).toBe(401);
        expect(res.body.error).toBe("unauthorized");
      }
    }
    const users = await ti.admin("GET", "/admin/users?limit=1000");
    expect(users.body.some((u: any) => u.username === name)).toBe(false);
  });

  it("users: create 201, duplicate 409, read, update, delete, 404", async () => {
    const username = uniq("alice-");
    const created = await ti.admin("POST", "/admin/users", {
      username,
      password: "correct horse battery",
      email: "alice@example.test",
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ username, email: "alice@example.test" });
    expect(created.body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.stringify(created.body)).not.toMatch(/password|scrypt/);
    const id = created.body.id;

    const dup = await ti.admin("POST", "/admin/users", { username, password: "another password" });
    expect(dup.status).toBe(409);
    expect((await ti.admin("POST", "/admin/users", { username: uniq("u-"), password: "short" })).status).toBe(
      400,
    );
    expect((await ti.admin("POST", "/admin/users", { password: "long enough" })).status).toBe(400);

    const byId = await ti.admin("GET", `/admin/users/${id}`);
    expect(byId.status).toBe(200);
    expect(byId.body).toMatchObject({ id, username });
    expect((await ti.admin("GET", `/admin/users/${username}`)).body.id).toBe(id);
    const list = await ti.admin("GET", "/admin/users");
    expect(list.body.map((u: any) => u.id)).toContain(id);
    expect(JSON.stringify(list.body)).not.toContain("scrypt");

    // the password works, then a PATCHed password replaces it
    const app = await createClient(ti);
    const user = { id, username, password: "correct horse battery" };
    const session = await loginOk(ti, app, user);
    const patched = await ti.admin("PATCH", `/admin/users/${id}`, {
      password: "a brand new one",
      email: null,
    });
    expect(patched.status).toBe(200);
    expect(patched.body.email).toBeNull();
    expectOAuthError(await login(ti, app, user), 400, "invalid_grant");
    await loginOk(ti, app, { ...user, password: "a brand new one" });
    const other = await createUser(ti);
    expect((await ti.admin("PATCH", `/admin/users/${id}`, { username: other.username })).status).toBe(409);

    // deleting a user ends their sessions
    expect((await ti.admin("DELETE", `/admin/users/${id}`)).status).toBe(204);
    expect((await ti.admin("GET", `/admin/users/${id}`)).status).toBe(404);
    expect((await ti.admin("DELETE", `/admin/users/${id}`)).status).toBe(404);
    expect((await ti.admin("PATCH", `/admin/users/${id}`, { email: "x@y.z" })).status).toBe(404);
    expectOAuthError(await refresh(ti, app, session.refresh_token!), 400, "invalid_grant");
    const { rows } = await ti.db.query("SELECT 1 FROM families WHERE user_id = $1", [id]);
    expect(rows).toHaveLength(0);
  });

  it("clients: public and confidential, secret shown only on create and working", async () => {
    const user = await createUser(ti);
    const pub = await ti.admin("POST", "/admin/clients", {
      client_name: "SPA",
      token_endpoint_auth_method: "none",
      grant_types: ["password", "refresh_token"],
      scope: "openid profile",
    });
    expect(pub.status).toBe(201);
    expect(pub.body.client_secret).toBeUndefined();
    expect(pub.body.client_id).toMatch(/^cl_/);
    expect(pub.body).toMatchObject({
      client_name: "SPA",
      scope: "openid profile",
      rotate_refresh_tokens: true,
      access_token_ttl: 600,
    });

    const clientId = uniq("backend-");
    const conf = await ti.admin("POST", "/admin/clients", {
      client_id: clientId,
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["password", "refresh_token", "client_credentials"],
      access_token_ttl: 120,
      refresh_token_idle_ttl: 3600,
      refresh_token_absolute_ttl: 86400,
      refresh_token_reuse_grace: 5,
      rotate_refresh_tokens: false,
    });
    expect(conf.status).toBe(201);
    const secret = conf.body.client_secret as string;
    expect(secret).toMatch(/^egs_/);
    expect(conf.body).toMatchObject({
      client_id: clientId,
      access_token_ttl: 120,
      rotate_refresh_tokens: false,
    });
    expect(conf.body.secret_hash).toBeUndefined();

    const read = await ti.admin("GET", `/admin/clients/${clientId}`);
    expect(read.status).toBe(200);
    expect(read.body.client_secret).toBeUndefined();
    expect(read.body.secret_hash).toBeUndefined();
    const listed = await ti.admin("GET", "/admin/clients");
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    expect(listed.body.map((c: any) => c.client_id)).toEqual(
      expect.arrayContaining([clientId, pub.body.client_id]),
    );
    const { rows } = await ti.db.query<{ secret_hash: Buffer }>(
      "SELECT secret_hash FROM clients WHERE client_id = $1",
      [clientId],
    );
    expect(rows[0]!.secret_hash.toString("hex")).not.toContain(Buffer.from(secret).toString("hex"));

    const confClient: TestClient = {
      client_id: clientId,
      client_secret: secret,
      method: "client_secret_basic",
    };
    const t = await loginOk(ti, confClient, user);
    expect(t.expires_in).toBe(120);
    expect((await token(ti, { grant_type: "client_credentials" }, confClient)).status).toBe(200);

    expect(
      (await ti.admin("POST", "/admin/clients", { client_id: clientId, grant_types: ["password"] })).status,
    ).toBe(409);
    expect((await ti.admin("POST", "/admin/clients", { grant_types: ["implicit"] })).status).toBe(400);
    expect(
      (
        await ti.admin("POST", "/admin/clients", {
          grant_types: ["password"],
          token_endpoint_auth_method: "private_key_jwt",
        })
      ).status,
    ).toBe(400);
    expect(
      (await ti.admin("POST", "/admin/clients", { grant_types: ["password"], access_token_ttl: -1 })).status,
    ).toBe(400);
    expect((await ti.admin("GET", "/admin/clients/no-such-client")).status).toBe(404);
  });

  it("clients: PATCH takes effect at once, rotate_secret replaces the secret, DELETE removes", async () => {
    const user = await createUser(ti);
    const c = await createClient(ti, {
      token_endpoint_auth_method: "client_secret_post",
      access_token_ttl: 300,
    });
    expect((await loginOk(ti, c, user)).expires_in).toBe(300);
    const patched = await ti.admin("PATCH", `/admin/clients/${c.client_id}`, { access_token_ttl: 60 });
    expect(patched.status).toBe(200);
    expect(patched.body.access_token_ttl).toBe(60);
    expect(patched.body.client_secret).toBeUndefined();
    expect((await loginOk(ti, c, user)).expires_in).toBe(60);

    const rotated = await ti.admin("PATCH", `/admin/clients/${c.client_id}`, { rotate_secret: true });
    expect(rotated.status).toBe(200);
    const newSecret = rotated.body.client_secret as string;
    expect(newSecret).toMatch(/^egs_/);
    expect(newSecret).not.toBe(c.client_secret);
    expectOAuthError(await login(ti, c, user), 401, "invalid_client");
    await loginOk(ti, { ...c, client_secret: newSecret }, user);

    expect((await ti.admin("PATCH", `/admin/clients/${c.client_id}`, { client_id: "renamed" })).status).toBe(
      400,
    );
    expect((await ti.admin("PATCH", "/admin/clients/no-such-client", { access_token_ttl: 60 })).status).toBe(
      404,
    );
    expect((await ti.admin("DELETE", `/admin/clients/${c.client_id}`)).status).toBe(204);
    expect((await ti.admin("GET", `/admin/clients/${c.client_id}`)).status).toBe(404);
    expect((await ti.admin("DELETE", `/admin/clients/${c.client_id}`)).status).toBe(404);
    expectOAuthError(await login(ti, { ...c, client_secret: newSecret }, user), 401, "invalid_client");
  });

  it("a client registered right after a request named its id works at once", async () => {
    const user = await createUser(ti);
    const client: TestClient = { client_id: uniq("late-"), method: "none" };
    expectOAuthError(await login(ti, client, user), 401, "invalid_client");
    await createClient(ti, { client_id: client.client_id });
    await loginOk(ti, client, user);
  });

  it("clients: switching between public and confidential", async () => {
    const user = await createUser(ti);
    const c = await createClient(ti);
    const toConf = await ti.admin("PATCH", `/admin/clients/${c.client_id}`, {
      token_endpoint_auth_method: "client_secret_basic",
    });
    expect(toConf.status).toBe(200);
    expect(toConf.body.client_secret).toMatch(/^egs_/);
    expectOAuthError(await login(ti, c, user), 401, "invalid_client");
    const conf: TestClient = {
      ...c,
      client_secret: toConf.body.client_secret,
      method: "client_secret_basic",
    };
    await loginOk(ti, conf, user);
    const toPublic = await ti.admin("PATCH", `/admin/clients/${c.client_id}`, {
      token_endpoint_auth_method: "none",
    });
    expect(toPublic.status).toBe(200);
    expect(toPublic.body.client_secret).toBeUndefined();
    expectOAuthError(await login(ti, conf, user), 401, "invalid_client");
    await loginOk(ti, c, user);
  });

  it("sessions: list a user's sessions, revoke one, revoke all", async () => {
    const user = await createUser(ti);
    const bystander = await createUser(ti);
    const app = await createClient(ti);
    const other = await createClient(ti);
    const s1 = await loginOk(ti, app, user);
    const s2 = await loginOk(ti, other, user);
    const s3 = await loginOk(ti, app, user);
    const theirs = await loginOk(ti, app, bystander);
    const [f1, f2, f3] = [
      await familyOf(ti.db, s1.refresh_token!),
      await familyOf(ti.db, s2.refresh_token!),
      await familyOf(ti.db, s3.refresh_token!),
    ];

    const list = await ti.admin("GET", `/admin/users/${user.id}/sessions`);
    expect(list.status).toBe(200);
    expect(list.body).toHaveLength(3);
    expect(list.body.map((s: any) => s.sid).sort()).toEqual([f1, f2, f3].sort());
    expect(list.body.every((s: any) => s.active === true && s.revoked_at === null)).toBe(true);
    expect(list.body.find((s: any) => s.sid === f2).client_id).toBe(other.client_id);
    expect(JSON.stringify(list.body)).not.toContain("egr_");

    expect((await ti.admin("DELETE", `/admin/users/${user.id}/sessions/${f1}`)).status).toBe(204);
    expectOAuthError(await refresh(ti, app, s1.refresh_token!), 400, "invalid_grant");
    await refreshOk(ti, other, s2.refresh_token!);
    const after = await ti.admin("GET", `/admin/users/${user.id}/sessions`);
    const one = after.body.find((s: any) => s.sid === f1);
    expect(one).toMatchObject({ active: false, revoked_reason: "revoked_by_admin" });

    // a session that is not this user's is 404, and stays alive
    const theirFid = await familyOf(ti.db, theirs.refresh_token!);
    expect((await ti.admin("DELETE", `/admin/users/${user.id}/sessions/${theirFid}`)).status).toBe(404);
    expect((await ti.admin("DELETE", `/admin/users/${user.id}/sessions/not-a-uuid`)).status).toBe(404);
    expect((await ti.admin("GET", "/admin/users/no-such-user/sessions")).status).toBe(404);

    const all = await ti.admin("DELETE", `/admin/users/${user.id}/sessions`);
    expect(all.status).toBe(200);
    expect(all.body).toEqual({ revoked: 2 });
    expectOAuthError(await refresh(ti, app, s3.refresh_token!), 400, "invalid_grant");
    const { rows } = await ti.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM families WHERE user_id = $1 AND revoked_at IS NULL",
      [user.id],
    );
    expect(rows[0]!.n).toBe(0);
    await refreshOk(ti, app, theirs.refresh_token!);
    const audit = await ti.admin("GET", `/admin/audit?type=session_revoked&user_id=${user.id}`);
    expect(audit.status).toBe(200);
    expect(audit.body).toHaveLength(3);
  });

  it("rejects non-JSON-object bodies with 400", async () => {
    const res = await call("POST", "/admin/users", `Bearer ${ti.adminToken}`, ["not", "an", "object"]);
    expect(res.status).toBe(400);
    const bad = await fetch(`${ti.url}/admin/users`, {
      method: "POST",
      headers: { authorization: `Bearer ${ti.adminToken}`, "content-type": "application/json" },
      body: "{oops",
    });
    expect(bad.status).toBe(400);
  });
});
