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
  familyOf,
  liveTokens,
  loginOk,
  refresh,
  refreshOk,
  snapshot,
  tokenRow,
  userinfo,
} from "./helpers.ts";

describe.each(DATABASES)("refresh token rotation on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let app: TestClient;
  /** Grace 0: any second presentation of a rotated token is reuse. */
  let strict: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
    app = await createClient(ti, { access_token_ttl: 300 });
    strict = await createClient(ti, { refresh_token_reuse_grace: 0 });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  it("a valid refresh token returns a new access token and a new refresh token", async () => {
    const first = await loginOk(ti, app, user);
    clock.advance(10);
    const res = await refresh(ti, app, first.refresh_token!);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.body.token_type).toBe("Bearer");
    expect(res.body.expires_in).toBe(300);
    expect(res.body.scope).toBe(first.scope);
    expect(res.body.refresh_token).toMatch(/^egr_/);
    expect(res.body.refresh_token).not.toBe(first.refresh_token);
    expect(res.body.access_token).not.toBe(first.access_token);
    const info = await userinfo(ti, res.body.access_token);
    expect(info.status).toBe(200);
    expect(info.body.sub).toBe(user.id);

    const fid = await familyOf(ti.db, first.refresh_token!);
    const old = await tokenRow(ti.db, first.refresh_token!);
    const next = await tokenRow(ti.db, res.body.refresh_token);
    expect(old!.consumed_at).not.toBeNull();
    expect(next).toMatchObject({ family_id: fid, generation: 2, consumed_at: null });
    expect(await liveTokens(ti.db, fid)).toBe(1);
    expect(decodeJwt(res.body.access_token).payload.sid).toBe(fid);
    expect(await auditEvents(ti.db, "refresh", fid)).toHaveLength(1);
  });

  it("the old refresh token stops working once rotated", async () => {
    const first = await loginOk(ti, strict, user);
    const second = await refreshOk(ti, strict, first.refresh_token!);
    clock.advance(1);
    expectOAuthError(await refresh(ti, strict, first.refresh_token!), 400, "invalid_grant");
    // and with a normal grace window, once the window has passed
    const a = await loginOk(ti, app, user);
    await refreshOk(ti, app, a.refresh_token!);
    clock.advance(16);
    expectOAuthError(await refresh(ti, app, a.refresh_token!), 400, "invalid_grant");
    expect(second.refresh_token).toBeTruthy();
  });

  it("every generation rotates in turn and the chain stays linear", async () => {
    let rt = (await loginOk(ti, app, user)).refresh_token!;
    const fid = await familyOf(ti.db, rt);
    for (let i = 0; i < 5; i++) {
      clock.advance(30);
      rt = (await refreshOk(ti, app, rt)).refresh_token!;
    }
    expect((await tokenRow(ti.db, rt))!.generation).toBe(6);
    const { rows } = await ti.db.query<{ n: number; live: number }>(
      "SELECT count(*)::int AS n, count(*) FILTER (WHERE consumed_at IS NULL)::int AS live FROM refresh_tokens WHERE family_id = $1",
      [fid],
    );
    expect(rows[0]).toEqual({ n: 6, live: 1 });
  });

  it("an invalid refresh token gets 400 invalid_grant and changes nothing", async () => {
    await loginOk(ti, app, user);
    const before = await snapshot(ti.db);
    for (const bad of [
      `egr_${"A".repeat(43)}`,
      "egr_short",
      "not-a-refresh-token",
      `egr_${"A".repeat(42)}!`,
    ]) {
      expectOAuthError(await refresh(ti, app, bad), 400, "invalid_grant");
    }
    expect(await snapshot(ti.db)).toBe(before);
  });

  it("an access token at the token endpoint gets invalid_grant", async () => {
    const t = await loginOk(ti, app, user);
    const before = await snapshot(ti.db);
    expectOAuthError(await refresh(ti, app, t.access_token), 400, "invalid_grant");
    expect(await snapshot(ti.db)).toBe(before);
    // the real refresh token still works afterwards
    await refreshOk(ti, app, t.refresh_token!);
  });

  it("another client's refresh token is invalid_grant and is not consumed", async () => {
    const other = await createClient(ti);
    const t = await loginOk(ti, app, user);
    const before = await snapshot(ti.db);
    expectOAuthError(await refresh(ti, other, t.refresh_token!), 400, "invalid_grant");
    expect(await snapshot(ti.db)).toBe(before);
    await refreshOk(ti, app, t.refresh_token!);
  });

  it("an expired refresh token gets invalid_grant", async () => {
    const shortIdle = await createClient(ti, { refresh_token_idle_ttl: 60 });
    const t = await loginOk(ti, shortIdle, user);
    clock.advance(61);
    const before = await snapshot(ti.db);
    expectOAuthError(await refresh(ti, shortIdle, t.refresh_token!), 400, "invalid_grant");
    expect(await snapshot(ti.db)).toBe(before);
  });

  it("a non-rotating client gets no refresh_token and keeps using the same one", async () => {
    const fixed = await createClient(ti, { rotate_refresh_tokens: false, refresh_token_idle_ttl: 3600 });
    const t = await loginOk(ti, fixed, user);
    const fid = await familyOf(ti.db, t.refresh_token!);
    let lastExpiry = (await tokenRow(ti.db, t.refresh_token!))!.expires_at.getTime();
    for (let i = 0; i < 3; i++) {
      clock.advance(1800);
      const res = await refreshOk(ti, fixed, t.refresh_token!);
      expect(res.refresh_token).toBeUndefined();
      expect((await userinfo(ti, res.access_token)).status).toBe(200);
      const row = await tokenRow(ti.db, t.refresh_token!);
      expect(row!.consumed_at).toBeNull();
      // sliding: each use pushes the idle expiry forward
      expect(row!.expires_at.getTime()).toBe(clock.now().getTime() + 3600_000);
      expect(row!.expires_at.getTime()).toBeGreaterThan(lastExpiry);
      lastExpiry = row!.expires_at.getTime();
    }
    const { rows } = await ti.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM refresh_tokens WHERE family_id = $1",
      [fid],
    );
    expect(rows[0]!.n).toBe(1);
  });

  it("scope narrowing: a subset narrows the access token, the family keeps its scope", async () => {
    const t = await loginOk(ti, app, user, { scope: "openid profile email" });
    const fid = await familyOf(ti.db, t.refresh_token!);
    const narrowed = await refreshOk(ti, app, t.refresh_token!, { scope: "openid" });
    expect(narrowed.scope).toBe("openid");
    expect(decodeJwt(narrowed.access_token).payload.scope).toBe("openid");
    expect((await family(ti.db, fid))!.scope).toBe("openid profile email");
    // the next refresh without a scope gets the family's full scope back
    clock.advance(20);
    const full = await refreshOk(ti, app, narrowed.refresh_token!);
    expect(full.scope).toBe("openid profile email");
    expect(decodeJwt(full.access_token).payload.scope).toBe("openid profile email");
  });

  it("scope widening on refresh is invalid_scope and leaves the token usable", async () => {
    const t = await loginOk(ti, app, user, { scope: "openid" });
    const before = await snapshot(ti.db);
    expectOAuthError(
      await refresh(ti, app, t.refresh_token!, { scope: "openid email" }),
      400,
      "invalid_scope",
    );
    expectOAuthError(await refresh(ti, app, t.refresh_token!, { scope: "admin" }), 400, "invalid_scope");
    expect(await snapshot(ti.db)).toBe(before);
    expect((await refreshOk(ti, app, t.refresh_token!)).scope).toBe("openid");
  });

  it("a refresh token of a revoked session (admin) is invalid_grant", async () => {
    const t = await loginOk(ti, app, user);
    const fid = await familyOf(ti.db, t.refresh_token!);
    const res = await ti.admin("DELETE", `/admin/users/${user.id}/sessions/${fid}`);
    expect(res.status).toBe(204);
    expectOAuthError(await refresh(ti, app, t.refresh_token!), 400, "invalid_grant");
  });

  it("a client deleted after login can no longer refresh", async () => {
    const doomed = await createClient(ti);
    const t = await loginOk(ti, doomed, user);
    expect((await ti.admin("DELETE", `/admin/clients/${doomed.client_id}`)).status).toBe(204);
    const res = await refresh(ti, doomed, t.refresh_token!);
    expectOAuthError(res, 401, "invalid_client");
  });
});
