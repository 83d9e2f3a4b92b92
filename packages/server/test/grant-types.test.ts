import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  decodeJwt,
  expectOAuthError,
  login,
  loginOk,
  postForm,
  refresh,
  snapshot,
  token,
} from "./helpers.ts";

describe.each(DATABASES)("grant types on %s", (kind) => {
  let ti: TestIssuer;
  let app: TestClient;
  let svc: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind });
    app = await createClient(ti);
    svc = await createClient(ti, {
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["client_credentials"],
      scope: "read write",
      access_token_ttl: 900,
    });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  it("unsupported_grant_type for an unknown grant", async () => {
    const before = await snapshot(ti.db);
    for (const grant of ["urn:example:custom", "toString", "__proto__", "implicit"]) {
      expectOAuthError(await token(ti, { grant_type: grant }, app), 400, "unsupported_grant_type");
    }
    expect(await snapshot(ti.db)).toBe(before);
  });

  it("unauthorized_client for a grant the client is not allowed", async () => {
    const refreshOnly = await createClient(ti, { grant_types: ["refresh_token"] });
    const before = await snapshot(ti.db);
    expectOAuthError(await login(ti, refreshOnly, user), 400, "unauthorized_client");
    expectOAuthError(await login(ti, svc, user), 400, "unauthorized_client");
    expectOAuthError(await token(ti, { grant_type: "client_credentials" }, app), 400, "unauthorized_client");
    expectOAuthError(await token(ti, { grant_type: "authorization_code" }, app), 400, "unauthorized_client");
    // a password-only client cannot refresh (even with a syntactically valid token)
    const pwOnly = await createClient(ti, { grant_types: ["password"] });
    const rt = (await loginOk(ti, app, user)).refresh_token!;
    const mid = await snapshot(ti.db);
    expectOAuthError(await refresh(ti, pwOnly, rt), 400, "unauthorized_client");
    expect(await snapshot(ti.db)).toBe(mid);
    expect(before).not.toBe(mid);
  });

  it("client_credentials issues an access token and never a refresh token", async () => {
    const res = await token(ti, { grant_type: "client_credentials" }, svc);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.body).toMatchObject({ token_type: "Bearer", expires_in: 900, scope: "read write" });
    expect(res.body.refresh_token).toBeUndefined();
    const { payload } = decodeJwt(res.body.access_token);
    expect(payload).toMatchObject({ sub: svc.client_id, client_id: svc.client_id, scope: "read write" });
    expect(payload.sid).toBeUndefined();
    const { rows } = await ti.db.query("SELECT 1 FROM families WHERE client_id = $1", [svc.client_id]);
    expect(rows).toHaveLength(0);
    // a narrower scope is fine, a wider one is not
    const narrow = await token(ti, { grant_type: "client_credentials", scope: "read" }, svc);
    expect(narrow.body.scope).toBe("read");
    expectOAuthError(
      await token(ti, { grant_type: "client_credentials", scope: "admin" }, svc),
      400,
      "invalid_scope",
    );
    // the introspection endpoint reports it active
    const intro = await postForm(ti, "/introspect", { token: res.body.access_token }, svc);
    expect(intro.body).toMatchObject({ active: true, client_id: svc.client_id });
  });

  it("client_credentials is refused to a public client", async () => {
    // the admin API does not let a public client have the grant at all
    const refused = await ti.admin("POST", "/admin/clients", {
      token_endpoint_auth_method: "none",
      grant_types: ["client_credentials"],
    });
    expect(refused.status).toBe(400);
    // and a public client asking for it at the token endpoint is unauthorized
    expectOAuthError(await token(ti, { grant_type: "client_credentials" }, app), 400, "unauthorized_client");
    // nor can an existing public client be switched to it
    const patched = await ti.admin("PATCH", `/admin/clients/${app.client_id}`, {
      grant_types: ["password", "refresh_token", "client_credentials"],
    });
    expect(patched.status).toBe(400);
  });

  it("client_credentials with a wrong secret is invalid_client", async () => {
    expectOAuthError(
      await token(ti, { grant_type: "client_credentials" }, { ...svc, client_secret: "egs_nope" }),
      401,
      "invalid_client",
    );
  });
});
