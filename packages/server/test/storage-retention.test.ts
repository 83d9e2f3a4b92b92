import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { runJanitor } from "../src/janitor.ts";
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
  loginOk,
  postForm,
  refresh,
  refreshOk,
  tokenRow,
} from "./helpers.ts";

const IDLE = 100;
const RETENTION = 50;

describe.each(DATABASES)("rotated tokens and the janitor on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let client: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
    client = await createClient(ti, { refresh_token_idle_ttl: IDLE, refresh_token_reuse_grace: 15 });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  const rows = async (fid: string) =>
    (
      await ti.db.query<{ generation: number; consumed: boolean }>(
        "SELECT generation, consumed_at IS NOT NULL AS consumed FROM refresh_tokens WHERE family_id = $1 ORDER BY generation",
        [fid],
      )
    ).rows;

  /** A session refreshed every 60 s, `n` times: every token it was ever given, oldest first. */
  async function activeSession(n: number): Promise<{ fid: string; tokens: string[] }> {
    const tokens = [(await loginOk(ti, client, user)).refresh_token!];
    for (let i = 0; i < n; i++) {
      clock.advance(60);
      tokens.push((await refreshOk(ti, client, tokens.at(-1)!)).refresh_token!);
    }
    return { fid: await familyOf(ti.db, tokens[0]!), tokens };
  }

  it("drops rotated tokens once their own idle expiry is the retention behind, never the live one", async () => {
    const { fid, tokens } = await activeSession(10);
    // Generation k was created at 60·(k−1) s and expires 100 s later; now is 600 s, so the
    // cutoff is 550 s: generations 1–8 (expiring at 100…520 s) go, 9 and 10 (580, 640) stay.
    expect((await runJanitor(ti.db, clock, RETENTION)).consumedTokensDeleted).toBe(8);
    expect(await rows(fid)).toEqual([
      { generation: 9, consumed: true },
      { generation: 10, consumed: true },
      { generation: 11, consumed: false },
    ]);
    // Two more refreshes 90 s apart: now 780 s, cutoff 730 s; 9, 10, 11 (580, 640, 700) go.
    clock.advance(90);
    tokens.push((await refreshOk(ti, client, tokens.at(-1)!)).refresh_token!);
    clock.advance(90);
    tokens.push((await refreshOk(ti, client, tokens.at(-1)!)).refresh_token!);
    expect((await runJanitor(ti.db, clock, RETENTION)).consumedTokensDeleted).toBe(3);
    // the live token is kept, and with it the rotation count (its generation)
    expect(await rows(fid)).toEqual([
      { generation: 12, consumed: true },
      { generation: 13, consumed: false },
    ]);
    // idempotent
    expect((await runJanitor(ti.db, clock, RETENTION)).consumedTokensDeleted).toBe(0);

    // An ancient token is now unknown: refused, and it does not revoke the family …
    expectOAuthError(await refresh(ti, client, tokens[3]!), 400, "invalid_grant");
    expect((await family(ti.db, fid))!.revoked_at).toBeNull();
    // … while reuse of a rotated token still kept revokes the family after the janitor ran.
    clock.advance(16);
    expectOAuthError(await refresh(ti, client, tokens[11]!), 400, "invalid_grant");
    expect((await family(ti.db, fid))!.revoked_reason).toBe("refresh_token_reuse");
    expectOAuthError(await refresh(ti, client, tokens.at(-1)!), 400, "invalid_grant");
    expect(await auditEvents(ti.db, "refresh_token_reuse", fid)).toHaveLength(1);
  });

  it("a live token past its idle expiry stays until its family is collected", async () => {
    const { fid, tokens } = await activeSession(1);
    clock.advance(IDLE + RETENTION - 10);
    await runJanitor(ti.db, clock, RETENTION);
    // The rotated first token is gone (expired 60+… ago), the live one is not.
    expect(await rows(fid)).toEqual([{ generation: 2, consumed: false }]);
    expectOAuthError(await refresh(ti, client, tokens[1]!), 400, "invalid_grant");
    clock.advance(20);
    expect((await runJanitor(ti.db, clock, RETENTION)).familiesDeleted).toBeGreaterThanOrEqual(1);
    expect(await rows(fid)).toEqual([]);
  });

  it("works in small batches and from several janitors at once", async () => {
    const chains = await Promise.all(
      [1, 2, 3].map(async () => [(await loginOk(ti, client, user)).refresh_token!]),
    );
    const step = async (seconds: number) => {
      clock.advance(seconds);
      for (const c of chains) c.push((await refreshOk(ti, client, c.at(-1)!)).refresh_token!);
    };
    for (let i = 0; i < 6; i++) await step(60);
    await step(90);
    // now 450 s after the logins, cutoff 400 s: generations 1–6 of each (expiring ≤ 400 s) go
    const reports = await Promise.all([
      runJanitor(ti.db, clock, RETENTION, { batchSize: 2 }),
      runJanitor(ti.db, clock, RETENTION, { batchSize: 3 }),
    ]);
    expect(reports[0]!.consumedTokensDeleted + reports[1]!.consumedTokensDeleted).toBe(3 * 6);
    for (const c of chains) {
      expect(await rows(await familyOf(ti.db, c.at(-1)!))).toEqual([
        { generation: 7, consumed: true },
        { generation: 8, consumed: false },
      ]);
    }
    // the live tokens still refresh
    await step(1);
  });

  it("never removes a rotated token inside its grace window (the retry still gets its successor)", async () => {
    const quick = await createClient(ti, { refresh_token_idle_ttl: 10, refresh_token_reuse_grace: 15 });
    const s1 = (await loginOk(ti, quick, user)).refresh_token!;
    clock.advance(5);
    const s2 = (await refreshOk(ti, quick, s1)).refresh_token!;
    // s1 expired 3 s ago (created at 0, idle 10 s) but its grace window runs to 20 s
    clock.advance(8);
    expect((await runJanitor(ti.db, clock, 0)).consumedTokensDeleted).toBe(0);
    expect((await refreshOk(ti, quick, s1)).refresh_token).toBe(s2);
    clock.advance(8);
    expect((await runJanitor(ti.db, clock, 0)).consumedTokensDeleted).toBeGreaterThanOrEqual(1);
    expect(await tokenRow(ti.db, s1)).toBeUndefined();
    expectOAuthError(await refresh(ti, quick, s1), 400, "invalid_grant");
  });
});

