/**
 * The SDK against the real issuer (packages/server), through a proxy that counts refresh calls
 * and cuts connections on demand. The issuer and the sessions share one time: tests jump it past
 * the one-minute access tokens' expiry instead of sleeping, so a busy machine changes nothing.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createSession, memoryStorage, processLock, SessionExpiredError } from "../src/index.ts";
import { type IssuerFixture, PASSWORD, startIssuerFixture, TOKEN_TTL, viaProxy } from "./support/issuer.ts";

let fixture: IssuerFixture;
beforeAll(async () => {
  fixture = await startIssuerFixture();
}, 120_000);
afterAll(() => fixture?.close());
beforeEach(() => fixture.proxy.reset());

/** Jumps the shared time past the current access tokens' expiry. */
const expireAccessTokens = () => fixture.time.jump(TOKEN_TTL * 1000 + 1000);

const userinfo = () => `${fixture.proxy.url}/userinfo`;

async function loggedIn(
  settings: Record<string, unknown> = {},
  extra: Partial<Parameters<typeof createSession>[0]> = {},
) {
  const clientId = await fixture.client(settings);
  const session = createSession({ ...viaProxy(fixture, clientId), retry: { baseDelay: 50 }, ...extra });
  await session.loginWithPassword(fixture.username, PASSWORD);
  return { session, clientId };
}

