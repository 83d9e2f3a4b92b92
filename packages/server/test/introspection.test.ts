import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  decodeJwt,
  expectOAuthError,
  familyOf,
  loginOk,
  postForm,
  refreshOk,
} from "./helpers.ts";

describe.each(DATABASES)("token introspection (RFC 7662) on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let app: TestClient;
  let conf: TestClient;
  let rs: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
    app = await createClient(ti, { access_token_ttl: 300 });
    conf = await createClient(ti, { token_endpoint_auth_method: "client_secret_post" });
    rs = await createClient(ti, {
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["client_credentials"],
    });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  const introspect = (token: string, client: TestClient | false = rs) =>
    postForm(ti, "/introspect", { token }, client);

  it("an active refresh token of the introspecting client, then inactive once consumed", async () => {
    const t = await loginOk(ti, conf, user, { scope: "openid email" });
    const res = await introspect(t.refresh_token!, conf);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.body).toMatchObject({
      active: true,
      token_type: "refresh_token",
      client_id: conf.client_id,
      sub: user.id,
      username: user.username,
      scope: "openid email",
      sid: await familyOf(ti.db, t.refresh_token!),
      iss: ti.config.issuer,
    });
    expect(res.body.exp).toBeGreaterThan(Math.floor(clock.now().getTime() / 1000));
    // another client learns nothing about it
    expect((await introspect(t.refresh_token!, rs)).body).toEqual({ active: false });
    await refreshOk(ti, conf, t.refresh_token!);
    expect((await introspect(t.refresh_token!, conf)).body).toEqual({ active: false });
  });

  it("an access token is active with its claims", async () => {
    const t = await loginOk(ti, app, user, { scope: "openid profile" });
    const res = await introspect(t.access_token);
    expect(res.status, res.text).toBe(200);
    const claims = decodeJwt(t.access_token).payload;
    expect(res.body).toMatchObject({
      active: true,
      token_type: "Bearer",
      sub: user.id,
      client_id: app.client_id,
      scope: "openid profile",
      sid: claims.sid,
      exp: claims.exp,
      iss: ti.config.issuer,
    });
  });

  it("an access token of a revoked session is inactive", async () => {
    const t = await loginOk(ti, app, user);
    expect((await introspect(t.access_token)).body.active).toBe(true);
    const fid = await familyOf(ti.db, t.refresh_token!);
    expect((await ti.admin("DELETE", `/admin/users/${user.id}/sessions/${fid}`)).status).toBe(204);
    expect((await introspect(t.access_token)).body).toEqual({ active: false });
  });

  it("an expired access token, garbage and unknown refresh tokens are inactive", async () => {
    const t = await loginOk(ti, app, user);
    clock.advance(301);
    expect((await introspect(t.access_token)).body).toEqual({ active: false });
    expect((await introspect("garbage")).body).toEqual({ active: false });
    expect((await introspect(`egr_${"C".repeat(43)}`)).body).toEqual({ active: false });
  });

  it("a public client may not introspect, nor an unauthenticated caller", async () => {
    const t = await loginOk(ti, app, user);
    const pub = await introspect(t.refresh_token!, app);
    expectOAuthError(pub, 401, "invalid_client");
    expect(pub.text).not.toContain('"active"');
    expectOAuthError(await introspect(t.access_token, false), 401, "invalid_client");
    expectOAuthError(await postForm(ti, "/introspect", {}, rs), 400, "invalid_request");
  });
});
