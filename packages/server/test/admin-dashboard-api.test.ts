/**
 * The admin API the dashboard reads: user search, admin and disabled flags, every user's
 * sessions with their timelines, revoking one by id, audit filters and cursor, the metrics
 * snapshot, and admin access with an admin user's `evergreen:admin` access token.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, ManualClock, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  createClient,
  createUser,
  decodeJwt,
  expectOAuthError,
  family,
  familyOf,
  login,
  loginOk,
  refresh,
  refreshOk,
  token,
  uniq,
} from "./helpers.ts";

describe.each(DATABASES)("dashboard admin API on %s", (kind) => {
  let ti: TestIssuer;
  const clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));

  beforeAll(async () => {
    ti = await startTestIssuer({
      database: kind,
      clock,
      env: { EVERGREEN_RATE_LIMIT_AUTH_FAILURES: "1000" },
    });
  });
  afterAll(() => ti?.close());

  async function call(method: string, path: string, bearer?: string, body?: unknown) {
    const res = await fetch(ti.url + path, {
      method,
      headers: {
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  it("searches users by part of the username or email, any case, one page at a time", async () => {
    const tag = uniq("srch");
    for (const n of ["a", "b", "c"]) await createUser(ti, `${tag}-${n}`);
    const other = await createUser(ti);
    const all = await ti.admin("GET", `/admin/users?q=${tag.toUpperCase()}`);
    expect(all.status).toBe(200);
    expect(all.body.map((u: { username: string }) => u.username)).toEqual([
      `${tag}-a`,
      `${tag}-b`,
      `${tag}-c`,
    ]);
    expect(all.body[0]).toMatchObject({ is_admin: false, disabled_at: null });
    expect(all.body[0].password_hash).toBeUndefined();
    const page2 = await ti.admin("GET", `/admin/users?q=${tag}&limit=2&offset=2`);
    expect(page2.body.map((u: { username: string }) => u.username)).toEqual([`${tag}-c`]);
    const byEmail = await ti.admin(
      "GET",
      `/admin/users?q=${encodeURIComponent(`${other.username}@example`)}`,
    );
    expect(byEmail.body.map((u: { id: string }) => u.id)).toEqual([other.id]);
    for (const bad of ["q=a&q=b", `q=${"x".repeat(201)}`]) {
      const res = await ti.admin("GET", `/admin/users?${bad}`);
      expect(res.status, bad).toBe(400);
      expect(res.body.error).toBe("invalid_request");
    }
  });

  it("searches clients by id or name", async () => {
    const tag = uniq("cl");
    await createClient(ti, { client_id: `${tag}-one`, client_name: "First" });
    await createClient(ti, { client_id: uniq("other-"), client_name: `Named ${tag}` });
    const res = await ti.admin("GET", `/admin/clients?q=${tag}`);
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(2);
  });

  it("creates admins, and disabling a user ends their sessions and refuses their logins until enabled", async () => {
    const made = await ti.admin("POST", "/admin/users", {
      username: uniq("adm-"),
      password: "password123",
      admin: true,
    });
    expect(made.status).toBe(201);
    expect(made.body.is_admin).toBe(true);
    expect(
      (
        await ti.admin("POST", "/admin/users", {
          username: uniq("x-"),
          password: "password123",
          admin: "yes",
        })
      ).status,
    ).toBe(400);

    const client = await createClient(ti);
    const user = await createUser(ti);
    const first = await loginOk(ti, client, user);
    const off = await ti.admin("PATCH", `/admin/users/${user.id}`, { disabled: true });
    expect(off.status).toBe(200);
    expect(off.body.disabled_at).not.toBeNull();
    expectOAuthError(await refresh(ti, client, first.refresh_token!), 400, "invalid_grant");
    expect((await family(ti.db, await familyOf(ti.db, first.refresh_token!)))!.revoked_at).not.toBeNull();
    expectOAuthError(await login(ti, client, user), 400, "invalid_grant");
    // Disabling twice changes nothing more; enabling lets the same password in again.
    expect((await ti.admin("PATCH", `/admin/users/${user.id}`, { disabled: true })).body.disabled_at).toBe(
      off.body.disabled_at,
    );
    const on = await ti.admin("PATCH", `/admin/users/${user.id}`, { disabled: false });
    expect(on.body.disabled_at).toBeNull();
    await loginOk(ti, client, user);
    expect((await ti.admin("PATCH", `/admin/users/${user.id}`, { disabled: "no" })).status).toBe(400);
  });

  it("lists every user's sessions, filtered by user, client and state, and pages them", async () => {
    const client = await createClient(ti);
    const [u1, u2] = [await createUser(ti), await createUser(ti)];
    const a = await loginOk(ti, client, u1);
    clock.advance(1);
    await loginOk(ti, client, u1);
    clock.advance(1);
    await loginOk(ti, client, u2);
    const byClient = await ti.admin("GET", `/admin/sessions?client_id=${client.client_id}`);
    expect(byClient.status).toBe(200);
    expect(byClient.body).toHaveLength(3);
    expect(byClient.body[0]).toMatchObject({ username: u2.username, active: true, generation: 1 });
    const sidA = await familyOf(ti.db, a.refresh_token!);
    expect((await ti.admin("DELETE", `/admin/sessions/${sidA}`)).status).toBe(204);
    const active = await ti.admin("GET", `/admin/sessions?user_id=${u1.id}&state=active`);
    expect(active.body).toHaveLength(1);
    const ended = await ti.admin("GET", `/admin/sessions?user_id=${u1.id}&state=ended`);
    expect(ended.body.map((s: { sid: string }) => s.sid)).toEqual([sidA]);
    expect(ended.body[0]).toMatchObject({ active: false, revoked_reason: "revoked_by_admin" });
    const paged = await ti.admin("GET", `/admin/sessions?client_id=${client.client_id}&limit=1&offset=1`);
    expect(paged.body).toHaveLength(1);
    for (const bad of ["user_id=nope", "state=dead", "limit=0", "client_id=a&client_id=b"]) {
      const res = await ti.admin("GET", `/admin/sessions?${bad}`);
      expect(res.status, bad).toBe(400);
    }
  });

  it("shows a session's timeline: login, rotations with generations, a grace replay, reuse and revocation", async () => {
    const client = await createClient(ti, { refresh_token_reuse_grace: 5 });
    const user = await createUser(ti);
    const first = await loginOk(ti, client, user);
    const sid = await familyOf(ti.db, first.refresh_token!);
    let rt = first.refresh_token!;
    const spent: string[] = [];
    for (let i = 0; i < 3; i++) {
      clock.advance(60);
      spent.push(rt);
      rt = (await refreshOk(ti, client, rt)).refresh_token!;
    }
    clock.advance(1);
    await refreshOk(ti, client, spent[2]!); // within the grace window: the same successor again
    const live = await ti.admin("GET", `/admin/sessions/${sid}`);
    expect(live.status).toBe(200);
    expect(live.body).toMatchObject({
      sid,
      active: true,
      generation: 4,
      username: user.username,
      rotate_refresh_tokens: true,
    });
    expect(
      live.body.timeline.map((e: { type: string; generation: number | null }) => [e.type, e.generation]),
    ).toEqual([
      ["refresh_replayed", null],
      ["refresh", 4],
      ["refresh", 3],
      ["refresh", 2],
      ["login", 1],
    ]);
    expect(live.body.timeline[0].detail.generation).toBe(3);
    expect(new Date(live.body.idle_expires_at).getTime()).toBeGreaterThan(clock.now().getTime());

    clock.advance(60);
    expectOAuthError(await refresh(ti, client, spent[0]!), 400, "invalid_grant"); // reuse: the family dies
    const dead = await ti.admin("GET", `/admin/sessions/${sid}?limit=2`);
    expect(dead.body.active).toBe(false);
    expect(dead.body.timeline.map((e: { type: string }) => e.type)).toEqual([
      "refresh_token_reuse",
      "refresh_replayed",
    ]);
    expect(dead.body.next_before).toBe(dead.body.timeline[1].id);
    const older = await ti.admin("GET", `/admin/sessions/${sid}?limit=10&before=${dead.body.next_before}`);
    expect(older.body.timeline.map((e: { generation: number | null }) => e.generation)).toEqual([4, 3, 2, 1]);
    expect(older.body.next_before).toBeNull();

    expect((await ti.admin("GET", "/admin/sessions/not-a-uuid")).status).toBe(404);
    expect((await ti.admin("GET", `/admin/sessions/${crypto.randomUUID()}`)).status).toBe(404);
    expect((await ti.admin("GET", `/admin/sessions/${sid}?before=abc`)).status).toBe(400);
    expect((await ti.admin("DELETE", `/admin/sessions/${crypto.randomUUID()}`)).status).toBe(404);
  });

  it("revokes a session by id: its next refresh fails and the audit trail says so", async () => {
    const client = await createClient(ti);
    const user = await createUser(ti);
    const t = await loginOk(ti, client, user);
    const sid = await familyOf(ti.db, t.refresh_token!);
    expect((await ti.admin("DELETE", `/admin/sessions/${sid}`)).status).toBe(204);
    expectOAuthError(await refresh(ti, client, t.refresh_token!), 400, "invalid_grant");
    const audit = await ti.admin("GET", `/admin/audit?family_id=${sid}&type=session_revoked`);
    expect(audit.body).toHaveLength(1);
    expect(audit.body[0].detail).toEqual({ via: "admin" });
  });

  it("filters the audit trail by client and session and pages it by event id", async () => {
    const client = await createClient(ti);
    const user = await createUser(ti);
    let rt = (await loginOk(ti, client, user)).refresh_token!;
    for (let i = 0; i < 4; i++) rt = (await refreshOk(ti, client, rt)).refresh_token!;
    const all = await ti.admin("GET", `/admin/audit?client_id=${client.client_id}`);
    expect(all.body.map((e: { type: string }) => e.type)).toEqual([
      "refresh",
      "refresh",
      "refresh",
      "refresh",
      "login",
    ]);
    const page1 = await ti.admin("GET", `/admin/audit?client_id=${client.client_id}&limit=2`);
    const page2 = await ti.admin(
      "GET",
      `/admin/audit?client_id=${client.client_id}&limit=2&before=${page1.body[1].id}`,
    );
    expect([...page1.body, ...page2.body].map((e: { id: string }) => e.id)).toEqual(
      all.body.slice(0, 4).map((e: { id: string }) => e.id),
    );
    const sid = all.body[0].family_id;
    expect((await ti.admin("GET", `/admin/audit?family_id=${sid}`)).body).toHaveLength(5);
    for (const bad of ["family_id=x", "before=-1", "before=1e3", "client_id=a&client_id=b"]) {
      expect((await ti.admin("GET", `/admin/audit?${bad}`)).status, bad).toBe(400);
    }
  });

  it("serves the /metrics counters as JSON to admins only", async () => {
    const client = await createClient(ti);
    const user = await createUser(ti);
    await loginOk(ti, client, user);
    const res = await ti.admin("GET", "/admin/metrics");
    expect(res.status).toBe(200);
    const requests = res.body.metrics.find(
      (m: { name: string }) => m.name === "evergreen_token_requests_total",
    );
    expect(
      requests.values.some(
        (v: { labels: { grant_type: string; status: number | string } }) =>
          v.labels.grant_type === "password",
      ),
    ).toBe(true);
    expect(res.body.metrics.every((m: { name: string }) => m.name.startsWith("evergreen_"))).toBe(true);
    expect((await call("GET", "/admin/metrics")).status).toBe(401);
  });

  describe("access tokens with the evergreen:admin scope", () => {
    let client: Awaited<ReturnType<typeof createClient>>;
    beforeAll(async () => {
      client = await createClient(ti, { scope: "openid evergreen:admin" });
    });

    async function adminUser() {
      const res = await ti.admin("POST", "/admin/users", {
        username: uniq("root-"),
        password: "password123",
        admin: true,
      });
      return { id: res.body.id as string, username: res.body.username as string, password: "password123" };
    }

    it("are granted to admins only and open the admin API", async () => {
      const admin = await adminUser();
      const t = await loginOk(ti, client, admin, { scope: "openid evergreen:admin" });
      expect(t.scope).toBe("openid evergreen:admin");
      expect(decodeJwt(t.access_token).payload.scope).toBe("openid evergreen:admin");
      expect((await call("GET", "/admin/users?limit=1", t.access_token)).status).toBe(200);
      expect(
        (
          await call("POST", "/admin/users", t.access_token, {
            username: uniq("by-admin-"),
            password: "password123",
          })
        ).status,
      ).toBe(201);

      const plain = await createUser(ti);
      const p = await loginOk(ti, client, plain, { scope: "openid evergreen:admin" });
      expect(p.scope).toBe("openid");
      expect((await call("GET", "/admin/users", p.access_token)).status).toBe(401);
      // Without a requested scope the client's whole registered scope is the default: still not for them.
      expect((await loginOk(ti, client, plain)).scope).toBe("openid");
    });

    it("stop working at once when the user stops being an admin, is disabled, or the session is revoked", async () => {
      const admin = await adminUser();
      const t = await loginOk(ti, client, admin, { scope: "evergreen:admin" });
      expect((await call("GET", "/admin/keys", t.access_token)).status).toBe(200);
      await ti.admin("PATCH", `/admin/users/${admin.id}`, { admin: false });
      expect((await call("GET", "/admin/keys", t.access_token)).status).toBe(401);
      await ti.admin("PATCH", `/admin/users/${admin.id}`, { admin: true });
      expect((await call("GET", "/admin/keys", t.access_token)).status).toBe(200);

      const sid = await familyOf(ti.db, t.refresh_token!);
      await ti.admin("DELETE", `/admin/sessions/${sid}`);
      expect((await call("GET", "/admin/keys", t.access_token)).status).toBe(401);

      const again = await loginOk(ti, client, admin, { scope: "evergreen:admin" });
      await ti.admin("PATCH", `/admin/users/${admin.id}`, { disabled: true });
      expect((await call("GET", "/admin/keys", again.access_token)).status).toBe(401);
    });

    it("refuse expired tokens, client-credentials tokens and forged ones", async () => {
      const admin = await adminUser();
      const t = await loginOk(ti, client, admin, { scope: "evergreen:admin" });
      const [h, , s] = t.access_token.split(".");
      const tampered = `${h}.${Buffer.from(JSON.stringify({ ...decodeJwt(t.access_token).payload, sub: crypto.randomUUID() })).toString("base64url")}.${s}`;
      expect((await call("GET", "/admin/keys", tampered)).status).toBe(401);

      const machine = await createClient(ti, {
        token_endpoint_auth_method: "client_secret_basic",
        grant_types: ["client_credentials"],
        scope: "evergreen:admin",
      });
      const cc = await token(ti, { grant_type: "client_credentials", scope: "evergreen:admin" }, machine);
      expect(cc.status, cc.text).toBe(200);
      expect((await call("GET", "/admin/keys", cc.body.access_token)).status).toBe(401);

      clock.advance(3600);
      expect((await call("GET", "/admin/keys", t.access_token)).status).toBe(401);
    });
  });
});

describe("admin access tokens and failed-authentication throttling", () => {
  let ti: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer({ env: { EVERGREEN_RATE_LIMIT_AUTH_FAILURES: "3" } });
  });
  afterAll(() => ti?.close());

  it("counts forged tokens as failures, and past the budget refuses even a valid admin token", async () => {
    const client = await createClient(ti, { scope: "evergreen:admin" });
    const made = await ti.admin("POST", "/admin/users", {
      username: uniq("root-"),
      password: "password123",
      admin: true,
    });
    const t = await loginOk(ti, client, {
      id: made.body.id,
      username: made.body.username,
      password: "password123",
    });
    const get = (bearer: string) =>
      fetch(`${ti.url}/admin/keys`, { headers: { authorization: `Bearer ${bearer}` } });
    expect((await get(t.access_token)).status).toBe(200);
    const forged = `${t.access_token.slice(0, -4)}AAAA`;
    for (let i = 0; i < 3; i++) expect((await get(forged)).status).toBe(401);
    const locked = await get(t.access_token);
    expect(locked.status).toBe(429);
    expect(locked.headers.get("retry-after")).toBeTruthy();
  });
});
