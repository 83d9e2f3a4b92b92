import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addressKey } from "../src/rate-limit/address-key.ts";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  expectOAuthError,
  postForm,
  uniq,
} from "./helpers.ts";

/** A password login as seen from `ip` (the test issuer trusts X-Forwarded-For from 127.0.0.1). */
function loginFrom(ti: TestIssuer, client: TestClient, user: TestUser, ip: string, password = user.password) {
  return postForm(ti, "/token", { grant_type: "password", username: user.username, password }, client, {
    "x-forwarded-for": ip,
  });
}

/**
 * Failed logins lock out one (exact username, address) pair, never the account: a guesser at one
 * address cannot keep the owner out from another, and usernames are keys exactly as spelled.
 */
describe.each(DATABASES)("login throttling on %s", (kind) => {
  describe("defaults", () => {
    let ti: TestIssuer;
    let app: TestClient;
    beforeAll(async () => {
      ti = await startTestIssuer({ database: kind, env: { EVERGREEN_TRUST_PROXY: "127.0.0.1" } });
      app = await createClient(ti);
    });
    afterAll(() => ti?.close());

    it("10 wrong passwords for alice from address A do not block alice's correct login from address B", async () => {
      const alice = await createUser(ti, uniq("alice-"));
      for (let i = 0; i < 10; i++) {
        expectOAuthError(await loginFrom(ti, app, alice, "203.0.113.1", `wrong-${i}`), 400, "invalid_grant");
      }
      // A is locked out of alice, even with the right password
      const locked = await loginFrom(ti, app, alice, "203.0.113.1");
      expectOAuthError(locked, 429, "too_many_requests");
      expect(Number(locked.headers.get("retry-after"))).toBeGreaterThan(0);
      // B is not
      const fromB = await loginFrom(ti, app, alice, "198.51.100.7");
      expect(fromB.status, fromB.text).toBe(200);
      expect(fromB.body.refresh_token).toMatch(/^egr_/);
    });

    it("failures against BOB do not count against bob: the exact username is the key", async () => {
      const suffix = uniq();
      const bob = await createUser(ti, `bob${suffix}`);
      const BOB = { ...bob, username: `BOB${suffix}` };
      for (let i = 0; i < 12; i++) {
        const r = await loginFrom(ti, app, BOB, "203.0.113.2", `wrong-${i}`);
        expect([400, 429]).toContain(r.status);
      }
      const res = await loginFrom(ti, app, bob, "203.0.113.2");
      expect(res.status, res.text).toBe(200);
    });

    it("addresses of one IPv6 /64 share a budget; another /64 does not", async () => {
      const carol = await createUser(ti, uniq("carol-"));
      for (let i = 1; i <= 10; i++) {
        expectOAuthError(
          await loginFrom(ti, app, carol, `2001:db8:1:2::${i.toString(16)}`, `wrong-${i}`),
          400,
          "invalid_grant",
        );
      }
      expectOAuthError(await loginFrom(ti, app, carol, "2001:db8:1:2:ffff::1"), 429, "too_many_requests");
      expect((await loginFrom(ti, app, carol, "2001:db8:1:3::1")).status).toBe(200);
    });
  });

  describe("the per-username budget slows, never locks", () => {
    let ti: TestIssuer;
    let clock: ManualClock;
    let app: TestClient;
    beforeAll(async () => {
      clock = new ManualClock();
      ti = await startTestIssuer({
        database: kind,
        clock,
        env: {
          EVERGREEN_TRUST_PROXY: "127.0.0.1",
          EVERGREEN_RATE_LIMIT_FAILED_LOGINS: "3",
          EVERGREEN_RATE_LIMIT_FAILED_LOGINS_PER_USER: "5",
        },
      });
      app = await createClient(ti);
    });
    afterAll(() => ti?.close());

    it("past it, each address gets one attempt per minute at that account; the owner's right password still works", async () => {
      const dave = await createUser(ti, uniq("dave-"));
      // a distributed guesser: 3 failures from each of two addresses (6 > 5)
      for (const ip of ["203.0.113.10", "203.0.113.11"]) {
        for (let i = 0; i < 3; i++) {
          expectOAuthError(await loginFrom(ti, app, dave, ip, `guess-${ip}-${i}`), 400, "invalid_grant");
        }
        expectOAuthError(await loginFrom(ti, app, dave, ip), 429, "too_many_requests");
      }
      // a third address guesses once, then is slowed
      expectOAuthError(await loginFrom(ti, app, dave, "203.0.113.12", "guess-x"), 400, "invalid_grant");
      const slowed = await loginFrom(ti, app, dave, "203.0.113.12", "guess-y");
      expectOAuthError(slowed, 429, "too_many_requests");
      expect(Number(slowed.headers.get("retry-after"))).toBeLessThanOrEqual(60);
      // the owner, from their own address, is not locked out
      const owner = await loginFrom(ti, app, dave, "198.51.100.20");
      expect(owner.status, owner.text).toBe(200);
      // a minute later the slowed address may try again
      clock.advance(61);
      expectOAuthError(await loginFrom(ti, app, dave, "203.0.113.12", "guess-z"), 400, "invalid_grant");
      // other accounts are untouched
      const erin = await createUser(ti, uniq("erin-"));
      expect((await loginFrom(ti, app, erin, "203.0.113.12")).status).toBe(200);
    });
  });
});

describe("address keys", () => {
  it("IPv4 is itself; IPv6 is its /64; IPv4-mapped IPv6 is the IPv4 address", () => {
    expect(addressKey("203.0.113.9")).toBe("203.0.113.9");
    expect(addressKey("2001:db8:1:2::5")).toBe("2001:db8:1:2::/64");
    expect(addressKey("2001:0DB8:0001:0002:aaaa:bbbb:cccc:dddd")).toBe("2001:db8:1:2::/64");
    expect(addressKey("::1")).toBe("0:0:0:0::/64");
    expect(addressKey("2001:db8::")).toBe("2001:db8:0:0::/64");
    expect(addressKey("::ffff:198.51.100.1")).toBe("198.51.100.1");
  });
});
