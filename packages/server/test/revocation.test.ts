import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  auditEvents,
  basicAuth,
  createClient,
  createUser,
  expectOAuthError,
  family,
  familyOf,
  loginOk,
  postForm,
  refresh,
  refreshOk,
  snapshot,
  tokenId,
} from "./helpers.ts";

describe.each(DATABASES)("token revocation (RFC 7009) on %s", (kind) => {
  let ti: TestIssuer;
  let app: TestClient;
  let conf: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind });
    app = await createClient(ti);
    conf = await createClient(ti, { token_endpoint_auth_method: "client_secret_basic" });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  const revoke = (token: string, client: TestClient | false, extra: Record<string, string> = {}) =>
    postForm(ti, "/revoke", { token, ...extra }, client);

  it("revoking a refresh token revokes its whole family", async () => {
    const t1 = await loginOk(ti, app, user);
    const t2 = await refreshOk(ti, app, t1.refresh_token!);
    const fid = await familyOf(ti.db, t1.refresh_token!);
    const res = await revoke(t2.refresh_token!, app, { token_type_hint: "refresh_token" });
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const fam = await family(ti.db, fid);
    expect(fam!.revoked_at).not.toBeNull();
    expect(fam!.revoked_reason).toBe("revoked_by_client");
    expectOAuthError(await refresh(ti, app, t2.refresh_token!), 400, "invalid_grant");
    // even the grace-window retry of the previous token no longer answers
    expectOAuthError(await refresh(ti, app, t1.refresh_token!), 400, "invalid_grant");
    const events = await auditEvents(ti.db, "token_revoked", fid);
    expect(events).toHaveLength(1);
    expect(events[0]!.token_id).toBe(tokenId(t2.refresh_token!));
    // revoking twice is still 200 and records nothing new
    expect((await revoke(t2.refresh_token!, app)).status).toBe(200);
    expect(await auditEvents(ti.db, "token_revoked", fid)).toHaveLength(1);
  });

  it("a confidential client revokes with its credentials, a wrong secret is invalid_client", async () => {
    const t = await loginOk(ti, conf, user);
    const fid = await familyOf(ti.db, t.refresh_token!);
    const bad = await postForm(ti, "/revoke", { token: t.refresh_token! }, false, {
      authorization: basicAuth(conf.client_id, "wrong"),
    });
    expectOAuthError(bad, 401, "invalid_client");
    expect((await family(ti.db, fid))!.revoked_at).toBeNull();
    expect((await revoke(t.refresh_token!, conf)).status).toBe(200);
    expect((await family(ti.db, fid))!.revoked_at).not.toBeNull();
  });

  it("an unknown or malformed token gets 200 and changes nothing", async () => {
    await loginOk(ti, app, user);
    const before = await snapshot(ti.db);
    for (const token of [`egr_${"B".repeat(43)}`, "garbage", "a.b.c"]) {
      const res = await revoke(token, app);
      expect(res.status, res.text).toBe(200);
    }
    expect(await snapshot(ti.db)).toBe(before);
  });

  it("another client's token gets 200 and is not revoked", async () => {
    const other = await createClient(ti);
    const t = await loginOk(ti, app, user);
    const fid = await familyOf(ti.db, t.refresh_token!);
    const before = await snapshot(ti.db);
    expect((await revoke(t.refresh_token!, other)).status).toBe(200);
    expect((await revoke(t.access_token, other)).status).toBe(200);
    expect(await snapshot(ti.db)).toBe(before);
    expect((await family(ti.db, fid))!.revoked_at).toBeNull();
    await refreshOk(ti, app, t.refresh_token!);
  });

  it("revoking an access token ends its session", async () => {
    const t = await loginOk(ti, app, user);
    const fid = await familyOf(ti.db, t.refresh_token!);
    expect((await revoke(t.access_token, app, { token_type_hint: "access_token" })).status).toBe(200);
    expect((await family(ti.db, fid))!.revoked_at).not.toBeNull();
    expectOAuthError(await refresh(ti, app, t.refresh_token!), 400, "invalid_grant");
  });

  it("a wrong hint does not stop the revocation", async () => {
    const t = await loginOk(ti, app, user);
    const fid = await familyOf(ti.db, t.refresh_token!);
    expect((await revoke(t.refresh_token!, app, { token_type_hint: "access_token" })).status).toBe(200);
    expect((await family(ti.db, fid))!.revoked_at).not.toBeNull();
  });

  it("bad requests: missing token, unknown client", async () => {
    const t = await loginOk(ti, app, user);
    const before = await snapshot(ti.db);
    expectOAuthError(await postForm(ti, "/revoke", {}, app), 400, "invalid_request");
    expectOAuthError(
      await postForm(ti, "/revoke", { token: t.refresh_token!, client_id: "nope" }, false),
      401,
      "invalid_client",
    );
    expectOAuthError(
      await postForm(ti, "/revoke", { token: t.refresh_token! }, false),
      401,
      "invalid_client",
    );
    expect(await snapshot(ti.db)).toBe(before);
  });
});
