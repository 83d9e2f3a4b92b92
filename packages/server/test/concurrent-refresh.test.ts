import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  auditEvents,
  createClient,
  createUser,
  family,
  familyOf,
  liveTokens,
  loginOk,
  refresh,
  userinfo,
} from "./helpers.ts";

// Real time and real concurrent HTTP requests: nothing here moves a clock.
describe.each(DATABASES)("concurrent refresh with one token on %s", (kind) => {
  let ti: TestIssuer;
  let app: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind });
    app = await createClient(ti, { refresh_token_reuse_grace: 60 });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  it("50 concurrent refreshes all succeed with one identical successor and one live token", async () => {
    const t1 = await loginOk(ti, app, user);
    const fid = await familyOf(ti.db, t1.refresh_token!);
    const results = await Promise.all(Array.from({ length: 50 }, () => refresh(ti, app, t1.refresh_token!)));
    const statuses = results.map((r) => r.status);
    expect(statuses, results.map((r) => r.text).join("\n")).toEqual(Array(50).fill(200));
    const refreshTokens = new Set(results.map((r) => r.body.refresh_token));
    const accessTokens = new Set(results.map((r) => r.body.access_token));
    expect(refreshTokens.size).toBe(1);
    expect(accessTokens.size).toBe(1);
    const [successor] = [...refreshTokens];
    expect(successor).not.toBe(t1.refresh_token);

    expect(await liveTokens(ti.db, fid)).toBe(1);
    const { rows } = await ti.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM refresh_tokens WHERE family_id = $1",
      [fid],
    );
    expect(rows[0]!.n).toBe(2);
    expect((await family(ti.db, fid))!.revoked_at).toBeNull();
    expect(await auditEvents(ti.db, "refresh_token_reuse", fid)).toHaveLength(0);
    expect(await auditEvents(ti.db, "refresh", fid)).toHaveLength(1);
    expect(await auditEvents(ti.db, "refresh_replayed", fid)).toHaveLength(49);

    // nobody was logged out: the successor refreshes, the access token works
    expect((await userinfo(ti, [...accessTokens][0]!)).status).toBe(200);
    const next = await refresh(ti, app, successor!);
    expect(next.status, next.text).toBe(200);
    expect(await liveTokens(ti.db, fid)).toBe(1);
  });

  it("two rounds of 25 concurrent refreshes advance the chain by exactly two", async () => {
    const t1 = (await loginOk(ti, app, user)).refresh_token!;
    const fid = await familyOf(ti.db, t1);
    const round1 = await Promise.all(Array.from({ length: 25 }, () => refresh(ti, app, t1)));
    expect(round1.every((r) => r.status === 200)).toBe(true);
    const t2 = round1[0]!.body.refresh_token as string;
    expect(new Set(round1.map((r) => r.body.refresh_token))).toEqual(new Set([t2]));
    // a late tab still retrying T1 while others already use T2
    const round2 = await Promise.all(
      Array.from({ length: 25 }, (_, i) => refresh(ti, app, i % 5 === 0 ? t1 : t2)),
    );
    expect(round2.map((r) => r.status)).toEqual(Array(25).fill(200));
    const fromT1 = new Set(round2.filter((_, i) => i % 5 === 0).map((r) => r.body.refresh_token));
    const fromT2 = new Set(round2.filter((_, i) => i % 5 !== 0).map((r) => r.body.refresh_token));
    expect(fromT1).toEqual(new Set([t2]));
    expect(fromT2.size).toBe(1);
    expect(await liveTokens(ti.db, fid)).toBe(1);
    const { rows } = await ti.db.query<{ max: number }>(
      "SELECT max(generation)::int AS max FROM refresh_tokens WHERE family_id = $1",
      [fid],
    );
    expect(rows[0]!.max).toBe(3);
    expect((await family(ti.db, fid))!.revoked_at).toBeNull();
  });

  it("concurrent refreshes of a non-rotating client all succeed and keep one token", async () => {
    const fixed = await createClient(ti, { rotate_refresh_tokens: false });
    const t = await loginOk(ti, fixed, user);
    const fid = await familyOf(ti.db, t.refresh_token!);
    const results = await Promise.all(Array.from({ length: 20 }, () => refresh(ti, fixed, t.refresh_token!)));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(results.every((r) => r.body.refresh_token === undefined)).toBe(true);
    expect(await liveTokens(ti.db, fid)).toBe(1);
    expect((await family(ti.db, fid))!.revoked_at).toBeNull();
  });

  it("concurrent refreshes of many families of one user do not interfere", async () => {
    const sessions = await Promise.all(Array.from({ length: 8 }, () => loginOk(ti, app, user)));
    const results = await Promise.all(
      sessions.flatMap((s) => [refresh(ti, app, s.refresh_token!), refresh(ti, app, s.refresh_token!)]),
    );
    expect(results.map((r) => r.status)).toEqual(Array(16).fill(200));
    for (let i = 0; i < sessions.length; i++) {
      expect(results[2 * i]!.body.refresh_token).toBe(results[2 * i + 1]!.body.refresh_token);
      const fid = await familyOf(ti.db, sessions[i]!.refresh_token!);
      expect(await liveTokens(ti.db, fid)).toBe(1);
    }
  });
});