describe("against the real issuer", { timeout: 120_000 }, () => {
  it("a long-running loop of requests never sees a 401", async () => {
    const { session } = await loggedIn();
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) {
      // Five minutes in 10 s steps: five access-token lifetimes; timer refreshes fire as time passes them.
      fixture.time.jump(10_000);
      const batch = await Promise.all([1, 2, 3].map(() => session.fetch(userinfo())));
      statuses.push(...batch.map((r) => r.status));
    }
    session.dispose();
    expect(statuses).toHaveLength(90);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(fixture.proxy.successfulRefreshes().length).toBeGreaterThanOrEqual(3);
    const body = await (await session.fetch(userinfo())).json();
    expect(body.preferred_username).toBe(fixture.username);
  });

  it("200 concurrent requests with an expired token cause exactly one refresh call", async () => {
    const { session } = await loggedIn({}, { autoRefresh: false });
    expireAccessTokens(); // the access token is now expired at the issuer too
    fixture.proxy.reset();
    const responses = await Promise.all(Array.from({ length: 200 }, () => session.fetch(userinfo())));
    expect(responses.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    expect(fixture.proxy.refreshes()).toHaveLength(1);
    expect(fixture.proxy.unauthorized("/userinfo")).toHaveLength(0);
  });

  it("a 401 is refreshed once and retried once with the same method, headers and body — and only once", async () => {
    const { session } = await loggedIn({}, { autoRefresh: false });
    // The issuer rejects the token it gets first; the retry carries the refreshed token.
    let first = true;
    fixture.proxy.setFault((r) => {
      if (r.path === "/userinfo" && first) {
        first = false;
        return "unauthorized";
      }
      return "pass";
    });
    const ok = await session.fetch(userinfo(), { method: "GET", headers: { "x-trace": "abc" } });
    expect(ok.status).toBe(200);
    const calls = fixture.proxy.seen.filter((r) => r.path === "/userinfo");
    expect(calls).toHaveLength(2);
    expect(calls[0]?.authorization).not.toBe(calls[1]?.authorization);
    expect(fixture.proxy.refreshes()).toHaveLength(1);

    // A resource that always answers 401: one refresh, one retry, then the 401 reaches the caller.
    fixture.proxy.reset();
    fixture.proxy.setFault((r) => (r.path === "/userinfo" ? "unauthorized" : "pass"));
    const denied = await session.fetch(userinfo());
    expect(denied.status).toBe(401);
    expect(fixture.proxy.seen.filter((r) => r.path === "/userinfo")).toHaveLength(2);
    expect(fixture.proxy.refreshes()).toHaveLength(1);
  });

  it("follows rotation under concurrency without the issuer detecting reuse", async () => {
    // Three "tabs" sharing one store and one lock, each firing concurrent requests.
    const clientId = await fixture.client({ refresh_token_reuse_grace: 0 });
    const storage = memoryStorage();
    const lock = processLock();
    const tabs = [1, 2, 3].map(() => createSession({ ...viaProxy(fixture, clientId), storage, lock }));
    await tabs[0]?.loginWithPassword(fixture.username, PASSWORD);
    const expired: unknown[] = [];
    for (const tab of tabs) tab.on("expired", (e) => expired.push(e));
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      fixture.time.jump(10_000);
      const batch = await Promise.all(tabs.flatMap((tab) => [tab.fetch(userinfo()), tab.fetch(userinfo())]));
      statuses.push(...batch.map((r) => r.status));
    }
    for (const tab of tabs) tab.dispose();
    const trace = JSON.stringify(
      fixture.proxy.seen.map((r) => [r.path, r.form?.get("refresh_token")?.slice(0, 10), r.status]),
    );
    expect(
      statuses.filter((s) => s !== 200),
      trace,
    ).toEqual([]);
    expect(expired, trace).toEqual([]);
    // Every refresh presented a token never presented before: the lineage stayed linear.
    const presented = fixture.proxy.refreshes().map((r) => r.form?.get("refresh_token"));
    expect(presented.length).toBeGreaterThanOrEqual(2);
    expect(new Set(presented).size, trace).toBe(presented.length);
    expect(
      fixture.proxy.refreshes().every((r) => r.status === 200),
      trace,
    ).toBe(true);
  });

  it("keeps the refresh token when the server returns no new one", async () => {
    const { session } = await loggedIn({ rotate_refresh_tokens: false }, { autoRefresh: false });
    const before = (await session.getTokens())?.refreshToken;
    expect(before).toMatch(/^egr_/);
    for (let i = 0; i < 2; i++) {
      expireAccessTokens();
      expect((await session.fetch(userinfo())).status).toBe(200);
    }
    const refreshes = fixture.proxy.successfulRefreshes();
    expect(refreshes).toHaveLength(2);
    expect(refreshes.map((r) => r.form?.get("refresh_token"))).toEqual([before, before]);
    expect((await session.getTokens())?.refreshToken).toBe(before);
  });

  it("invalid_grant ends the session: SessionExpiredError, one expired event, tokens cleared", async () => {
    const storage = memoryStorage();
    const { session, clientId } = await loggedIn({}, { storage, autoRefresh: false });
    expect(await storage.get(`evergreen:${fixture.issuer.url}:${clientId}`)).not.toBeNull();
    const events: unknown[] = [];
    session.on("expired", (e) => events.push(e));
    const revoked = await fixture.issuer.admin("DELETE", `/admin/users/${fixture.userId}/sessions`);
    expect(revoked.status).toBeLessThan(300);
    expireAccessTokens();
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => session.fetch(userinfo())));
    for (const result of results) {
      expect(result.status).toBe("rejected");
      expect((result as PromiseRejectedResult).reason).toBeInstanceOf(SessionExpiredError);
    }
    expect(events).toHaveLength(1);
    expect(await session.getTokens()).toBeNull();
    expect(await storage.get(`evergreen:${fixture.issuer.url}:${clientId}`)).toBeNull();
    await expect(session.fetch(userinfo())).rejects.toBeInstanceOf(SessionExpiredError);
    expect(events).toHaveLength(1);
  });

  it("a network failure during refresh keeps the tokens and recovers", async () => {
    const { session } = await loggedIn({}, { autoRefresh: false, retry: { attempts: 3, baseDelay: 50 } });
    expireAccessTokens();
    // Every refresh attempt fails at the network level: the call fails, the tokens stay.
    fixture.proxy.setFault((r) => (r.form?.get("grant_type") === "refresh_token" ? "refuse" : "pass"));
    const kept = (await session.getTokens())?.refreshToken;
    await expect(session.fetch(userinfo())).rejects.toMatchObject({ code: "refresh_failed" });
    expect(fixture.proxy.refreshes()).toHaveLength(3);
    expect((await session.getTokens())?.refreshToken).toBe(kept);
    // Two failures, then the network is back: the same call recovers by itself.
    let failures = 2;
    fixture.proxy.setFault((r) =>
      r.form?.get("grant_type") === "refresh_token" && failures-- > 0 ? "refuse" : "pass",
    );
    expect((await session.fetch(userinfo())).status).toBe(200);
    expect((await session.getTokens())?.refreshToken).not.toBe(kept);
  });

  it("a refresh whose response is lost does not log the user out", async () => {
    const { session } = await loggedIn({ refresh_token_reuse_grace: 30 }, { autoRefresh: false });
    const events: string[] = [];
    session.on("expired", () => events.push("expired"));
    expireAccessTokens();
    let drop = true;
    fixture.proxy.setFault((r) => {
      if (r.form?.get("grant_type") === "refresh_token" && drop) {
        drop = false;
        return "drop-response"; // the issuer rotated, the client never heard
      }
      return "pass";
    });
    expect((await session.fetch(userinfo())).status).toBe(200);
    const [lost, retried] = fixture.proxy.refreshes();
    expect(lost?.status).toBe(200);
    expect(retried?.form?.get("refresh_token")).toBe(lost?.form?.get("refresh_token"));
    // The family is intact: later refreshes keep working.
    expireAccessTokens();
    expect((await session.fetch(userinfo())).status).toBe(200);
    expect(fixture.proxy.refreshes().at(-1)?.status).toBe(200);
    expect(events).toEqual([]);
  });

  it("a device clock 10 minutes fast or slow still refreshes on time", async () => {
    const run = async (skew: number) => {
      const { session } = await loggedIn({}, { clock: fixture.time.device({ skew }) });
      const statuses: number[] = [];
      let refreshes = 0;
      session.on("refreshed", () => refreshes++);
      for (let i = 0; i < 40; i++) {
        // 200 s in 5 s steps: a refresh every 30 s or so (the issuer's exp has whole seconds).
        fixture.time.jump(5000);
        statuses.push((await session.fetch(userinfo())).status);
      }
      session.dispose();
      return { statuses, refreshes };
    };
    for (const { statuses, refreshes } of [await run(10 * 60_000), await run(-10 * 60_000)]) {
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      // On time: every half minute, not on every request (a fast clock would make every token look expired).
      expect(refreshes).toBeGreaterThanOrEqual(5);
      expect(refreshes).toBeLessThanOrEqual(7);
    }
    // ... and never late (a slow clock would let tokens expire and draw 401s from the issuer).
    expect(fixture.proxy.unauthorized("/userinfo")).toHaveLength(0);
  });

  it("logout revokes the refresh token at the issuer and clears storage", async () => {
    const storage = memoryStorage();
    const { session } = await loggedIn({}, { storage, autoRefresh: false });
    const refreshToken = (await session.getTokens())?.refreshToken as string;
    expect(await session.logout()).toEqual({ revoked: true });
    expect(await session.getTokens()).toBeNull();
    const reuse = await fetch(`${fixture.issuer.url}/token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken, client_id: "x" }),
    });
    expect(reuse.status).toBeGreaterThanOrEqual(400);
  });

  it("discovers the endpoints from the issuer's metadata", async () => {
    const clientId = await fixture.client();
    const session = createSession({
      issuer: fixture.issuer.url,
      clientId,
      autoRefresh: false,
      clock: fixture.time.device(),
    });
    await session.loginWithPassword(fixture.username, PASSWORD);
    const res = await session.fetch(`${fixture.issuer.url}/userinfo`);
    expect(res.status).toBe(200);
    expect((await session.refresh()).refreshToken).toMatch(/^egr_/);
  });

  for (const [name, drift] of [
    ["early", -50],
    ["late", 5000],
  ] as const) {
    it(`an idle session keeps refreshing on its timer when the timer fires ${name}`, async () => {
      const { session } = await loggedIn({}, { clock: fixture.time.device({ drift }) });
      const refreshed: string[] = [];
      session.on("refreshed", (event) => refreshed.push(event.source));
      for (let i = 1; i <= 4; i++) {
        // Exactly when the timer fires: before the tokens are due (early) or after (late).
        expect(fixture.time.jumpToNextTimer()).toBe(true);
        await expect.poll(() => refreshed.length, { timeout: 30_000 }).toBe(i);
      }
      expect(refreshed).toEqual(["this", "this", "this", "this"]);
      expect(fixture.proxy.successfulRefreshes()).toHaveLength(4);
      expect(fixture.proxy.seen.filter((r) => r.path === "/userinfo")).toHaveLength(0); // idle: no request drove them
      expect((await session.fetch(userinfo())).status).toBe(200);
      expect(fixture.proxy.refreshes()).toHaveLength(4);
      session.dispose();
    });
  }
});
