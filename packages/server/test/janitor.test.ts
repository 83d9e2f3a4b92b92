import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runJanitor } from "../src/janitor.ts";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  expectOAuthError,
  familyOf,
  loginOk,
  postForm,
  refresh,
  refreshOk,
  tokenRow,
} from "./helpers.ts";

const RETENTION = 3600;

describe.each(DATABASES)("janitor on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let longLived: TestClient;
  let shortIdle: TestClient;
  let shortAbsolute: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
    longLived = await createClient(ti, { refresh_token_reuse_grace: 15 });
    shortIdle = await createClient(ti, { refresh_token_idle_ttl: 100 });
    shortAbsolute = await createClient(ti, { refresh_token_idle_ttl: 500, refresh_token_absolute_ttl: 600 });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  const exists = async (fid: string) =>
    (await ti.db.query("SELECT 1 FROM families WHERE id = $1", [fid])).rows.length === 1;
  const tokenCount = async (fid: string) =>
    (
      await ti.db.query<{ n: number }>("SELECT count(*)::int AS n FROM refresh_tokens WHERE family_id = $1", [
        fid,
      ])
    ).rows[0]!.n;

  it("drops sealed successors after the grace window and dead families after retention, keeps live ones", async () => {
    // a live session that rotated (its first token holds a sealed successor for 15 s)
    const live1 = await loginOk(ti, longLived, user);
    const live2 = await refreshOk(ti, longLived, live1.refresh_token!);
    const liveFid = await familyOf(ti.db, live1.refresh_token!);
    // a revoked one, an idle one, an absolutely expiring one
    const revoked = await loginOk(ti, longLived, user);
    const revokedFid = await familyOf(ti.db, revoked.refresh_token!);
    expect((await postForm(ti, "/revoke", { token: revoked.refresh_token! }, longLived)).status).toBe(200);
    const idle = await loginOk(ti, shortIdle, user);
    const idleFid = await familyOf(ti.db, idle.refresh_token!);
    const abs = await loginOk(ti, shortAbsolute, user);
    const absFid = await familyOf(ti.db, abs.refresh_token!);

    // inside the grace window and the retention period, the janitor touches nothing
    const early = await runJanitor(ti.db, clock, RETENTION);
    expect(early).toMatchObject({ sealsDropped: 0, familiesDeleted: 0 });
    expect((await tokenRow(ti.db, live1.refresh_token!))!.successor_sealed).not.toBeNull();
    // the retry inside the window still gets the same successor
    expect((await refreshOk(ti, longLived, live1.refresh_token!)).refresh_token).toBe(live2.refresh_token);

    // after the grace window, the sealed successor is dropped
    clock.advance(16);
    const afterGrace = await runJanitor(ti.db, clock, RETENTION);
    expect(afterGrace.sealsDropped).toBe(1);
    expect(afterGrace.familiesDeleted).toBe(0);
    expect((await tokenRow(ti.db, live1.refresh_token!))!.successor_sealed).toBeNull();
    expect((await tokenRow(ti.db, live1.refresh_token!))!.consumed_at).not.toBeNull();
    for (const fid of [liveFid, revokedFid, idleFid, absFid]) expect(await exists(fid)).toBe(true);

    // keep the live session in use while time passes beyond the other families' deaths + retention
    let liveRt = live2.refresh_token!;
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      liveRt = (await refreshOk(ti, longLived, liveRt)).refresh_token!;
    }
    const later = await runJanitor(ti.db, clock, RETENTION);
    expect(later.familiesDeleted).toBe(3);
    for (const fid of [revokedFid, idleFid, absFid]) {
      expect(await exists(fid)).toBe(false);
      expect(await tokenCount(fid)).toBe(0);
    }
    // the live family and its whole chain (needed for reuse detection) are kept
    expect(await exists(liveFid)).toBe(true);
    expect(await tokenCount(liveFid)).toBe(7);
    liveRt = (await refreshOk(ti, longLived, liveRt)).refresh_token!;

    // idempotent
    expect((await runJanitor(ti.db, clock, RETENTION)).familiesDeleted).toBe(0);
    // a token of a deleted family is simply unknown
    expectOAuthError(await refresh(ti, longLived, revoked.refresh_token!), 400, "invalid_grant");
    expectOAuthError(await refresh(ti, shortIdle, idle.refresh_token!), 400, "invalid_grant");
  });

  it("after the grace window a consumed token is reuse, whether or not the janitor ran", async () => {
    const t1 = await loginOk(ti, longLived, user);
    const t2 = await refreshOk(ti, longLived, t1.refresh_token!);
    const fid = await familyOf(ti.db, t1.refresh_token!);
    clock.advance(16);
    await runJanitor(ti.db, clock, RETENTION);
    expectOAuthError(await refresh(ti, longLived, t1.refresh_token!), 400, "invalid_grant");
    expectOAuthError(await refresh(ti, longLived, t2.refresh_token!), 400, "invalid_grant");
    const { rows } = await ti.db.query<{ revoked_reason: string }>(
      "SELECT revoked_reason FROM families WHERE id = $1",
      [fid],
    );
    expect(rows[0]!.revoked_reason).toBe("refresh_token_reuse");
  });

  it("deletes retired signing keys past their overlap", async () => {
    const before = (await ti.db.query("SELECT kid FROM signing_keys")).rows.length;
    expect((await ti.admin("POST", "/admin/keys/rotate")).status).toBe(201);
    expect((await runJanitor(ti.db, clock, RETENTION)).keysDeleted).toBe(0);
    clock.advance(3600);
    const report = await runJanitor(ti.db, clock, RETENTION);
    expect(report.keysDeleted).toBe(before);
    const { rows } = await ti.db.query<{ kid: string }>("SELECT kid FROM signing_keys");
    expect(rows.map((r) => r.kid)).toEqual([ti.issuer.ctx.keys.current().kid]);
  });
});
