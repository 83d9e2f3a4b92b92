/**
 * The SDK against the real issuer (packages/server) with a 2 s access-token lifetime, through a
 * proxy that counts refresh calls and cuts connections on demand.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createSession, memoryStorage, processLock, SessionExpiredError, systemClock } from "../src/index.ts";
import { type IssuerFixture, PASSWORD, sleep, startIssuerFixture, viaProxy } from "./support/issuer.ts";

let fixture: IssuerFixture;
beforeAll(async () => {
  fixture = await startIssuerFixture();
});
afterAll(() => fixture?.close());
beforeEach(() => fixture.proxy.reset());

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

describe("against the real issuer", () => {
  it("a long-running loop of requests never sees a 401", async () => {
    const { session } = await loggedIn();
    const statuses: number[] = [];
    const until = Date.now() + 6500; // more than three access-token lifetimes
    while (Date.now() < until) {
      const batch = await Promise.all([1, 2, 3].map(() => session.fetch(userinfo())));
      statuses.push(...batch.map((r) => r.status));
      await sleep(40);
    }
    session.dispose();
    expect(statuses.length).toBeGreaterThan(50);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(fixture.proxy.successfulRefreshes().length).toBeGreaterThanOrEqual(3);
    const body = await (await session.fetch(userinfo())).json();
    expect(body.preferred_username).toBe(fixture.username);
  });

  it("200 concurrent requests with an expired token cause exactly one refresh call", async () => {
    const { session } = await loggedIn({}, { autoRefresh: false });
    await sleep(2100); // the access token is now expired at the issuer too
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
    const until = Date.now() + 5000;
    const statuses: number[] = [];
    while (Date.now() < until) {
      const batch = await Promise.all(tabs.flatMap((tab) => [tab.fetch(userinfo()), tab.fetch(userinfo())]));
      statuses.push(...batch.map((r) => r.status));
      await sleep(50);
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
      await sleep(2100);
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
    await sleep(2100);
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
    await sleep(2100);
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
    await sleep(2100);
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
    await sleep(2100);
    expect((await session.fetch(userinfo())).status).toBe(200);
    expect(fixture.proxy.refreshes().at(-1)?.status).toBe(200);
    expect(events).toEqual([]);
  });

  it("a device clock 10 minutes fast or slow still refreshes on time", async () => {
    const run = async (offset: number) => {
      const clock = { ...systemClock, now: () => Date.now() + offset };
      const { session } = await loggedIn({}, { clock });
      const statuses: number[] = [];
      let refreshes = 0;
      session.on("refreshed", () => refreshes++);
      const until = Date.now() + 5000;
      while (Date.now() < until) {
        statuses.push((await session.fetch(userinfo())).status);
        await sleep(50);
      }
      session.dispose();
      return { statuses, refreshes };
    };
    const [fast, slow] = await Promise.all([run(10 * 60_000), run(-10 * 60_000)]);
    for (const { statuses, refreshes } of [fast, slow]) {
      expect(statuses.filter((s) => s !== 200)).toEqual([]);
      // On time: not on every request (a fast clock would make every token look expired) ...
      expect(statuses.length).toBeGreaterThan(30);
      expect(refreshes).toBeGreaterThanOrEqual(2);
      // (A 2 s token with whole-second `iat`/`exp` lives 1–2 s, refreshed at half its life: ≤ 10 in 5 s.)
      expect(refreshes).toBeLessThanOrEqual(12);
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
    const session = createSession({ issuer: fixture.issuer.url, clientId, autoRefresh: false });
    await session.loginWithPassword(fixture.username, PASSWORD);
    const res = await session.fetch(`${fixture.issuer.url}/userinfo`);
    expect(res.status).toBe(200);
    expect((await session.refresh()).refreshToken).toMatch(/^egr_/);
  });
});
