import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  auditEvents,
  createClient,
  createUser,
  expectOAuthError,
  family,
  familyOf,
  liveTokens,
  loginOk,
  postForm,
  refresh,
  refreshOk,
  tokenId,
  userinfo,
} from "./helpers.ts";

const GRACE = 15;

describe.each(DATABASES)("refresh token reuse detection on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let app: TestClient;
  let otherApp: TestClient;
  let rs: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
    app = await createClient(ti, { refresh_token_reuse_grace: GRACE });
    otherApp = await createClient(ti);
    rs = await createClient(ti, {
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["client_credentials"],
    });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  const introspect = async (token: string) =>
    (await postForm(ti, "/introspect", { token }, rs)).body as { active: boolean };

  it("reuse after the grace window revokes that family only, and records which token and family", async () => {
    const victim = await loginOk(ti, app, user);
    const sameClientOtherDevice = await loginOk(ti, app, user);
    const otherClient = await loginOk(ti, otherApp, user);
    const fid = await familyOf(ti.db, victim.refresh_token!);

    const t2 = await refreshOk(ti, app, victim.refresh_token!);
    expect((await introspect(t2.access_token)).active).toBe(true);
    clock.advance(GRACE + 1);
    const reuse = await refresh(ti, app, victim.refresh_token!);
    expectOAuthError(reuse, 400, "invalid_grant");

    // the whole family is dead: the successor no longer refreshes, its access token is inactive
    expectOAuthError(await refresh(ti, app, t2.refresh_token!), 400, "invalid_grant");
    expect((await introspect(t2.access_token)).active).toBe(false);
    const fam = await family(ti.db, fid);
    expect(fam!.revoked_at).not.toBeNull();
    expect(fam!.revoked_reason).toBe("refresh_token_reuse");

    // the security event names the family and the reused token
    const events = await auditEvents(ti.db, "refresh_token_reuse", fid);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      family_id: fid,
      token_id: tokenId(victim.refresh_token!),
      user_id: user.id,
      client_id: app.client_id,
    });
    expect(events[0]!.detail.reason).toMatch(/grace/);

    // the user's other sessions, on this client and on another, are untouched
    const a = await refreshOk(ti, app, sameClientOtherDevice.refresh_token!);
    expect((await userinfo(ti, a.access_token)).status).toBe(200);
    await refreshOk(ti, otherApp, otherClient.refresh_token!);
    expect((await family(ti.db, await familyOf(ti.db, a.refresh_token!)))!.revoked_at).toBeNull();
  });

  it("presenting the reused token again does not record a second event", async () => {
    const t1 = await loginOk(ti, app, user);
    const fid = await familyOf(ti.db, t1.refresh_token!);
    await refreshOk(ti, app, t1.refresh_token!);
    clock.advance(GRACE + 1);
    expectOAuthError(await refresh(ti, app, t1.refresh_token!), 400, "invalid_grant");
    expectOAuthError(await refresh(ti, app, t1.refresh_token!), 400, "invalid_grant");
    expect(await auditEvents(ti.db, "refresh_token_reuse", fid)).toHaveLength(1);
  });

  it("within the grace window a retry gets the SAME refresh and access token, no revocation", async () => {
    const t1 = await loginOk(ti, app, user);
    const fid = await familyOf(ti.db, t1.refresh_token!);
    const first = await refreshOk(ti, app, t1.refresh_token!);
    clock.advance(GRACE - 1);
    const retry = await refresh(ti, app, t1.refresh_token!);
    expect(retry.status, retry.text).toBe(200);
    expect(retry.headers.get("cache-control")).toBe("no-store");
    expect(retry.body.refresh_token).toBe(first.refresh_token);
    expect(retry.body.access_token).toBe(first.access_token);
    expect(retry.body.scope).toBe(first.scope);
    expect(retry.body.expires_in).toBe(first.expires_in - (GRACE - 1));
    expect((await family(ti.db, fid))!.revoked_at).toBeNull();
    expect(await liveTokens(ti.db, fid)).toBe(1);
    expect(await auditEvents(ti.db, "refresh_replayed", fid)).toHaveLength(1);
    expect(await auditEvents(ti.db, "refresh_token_reuse", fid)).toHaveLength(0);
    // the successor is the one live token and keeps working
    await refreshOk(ti, app, first.refresh_token!);
  });

  it("a retry inside the window asking for a scope beyond the grant is invalid_scope", async () => {
    const t1 = await loginOk(ti, app, user, { scope: "openid" });
    const fid = await familyOf(ti.db, t1.refresh_token!);
    const first = await refreshOk(ti, app, t1.refresh_token!);
    const wider = await refresh(ti, app, t1.refresh_token!, { scope: "openid email" });
    expectOAuthError(wider, 400, "invalid_scope");
    expect(wider.body.refresh_token).toBeUndefined();
    // an in-scope retry still gets the same pair, and nothing was revoked
    expect((await refreshOk(ti, app, t1.refresh_token!, { scope: "openid" })).refresh_token).toBe(
      first.refresh_token,
    );
    expect((await family(ti.db, fid))!.revoked_at).toBeNull();
  });

  it("reuse after the window is detected even when the replayed request asks for another scope", async () => {
    const t1 = await loginOk(ti, app, user, { scope: "openid" });
    const fid = await familyOf(ti.db, t1.refresh_token!);
    await refreshOk(ti, app, t1.refresh_token!);
    clock.advance(GRACE + 1);
    expectOAuthError(
      await refresh(ti, app, t1.refresh_token!, { scope: "openid email" }),
      400,
      "invalid_grant",
    );
    expect((await family(ti.db, fid))!.revoked_reason).toBe("refresh_token_reuse");
  });

  it("a chain of replays stays linear: T1 retry → T2, T2 retry → T3, then reuse after grace", async () => {
    const t1 = (await loginOk(ti, app, user)).refresh_token!;
    const fid = await familyOf(ti.db, t1);
    const t2 = (await refreshOk(ti, app, t1)).refresh_token!;
    clock.advance(2);
    // T1 retried inside its window → T2 again
    expect((await refreshOk(ti, app, t1)).refresh_token).toBe(t2);
    const t3 = (await refreshOk(ti, app, t2)).refresh_token!;
    clock.advance(2);
    // T2 retried inside its window → T3; T1 retried (still inside its window) → T2 again
    expect((await refreshOk(ti, app, t2)).refresh_token).toBe(t3);
    expect((await refreshOk(ti, app, t1)).refresh_token).toBe(t2);
    expect(await liveTokens(ti.db, fid)).toBe(1);
    const { rows } = await ti.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM refresh_tokens WHERE family_id = $1",
      [fid],
    );
    expect(rows[0]!.n).toBe(3);
    expect((await family(ti.db, fid))!.revoked_at).toBeNull();
    const t4 = (await refreshOk(ti, app, t3)).refresh_token!;
    // after T1's window: reuse, and the whole chain dies
    clock.advance(GRACE);
    expectOAuthError(await refresh(ti, app, t1), 400, "invalid_grant");
    expectOAuthError(await refresh(ti, app, t4), 400, "invalid_grant");
    expect((await family(ti.db, fid))!.revoked_reason).toBe("refresh_token_reuse");
  });

  it("a retry inside the window from another client is refused and revokes nothing", async () => {
    const t1 = await loginOk(ti, app, user);
    const fid = await familyOf(ti.db, t1.refresh_token!);
    const t2 = await refreshOk(ti, app, t1.refresh_token!);
    expectOAuthError(await refresh(ti, otherApp, t1.refresh_token!), 400, "invalid_grant");
    expect((await family(ti.db, fid))!.revoked_at).toBeNull();
    await refreshOk(ti, app, t2.refresh_token!);
  });

  it("a retry inside the window after the family was revoked is refused", async () => {
    const t1 = await loginOk(ti, app, user);
    const fid = await familyOf(ti.db, t1.refresh_token!);
    await refreshOk(ti, app, t1.refresh_token!);
    expect((await ti.admin("DELETE", `/admin/users/${user.id}/sessions/${fid}`)).status).toBe(204);
    expectOAuthError(await refresh(ti, app, t1.refresh_token!), 400, "invalid_grant");
  });
});
