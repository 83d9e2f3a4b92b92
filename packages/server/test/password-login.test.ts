import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  auditEvents,
  createClient,
  createUser,
  decodeJwt,
  expectOAuthError,
  family,
  login,
  loginOk,
  sha256,
  snapshot,
  tokenRow,
  userinfo,
} from "./helpers.ts";

describe.each(DATABASES)("password login on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let app: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
    app = await createClient(ti, { access_token_ttl: 300 });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  it("returns an access token and a refresh token with no-store, Bearer, expires_in and scope", async () => {
    const res = await login(ti, app, user);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("pragma")).toBe("no-cache");
    expect(res.body.token_type).toBe("Bearer");
    expect(res.body.expires_in).toBe(300);
    expect(res.body.scope).toBe("openid profile email offline_access");
    expect(res.body.access_token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(res.body.refresh_token).toMatch(/^egr_[\w-]{43}$/);
  });

  it("issues an RFC 9068 access token naming user, client and session", async () => {
    const body = await loginOk(ti, app, user, { scope: "openid email" });
    expect(body.scope).toBe("openid email");
    const { header, payload } = decodeJwt(body.access_token);
    expect(header.typ).toBe("at+jwt");
    expect(header.alg).toBe("EdDSA");
    expect(header.kid).toBe(ti.issuer.ctx.keys.current().kid);
    const row = await tokenRow(ti.db, body.refresh_token!);
    expect(payload).toMatchObject({
      iss: ti.config.issuer,
      aud: ti.config.audience,
      sub: user.id,
      client_id: app.client_id,
      scope: "openid email",
      sid: row!.family_id,
    });
    expect(payload.exp - payload.iat).toBe(300);
    expect(payload.iat).toBe(Math.floor(clock.now().getTime() / 1000));
    expect(typeof payload.jti).toBe("string");
  });

  it("stores the refresh token only as its SHA-256, in a new family with a login audit event", async () => {
    const body = await loginOk(ti, app, user);
    const rt = body.refresh_token!;
    const row = await tokenRow(ti.db, rt);
    expect(row).toBeDefined();
    expect(row!.generation).toBe(1);
    expect(row!.consumed_at).toBeNull();
    const fam = await family(ti.db, row!.family_id);
    expect(fam!.revoked_at).toBeNull();
    expect(fam!.scope).toBe("openid profile email offline_access");
    const dump = await snapshot(ti.db);
    expect(dump).not.toContain(rt);
    expect(dump).not.toContain(rt.slice(4));
    expect(dump).toContain(sha256(rt).toString("hex"));
    const events = await auditEvents(ti.db, "login", row!.family_id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ user_id: user.id, client_id: app.client_id });
  });

  it("rejects a wrong password and an unknown user with invalid_grant, creating no session", async () => {
    const before = await snapshot(ti.db);
    const wrong = await login(ti, app, { ...user, password: "not-the-password" });
    expectOAuthError(wrong, 400, "invalid_grant");
    expect(wrong.text).not.toContain("not-the-password");
    const unknown = await login(ti, app, { ...user, username: "nobody-here" });
    expectOAuthError(unknown, 400, "invalid_grant");
    expect(unknown.body.error_description).toBe(wrong.body.error_description);
    expect(await snapshot(ti.db)).toBe(before);
    const failed = await auditEvents(ti.db, "login_failed");
    expect(failed.filter((e) => e.user_id === user.id).length).toBeGreaterThanOrEqual(1);
  });

  it("refuses a scope the client is not registered for with invalid_scope", async () => {
    const before = await snapshot(ti.db);
    expectOAuthError(await login(ti, app, user, { scope: "openid admin" }), 400, "invalid_scope");
    expect(await snapshot(ti.db)).toBe(before);
  });

  it("gives no refresh token to a client not allowed the refresh_token grant", async () => {
    const noRefresh = await createClient(ti, { grant_types: ["password"] });
    const res = await login(ti, noRefresh, user);
    expect(res.status, res.text).toBe(200);
    expect(res.body.refresh_token).toBeUndefined();
    expect(res.body.access_token).toBeTruthy();
    expect((await userinfo(ti, res.body.access_token)).status).toBe(200);
    const { rows } = await ti.db.query("SELECT 1 FROM families WHERE client_id = $1", [noRefresh.client_id]);
    expect(rows).toHaveLength(0);
  });

  it("authenticates confidential clients with Basic and with body credentials", async () => {
    const basic = await createClient(ti, { token_endpoint_auth_method: "client_secret_basic" });
    const postC = await createClient(ti, { token_endpoint_auth_method: "client_secret_post" });
    expect(basic.client_secret).toMatch(/^egs_/);
    expect((await loginOk(ti, basic, user)).refresh_token).toBeTruthy();
    expect((await loginOk(ti, postC, user)).refresh_token).toBeTruthy();
  });
});
