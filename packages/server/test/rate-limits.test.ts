import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DATABASES,
  type TestDatabase,
  type TestIssuer,
  createTestDatabase,
  startTestIssuer,
} from "./harness.ts";
import {
  type HttpResult,
  type TestUser,
  createClient,
  createUser,
  expectOAuthError,
  login,
  loginOk,
  snapshot,
  token,
  uniq,
} from "./helpers.ts";

function expect429(res: HttpResult, limit: number) {
  expectOAuthError(res, 429, "too_many_requests");
  const retryAfter = Number(res.headers.get("retry-after"));
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(res.headers.get("ratelimit-limit")).toBe(String(limit));
  expect(res.headers.get("ratelimit-remaining")).toBe("0");
  expect(Number(res.headers.get("ratelimit-reset"))).toBeGreaterThanOrEqual(1);
}

describe.each(DATABASES)("rate limits on %s", (kind) => {
  describe("per IP", () => {
    let ti: TestIssuer;
    let clock: ManualClock;
    beforeAll(async () => {
      clock = new ManualClock();
      ti = await startTestIssuer({ database: kind, clock, env: { EVERGREEN_RATE_LIMIT_PER_IP: "5" } });
    });
    afterAll(() => ti?.close());

    it("answers 429 with Retry-After and RateLimit-* once the IP is over its limit, until the window ends", async () => {
      const app = await createClient(ti);
      const user = await createUser(ti);
      const first = await login(ti, app, user);
      expect(first.status).toBe(200);
      expect(first.headers.get("ratelimit-limit")).toBe("5");
      expect(first.headers.get("ratelimit-remaining")).toBe("4");
      for (let i = 0; i < 4; i++) expect((await login(ti, app, user)).status).toBe(200);
      const before = await snapshot(ti.db);
      const refused = await login(ti, app, user);
      expect429(refused, 5);
      expect(Number(refused.headers.get("retry-after"))).toBeLessThanOrEqual(60);
      // a refused request does nothing
      expect(await snapshot(ti.db)).toBe(before);
      clock.advance(61);
      expect((await login(ti, app, user)).status).toBe(200);
    });
  });

  describe("per client and per username", () => {
    let ti: TestIssuer;
    let clock: ManualClock;
    let user: TestUser;
    beforeAll(async () => {
      clock = new ManualClock();
      ti = await startTestIssuer({
        database: kind,
        clock,
        env: { EVERGREEN_RATE_LIMIT_PER_CLIENT: "3", EVERGREEN_RATE_LIMIT_FAILED_LOGINS: "3" },
      });
      user = await createUser(ti);
    });
    afterAll(() => ti?.close());

    it("a client over its limit gets 429; other clients are not affected", async () => {
      const busy = await createClient(ti);
      const calm = await createClient(ti);
      for (let i = 0; i < 3; i++) expect((await login(ti, busy, user)).status).toBe(200);
      expect429(await login(ti, busy, user), 3);
      expect((await login(ti, calm, user)).status).toBe(200);
      clock.advance(61);
      expect((await login(ti, busy, user)).status).toBe(200);
    });

    it("failed logins per username lock the account, even for the correct password later", async () => {
      const victim = await createUser(ti);
      const bystander = await createUser(ti);
      const clients = [await createClient(ti), await createClient(ti), await createClient(ti)];
      // three failures, spread over clients so the per-client limit is not what triggers
      for (const c of clients) {
        const res = await login(ti, c, { ...victim, password: "wrong-password" });
        expectOAuthError(res, 400, "invalid_grant");
      }
      const fresh = await createClient(ti);
      const before = await snapshot(ti.db);
      const locked = await login(ti, fresh, victim);
      expect429(locked, 3);
      expect(await snapshot(ti.db)).toBe(before);
      // the lock is per username: another account logs in fine
      await loginOk(ti, fresh, bystander);
      // after the login window (15 minutes) the right password works again
      clock.advance(15 * 60 + 1);
      await loginOk(ti, fresh, victim);
    });

    it("a successful login clears the failure count", async () => {
      const u = await createUser(ti);
      const c1 = await createClient(ti);
      const c2 = await createClient(ti);
      const c3 = await createClient(ti);
      expectOAuthError(await login(ti, c1, { ...u, password: "nope-nope" }), 400, "invalid_grant");
      expectOAuthError(await login(ti, c1, { ...u, password: "nope-nope" }), 400, "invalid_grant");
      await loginOk(ti, c2, u);
      expectOAuthError(await login(ti, c2, { ...u, password: "nope-nope" }), 400, "invalid_grant");
      expectOAuthError(await login(ti, c3, { ...u, password: "nope-nope" }), 400, "invalid_grant");
      await loginOk(ti, c3, u);
    });
  });

  describe("concurrent failed logins", () => {
    let ti: TestIssuer;
    beforeAll(async () => {
      ti = await startTestIssuer({ database: kind, env: { EVERGREEN_RATE_LIMIT_FAILED_LOGINS: "3" } });
    });
    afterAll(() => ti?.close());

    it("a correct guess hidden in a burst of parallel wrong guesses is refused once the lock engaged", async () => {
      const app = await createClient(ti);
      const victim = await createUser(ti);
      // 40 wrong guesses dispatched first, the right password last, all in parallel
      const guesses = await Promise.all([
        ...Array.from({ length: 40 }, (_, i) => login(ti, app, { ...victim, password: `guess-${i}` })),
        login(ti, app, victim),
      ]);
      const right = guesses.at(-1)!;
      expect429(right, 3);
      expect(right.body.access_token).toBeUndefined();
      expect(guesses.slice(0, 40).every((r) => r.status === 400 || r.status === 429)).toBe(true);
      const { rows } = await ti.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM families WHERE user_id = $1",
        [victim.id],
      );
      expect(rows[0]!.n).toBe(0);
      expect429(await login(ti, app, victim), 3);
    });

    it("parallel correct logins of one user are never throttled", async () => {
      const app = await createClient(ti);
      const user = await createUser(ti);
      const results = await Promise.all(Array.from({ length: 20 }, () => login(ti, app, user)));
      expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    });
  });

  describe("EVERGREEN_RATE_LIMIT=off", () => {
    let ti: TestIssuer;
    beforeAll(async () => {
      ti = await startTestIssuer({
        database: kind,
        env: {
          EVERGREEN_RATE_LIMIT: "off",
          EVERGREEN_RATE_LIMIT_PER_IP: "1",
          EVERGREEN_RATE_LIMIT_FAILED_LOGINS: "1",
        },
      });
    });
    afterAll(() => ti?.close());

    it("never throttles", async () => {
      const app = await createClient(ti);
      const user = await createUser(ti);
      expectOAuthError(await login(ti, app, { ...user, password: "wrong-one" }), 400, "invalid_grant");
      expectOAuthError(await login(ti, app, { ...user, password: "wrong-one" }), 400, "invalid_grant");
      await loginOk(ti, app, user);
      const res = await token(ti, { grant_type: "nope" }, app);
      expectOAuthError(res, 400, "unsupported_grant_type");
      expect(res.headers.get("ratelimit-limit")).toBeNull();
    });
  });

  describe("shared through Redis by two issuers on one database", () => {
    let db: TestDatabase;
    let a: TestIssuer;
    let b: TestIssuer;
    const env = { REDIS_URL: "redis://127.0.0.1:6379", EVERGREEN_RATE_LIMIT_FAILED_LOGINS: "3" };
    beforeAll(async () => {
      db = await createTestDatabase(kind);
      a = await startTestIssuer({ db, env });
      b = await startTestIssuer({ db, env });
    });
    afterAll(async () => {
      await a?.close();
      await b?.close();
      await db?.drop();
    });

    it("failed logins counted on one issuer lock the username on the other", async () => {
      const app = await createClient(a, { client_id: uniq("rl-client-") });
      const user = await createUser(a, uniq("rl-user-"));
      const wrong = { ...user, password: "definitely-wrong" };
      expectOAuthError(await login(a, app, wrong), 400, "invalid_grant");
      expectOAuthError(await login(b, app, wrong), 400, "invalid_grant");
      expectOAuthError(await login(a, app, wrong), 400, "invalid_grant");
      expect429(await login(b, app, user), 3);
      expect429(await login(a, app, user), 3);
    });

    it("without Redis the two processes count separately (control)", async () => {
      const c = await startTestIssuer({ db, env: { EVERGREEN_RATE_LIMIT_FAILED_LOGINS: "3" } });
      const d = await startTestIssuer({ db, env: { EVERGREEN_RATE_LIMIT_FAILED_LOGINS: "3" } });
      try {
        const app = await createClient(c);
        const user = await createUser(c);
        const wrong = { ...user, password: "definitely-wrong" };
        expectOAuthError(await login(c, app, wrong), 400, "invalid_grant");
        expectOAuthError(await login(d, app, wrong), 400, "invalid_grant");
        expectOAuthError(await login(c, app, wrong), 400, "invalid_grant");
        // d has seen one failure only
        await loginOk(d, app, user);
      } finally {
        await c.close();
        await d.close();
      }
    });
  });
});