describe.each(DATABASES)("EVERGREEN_AUDIT_ROTATIONS=none on %s", (kind) => {
  let ti: TestIssuer;
  let client: TestClient;
  let user: TestUser;
  const clock = new ManualClock();

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind, clock, env: { EVERGREEN_AUDIT_ROTATIONS: "none" } });
    client = await createClient(ti, { refresh_token_reuse_grace: 15 });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  it("writes no event per refresh but every security event, and the generation still counts", async () => {
    const t1 = (await loginOk(ti, client, user)).refresh_token!;
    const fid = await familyOf(ti.db, t1);
    const t2 = (await refreshOk(ti, client, t1)).refresh_token!;
    const t3 = (await refreshOk(ti, client, t2)).refresh_token!;
    // a retry in the grace window is audited (not a plain rotation)
    expect((await refreshOk(ti, client, t2)).refresh_token).toBe(t3);
    expect(await auditEvents(ti.db, "login", fid)).toHaveLength(1);
    expect(await auditEvents(ti.db, "refresh", fid)).toHaveLength(0);
    expect(await auditEvents(ti.db, "refresh_replayed", fid)).toHaveLength(1);
    expect(
      (
        await ti.db.query(
          "SELECT generation FROM refresh_tokens WHERE consumed_at IS NULL AND family_id = $1",
          [fid],
        )
      ).rows,
    ).toEqual([{ generation: 3 }]);

    const sessions = await ti.admin("GET", `/admin/users/${user.id}/sessions`);
    expect(sessions.body.find((x: { sid: string }) => x.sid === fid)).toMatchObject({ rotations: 2 });

    // failures, reuse and revocation are always written
    const bad = await postForm(
      ti,
      "/token",
      { grant_type: "password", username: user.username, password: "wrong" },
      client,
    );
    expect(bad.status).toBe(400);
    expect((await auditEvents(ti.db, "login_failed")).length).toBeGreaterThanOrEqual(1);
    clock.advance(16);
    expectOAuthError(await refresh(ti, client, t1), 400, "invalid_grant");
    expect(await auditEvents(ti.db, "refresh_token_reuse", fid)).toHaveLength(1);
    const other = (await loginOk(ti, client, user)).refresh_token!;
    expect((await postForm(ti, "/revoke", { token: other }, client)).status).toBe(200);
    expect(await auditEvents(ti.db, "token_revoked", await familyOf(ti.db, other))).toHaveLength(1);
  });
});

describe("EVERGREEN_AUDIT_ROTATIONS and retention settings", () => {
  it("default to every rotation audited, 90 days, batches of 5,000; refuse an unknown mode", () => {
    const c = loadConfig({});
    expect(c.storage).toEqual({ auditRotations: "all", auditRetention: 90 * 86400, janitorBatch: 5000 });
    expect(
      loadConfig({ EVERGREEN_AUDIT_ROTATIONS: "none", EVERGREEN_AUDIT_RETENTION: "3600" }).storage,
    ).toMatchObject({
      auditRotations: "none",
      auditRetention: 3600,
    });
    expect(() => loadConfig({ EVERGREEN_AUDIT_ROTATIONS: "sometimes" })).toThrow(/EVERGREEN_AUDIT_ROTATIONS/);
  });
});
