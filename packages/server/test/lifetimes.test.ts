import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestUser,
  auditEvents,
  createClient,
  createUser,
  expectInvalidToken,
  expectOAuthError,
  family,
  familyOf,
  loginOk,
  refresh,
  refreshOk,
  tokenRow,
  userinfo,
} from "./helpers.ts";

describe.each(DATABASES)("token lifetimes and session cap on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let user: TestUser;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  it("access tokens live for the client's access_token_ttl", async () => {
    const app = await createClient(ti, { access_token_ttl: 120 });
    const t = await loginOk(ti, app, user);
    expect(t.expires_in).toBe(120);
    clock.advance(119);
    expect((await userinfo(ti, t.access_token)).status).toBe(200);
    clock.advance(2);
    expectInvalidToken(await userinfo(ti, t.access_token));
  });

  it("idle expiry slides: refreshing keeps the session alive, an idle gap ends it", async () => {
    const app = await createClient(ti, { refresh_token_idle_ttl: 100, refresh_token_absolute_ttl: 10_000 });
    let rt = (await loginOk(ti, app, user)).refresh_token!;
    const loginAt = clock.now().getTime();
    expect((await tokenRow(ti.db, rt))!.expires_at.getTime()).toBe(loginAt + 100_000);
    for (let i = 0; i < 4; i++) {
      clock.advance(90);
      rt = (await refreshOk(ti, app, rt)).refresh_token!;
      expect((await tokenRow(ti.db, rt))!.expires_at.getTime()).toBe(clock.now().getTime() + 100_000);
    }
    // 360 s after login, well past one idle period: still alive thanks to sliding
    clock.advance(101);
    expectOAuthError(await refresh(ti, app, rt), 400, "invalid_grant");
    // an expired token is not reuse: no family revocation, no security event
    const fid = await familyOf(ti.db, rt);
    expect((await family(ti.db, fid))!.revoked_at).toBeNull();
    expect(await auditEvents(ti.db, "refresh_token_reuse", fid)).toHaveLength(0);
  });

  it("absolute expiry: refreshing never extends the family past it", async () => {
    const app = await createClient(ti, { refresh_token_idle_ttl: 400, refresh_token_absolute_ttl: 1000 });
    let rt = (await loginOk(ti, app, user)).refresh_token!;
    const fid = await familyOf(ti.db, rt);
    const absolute = (await family(ti.db, fid))!.absolute_expires_at.getTime();
    expect(absolute).toBe(clock.now().getTime() + 1_000_000);
    for (let i = 0; i < 3; i++) {
      clock.advance(300);
      rt = (await refreshOk(ti, app, rt)).refresh_token!;
      const row = await tokenRow(ti.db, rt);
      expect(row!.expires_at.getTime()).toBeLessThanOrEqual(absolute);
      expect(row!.expires_at.getTime()).toBe(Math.min(clock.now().getTime() + 400_000, absolute));
    }
    // t = 900: the successor's expiry is clamped to the absolute limit
    expect((await tokenRow(ti.db, rt))!.expires_at.getTime()).toBe(absolute);
    expect((await family(ti.db, fid))!.absolute_expires_at.getTime()).toBe(absolute);
    clock.advance(99);
    rt = (await refreshOk(ti, app, rt)).refresh_token!;
    clock.advance(1);
    expectOAuthError(await refresh(ti, app, rt), 400, "invalid_grant");
  });

  it("a first token's idle expiry never exceeds the absolute limit", async () => {
    const app = await createClient(ti, { refresh_token_idle_ttl: 5000, refresh_token_absolute_ttl: 50 });
    const rt = (await loginOk(ti, app, user)).refresh_token!;
    const fid = await familyOf(ti.db, rt);
    expect((await tokenRow(ti.db, rt))!.expires_at.getTime()).toBe(
      (await family(ti.db, fid))!.absolute_expires_at.getTime(),
    );
    clock.advance(50);
    expectOAuthError(await refresh(ti, app, rt), 400, "invalid_grant");
  });

  it("a non-rotating client slides too, and also stops at the absolute limit", async () => {
    const app = await createClient(ti, {
      rotate_refresh_tokens: false,
      refresh_token_idle_ttl: 100,
      refresh_token_absolute_ttl: 250,
    });
    const rt = (await loginOk(ti, app, user)).refresh_token!;
    const absolute = (await family(ti.db, await familyOf(ti.db, rt)))!.absolute_expires_at.getTime();
    clock.advance(90);
    await refreshOk(ti, app, rt);
    clock.advance(90);
    await refreshOk(ti, app, rt);
    expect((await tokenRow(ti.db, rt))!.expires_at.getTime()).toBe(absolute);
    clock.advance(70);
    expectOAuthError(await refresh(ti, app, rt), 400, "invalid_grant");
    // and an idle gap kills a fresh one
    const rt2 = (await loginOk(ti, app, user)).refresh_token!;
    clock.advance(101);
    expectOAuthError(await refresh(ti, app, rt2), 400, "invalid_grant");
  });

  it("the per-user-per-client session cap evicts the oldest session", async () => {
    const app = await createClient(ti, { max_sessions_per_user: 2 });
    const other = await createClient(ti);
    const otherUser = await createUser(ti);
    const keep = await loginOk(ti, other, user);
    const otherUsers = await loginOk(ti, app, otherUser);
    const s1 = await loginOk(ti, app, user);
    clock.advance(1);
    const s2 = await loginOk(ti, app, user);
    clock.advance(1);
    const s3 = await loginOk(ti, app, user);
    const f1 = await familyOf(ti.db, s1.refresh_token!);
    expect((await family(ti.db, f1))!.revoked_reason).toBe("evicted");
    expect(await auditEvents(ti.db, "session_evicted", f1)).toHaveLength(1);
    expectOAuthError(await refresh(ti, app, s1.refresh_token!), 400, "invalid_grant");
    await refreshOk(ti, app, s2.refresh_token!);
    await refreshOk(ti, app, s3.refresh_token!);
    // other users and other clients are not counted against this cap
    await refreshOk(ti, other, keep.refresh_token!);
    await refreshOk(ti, app, otherUsers.refresh_token!);
  });

  it("the session cap never evicts the session being created, even for logins in the same instant", async () => {
    const app = await createClient(ti, { max_sessions_per_user: 1 });
    const tokens: string[] = [];
    for (let i = 0; i < 8; i++) tokens.push((await loginOk(ti, app, user)).refresh_token!);
    // the clock did not move: every family has the same created_at
    const last = tokens.at(-1)!;
    await refreshOk(ti, app, last);
    const { rows } = await ti.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM families WHERE client_id = $1 AND revoked_at IS NULL",
      [app.client_id],
    );
    expect(rows[0]!.n).toBe(1);
  });
});
