/** The session's rules, on a manual clock and an in-process token endpoint: no sleeping. */
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  BodyNotReplayableError,
  createSession,
  lockedStorage,
  memoryStorage,
  processLock,
  type SessionOptions,
  SessionExpiredError,
  StorageLockedError,
} from "../src/index.ts";
import { type FakeServer, fakeServer, json } from "./support/fake-endpoint.ts";
import { ManualClock } from "./support/manual-clock.ts";

const ISSUER = "https://as.example";
const API = "https://api.example/things";

async function setup(options: Partial<SessionOptions> = {}, server: FakeServer = fakeServer()) {
  const clock = new ManualClock();
  const storage = options.storage ?? memoryStorage();
  const session = createSession({
    issuer: ISSUER,
    tokenEndpoint: `${ISSUER}/token`,
    revocationEndpoint: `${ISSUER}/revoke`,
    clientId: "app",
    origins: [API],
    clock,
    fetch: server.fetch,
    storage,
    ...options,
  });
  await session.loginWithPassword("alice", "pw");
  return { session, server, clock, storage };
}

describe("refresh ahead of expiry", () => {
  it("refreshes once the token is inside the leeway, not before", async () => {
    const { session, server, clock } = await setup({ refreshLeeway: 10, autoRefresh: false });
    await clock.advance(49_000);
    expect(await (await session.fetch(API)).json()).toEqual({ token: "at-1" });
    await clock.advance(2_000); // 51 s: 9 s left, inside the 10 s leeway
    expect(await (await session.fetch(API)).json()).toEqual({ token: "at-2" });
    expect(server.refreshes).toEqual(["rt-1"]);
  });

  it("refreshes on a timer without any request", async () => {
    const { session, server, clock } = await setup({ refreshLeeway: 10 });
    const refreshed: unknown[] = [];
    session.on("refreshed", (e) => refreshed.push(e));
    await clock.advance(49_000);
    expect(server.refreshes).toEqual([]);
    await clock.advance(2_000);
    expect(server.refreshes).toEqual(["rt-1"]);
    expect(refreshed).toEqual([{ expiresAt: expect.any(Number), source: "this" }]);
    session.dispose();
    expect(clock.pendingTimers).toBe(0);
  });

  it("caps the leeway at half the token lifetime", async () => {
    const server = fakeServer();
    server.expiresIn = 4;
    const { session, clock } = await setup({ refreshLeeway: 30, autoRefresh: false }, server);
    await clock.advance(1_900);
    await session.fetch(API);
    expect(server.refreshes).toEqual([]);
    await clock.advance(200);
    await session.fetch(API);
    expect(server.refreshes).toEqual(["rt-1"]);
  });

  it("measures expiry on the server's clock from the Date header when only the JWT exp is given", async () => {
    const server = fakeServer();
    const clock = new ManualClock();
    clock.jumpWall(10 * 60_000); // the device is 10 minutes fast
    const serverNow = () => clock.now() - 10 * 60_000;
    server.expiresIn = undefined;
    server.date = () => new Date(serverNow()).toUTCString();
    const jwt = (exp: number) => `h.${btoa(JSON.stringify({ exp })).replace(/=+$/, "")}.s`;
    server.next.push(() =>
      json(
        200,
        { access_token: jwt(Math.floor(serverNow() / 1000) + 60), refresh_token: "rt-a" },
        { date: server.date?.() ?? "" },
      ),
    );
    const session = createSession({
      tokenEndpoint: `${ISSUER}/token`,
      clientId: "app",
      origins: [API],
      clock,
      fetch: server.fetch,
      refreshLeeway: 10,
      autoRefresh: false,
    });
    await session.loginWithPassword("alice", "pw");
    await clock.advance(45_000);
    await session.fetch(API);
    expect(server.refreshes).toEqual([]); // a naive client would think this token expired 9 minutes ago
    await clock.advance(10_000);
    await session.fetch(API);
    expect(server.refreshes).toEqual(["rt-a"]);
  });

  it("treats a wall clock that ran ahead of the monotonic one (a suspended laptop) as elapsed time", async () => {
    const { session, server, clock } = await setup({ refreshLeeway: 10, autoRefresh: false });
    clock.jumpWall(3_600_000); // slept an hour: CLOCK_MONOTONIC did not move
    await session.fetch(API);
    expect(server.refreshes).toEqual(["rt-1"]);
  });
});

describe("single flight", () => {
  it("shares one refresh among 50 concurrent callers", async () => {
    const { session, server, clock } = await setup({ autoRefresh: false });
    await clock.advance(60_000);
    const responses = await Promise.all(Array.from({ length: 50 }, () => session.fetch(API)));
    expect(server.refreshes).toEqual(["rt-1"]);
    expect(new Set(await Promise.all(responses.map(async (r) => (await r.json()).token)))).toEqual(
      new Set(["at-2"]),
    );
  });

  it("sessions sharing a store and a lock (tabs) refresh once and adopt each other's tokens", async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const lock = processLock();
    const { session: a, clock } = await setup({ storage, lock, autoRefresh: false }, server);
    const b = createSession({
      issuer: ISSUER,
      tokenEndpoint: `${ISSUER}/token`,
      clientId: "app",
      origins: [API],
      clock,
      fetch: server.fetch,
      storage,
      lock,
      autoRefresh: false,
    });
    await clock.advance(60_000);
    const [ra, rb] = await Promise.all([a.fetch(API), b.fetch(API)]);
    expect(server.refreshes).toEqual(["rt-1"]);
    expect((await ra.json()).token).toBe("at-2");
    expect((await rb.json()).token).toBe("at-2");
  });
});

describe("401 handling", () => {
  it("a 401 for tokens adopted from another tab still gets its one refresh", async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const lock = processLock();
    const { session: a, clock } = await setup({ storage, lock, autoRefresh: false }, server);
    const b = createSession({
      issuer: ISSUER,
      tokenEndpoint: `${ISSUER}/token`,
      clientId: "app",
      origins: [API],
      clock,
      fetch: server.fetch,
      storage,
      lock,
      autoRefresh: false,
    });
    await b.getTokens();
    await clock.advance(60_000);
    await a.fetch(API); // tab A refreshes: at-2
    server.rejected.add("at-2"); // ... which the API no longer accepts by the time tab B uses it
    const response = await b.fetch(API);
    expect(response.status).toBe(200);
    expect(server.refreshes).toEqual(["rt-1", "rt-2"]);
    expect(server.resources.slice(-2).map((r) => r.authorization)).toEqual(["Bearer at-2", "Bearer at-3"]);
  });

  it("refreshes once and replays method, headers and body", async () => {
    const { session, server } = await setup({ autoRefresh: false });
    server.rejected.add("at-1");
    const response = await session.fetch(API, {
      method: "PUT",
      headers: { "content-type": "text/plain", "x-request": "7" },
      body: "payload",
    });
    expect(response.status).toBe(200);
    expect(server.refreshes).toEqual(["rt-1"]);
    expect(server.resources).toEqual([
      { method: "PUT", authorization: "Bearer at-1", body: "payload" },
      { method: "PUT", authorization: "Bearer at-2", body: "payload" },
    ]);
  });

  it("replays a Request object's body too", async () => {
    const { session, server } = await setup({ autoRefresh: false });
    server.rejected.add("at-1");
    const response = await session.fetch(new Request(API, { method: "POST", body: "from a Request" }));
    expect(response.status).toBe(200);
    expect(server.resources.map((r) => r.body)).toEqual(["from a Request", "from a Request"]);
  });

  it("returns a second 401 to the caller instead of looping", async () => {
    const { session, server } = await setup({ autoRefresh: false });
    server.rejected.add("at-1").add("at-2").add("at-3");
    const response = await session.fetch(API);
    expect(response.status).toBe(401);
    expect(server.refreshes).toHaveLength(1);
    expect(server.resources).toHaveLength(2);
  });

  it("returns a 401 for a token that was refreshed for this very request", async () => {
    const { session, server, clock } = await setup({ autoRefresh: false });
    await clock.advance(60_000);
    server.rejected.add("at-2");
    const response = await session.fetch(API);
    expect(response.status).toBe(401);
    expect(server.refreshes).toEqual(["rt-1"]);
    expect(server.resources).toHaveLength(1);
  });

  it("does not refresh on a 401 whose challenge names another error", async () => {
    const server = fakeServer();
    const { session } = await setup({ autoRefresh: false }, server);
    const original = server.fetch;
    server.fetch = async (input, init) =>
      String(input).startsWith(API)
        ? new Response(null, {
            status: 401,
            headers: { "www-authenticate": 'Bearer error="invalid_request"' },
          })
        : original(input, init);
    const session2 = createSession({
      tokenEndpoint: `${ISSUER}/token`,
      clientId: "app",
      origins: [API],
      fetch: server.fetch,
      autoRefresh: false,
    });
    await session2.loginWithPassword("a", "b");
    expect((await session2.fetch(API)).status).toBe(401);
    expect(server.refreshes).toEqual([]);
    session.dispose();
  });

  it("refuses a stream body clearly, or buffers it when asked", async () => {
    const stream = () => new Blob(["streamed"]).stream();
    const { session, server } = await setup({ autoRefresh: false });
    await expect(session.fetch(API, { method: "POST", body: stream() })).rejects.toBeInstanceOf(
      BodyNotReplayableError,
    );
    expect(server.resources).toEqual([]);
    const buffered = await setup({ autoRefresh: false, bufferStreamBodies: true });
    buffered.server.rejected.add("at-1");
    const response = await buffered.session.fetch(API, { method: "POST", body: stream() });
    expect(response.status).toBe(200);
    expect(buffered.server.resources.map((r) => r.body)).toEqual(["streamed", "streamed"]);
  });
});

describe("failures", () => {
  it("invalid_grant clears tokens and emits one expired event for all callers", async () => {
    const { session, server, clock, storage } = await setup({ autoRefresh: false });
    const expired: unknown[] = [];
    session.on("expired", (e) => expired.push(e));
    await clock.advance(60_000);
    server.next.push(json(400, { error: "invalid_grant" }));
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => session.fetch(API)));
    expect(results.every((r) => r.status === "rejected" && r.reason instanceof SessionExpiredError)).toBe(
      true,
    );
    expect(expired).toHaveLength(1);
    expect(await storage.get(`evergreen:${ISSUER}:app`)).toBeNull();
    expect(server.resources).toEqual([]);
  });

  it("on invalid_grant retries once with a newer refresh token found in storage", async () => {
    const { session, server, clock, storage } = await setup({ autoRefresh: false });
    await clock.advance(60_000);
    const key = `evergreen:${ISSUER}:app`;
    // Another writer stored a successor while our refresh was in flight with the old token.
    server.next.push(() => {
      const stored = JSON.parse(String(storage.get(key)));
      stored.tokens.refreshToken = "rt-newer";
      storage.set(key, JSON.stringify(stored));
      return json(400, { error: "invalid_grant" });
    });
    expect((await session.fetch(API)).status).toBe(200);
    expect(server.refreshes).toEqual(["rt-1", "rt-newer"]);
  });

  it("keeps the tokens through network errors and 5xx, backing off, then recovers", async () => {
    const { session, server, clock } = await setup({
      autoRefresh: false,
      retry: { attempts: 4, baseDelay: 1000 },
    });
    await clock.advance(60_000);
    server.next.push(new TypeError("fetch failed"), json(503, {}), new TypeError("fetch failed"));
    const started = clock.monotonic();
    const response = await clock.settle(session.fetch(API), 100);
    expect(response.status).toBe(200);
    expect(server.refreshes).toEqual(["rt-1", "rt-1", "rt-1", "rt-1"]);
    // Backoff with jitter: 0.5–1 s, 1–2 s, 2–4 s.
    const waited = clock.monotonic() - started;
    expect(waited).toBeGreaterThanOrEqual(3500);
    expect(waited).toBeLessThanOrEqual(7100);
  });

  describe("while offline", () => {
    afterEach(() => vi.unstubAllGlobals());

    it("waits for the `online` event before retrying, without spending attempts", async () => {
      const events = new EventTarget();
      const navigator = { onLine: true };
      vi.stubGlobal("navigator", navigator);
      vi.stubGlobal("addEventListener", events.addEventListener.bind(events));
      vi.stubGlobal("removeEventListener", events.removeEventListener.bind(events));
      const { session, server, clock } = await setup({
        autoRefresh: false,
        retry: { attempts: 2, baseDelay: 100 },
      });
      await clock.advance(60_000);
      navigator.onLine = false;
      server.next.push(new TypeError("offline"));
      let settled = false;
      const pending = session.fetch(API).finally(() => {
        settled = true;
      });
      await clock.advance(10 * 60_000);
      expect(settled).toBe(false);
      expect(server.refreshes).toEqual(["rt-1"]);
      navigator.onLine = true;
      events.dispatchEvent(new Event("online"));
      const response = await clock.settle(pending, 50);
      expect(response.status).toBe(200);
      expect(server.refreshes).toEqual(["rt-1", "rt-1"]);
    });
  });

  it("after the last attempt fails the error is RefreshFailedError and the tokens remain", async () => {
    const { session, server, clock } = await setup({
      autoRefresh: false,
      retry: { attempts: 2, baseDelay: 100 },
    });
    await clock.advance(60_000);
    server.next.push(new TypeError("offline"), new TypeError("offline"));
    await expect(clock.settle(session.fetch(API), 50)).rejects.toMatchObject({ code: "refresh_failed" });
    expect((await session.getTokens())?.refreshToken).toBe("rt-1");
    expect((await session.fetch(API)).status).toBe(200);
  });

  it("honours Retry-After on 429", async () => {
    const { session, server, clock } = await setup({ autoRefresh: false, retry: { baseDelay: 10 } });
    await clock.advance(60_000);
    server.next.push(json(429, { error: "slow_down" }, { "retry-after": "7" }));
    const started = clock.monotonic();
    await clock.settle(session.fetch(API), 100);
    expect(clock.monotonic() - started).toBeGreaterThanOrEqual(7000);
    expect(clock.monotonic() - started).toBeLessThan(7300);
    expect(server.refreshes).toHaveLength(2);
  });

  it("does not fail a request when an early refresh fails but the token is still valid", async () => {
    const { session, server, clock } = await setup({
      refreshLeeway: 20,
      autoRefresh: false,
      retry: { attempts: 1 },
    });
    await clock.advance(45_000);
    server.next.push(new TypeError("blip"));
    expect(await (await session.fetch(API)).json()).toEqual({ token: "at-1" });
  });
});

describe("rotation policy and markers", () => {
  it("keeps the old refresh token when the response carries none", async () => {
    const server = fakeServer();
    server.rotate = false;
    const { session, clock } = await setup({ autoRefresh: false }, server);
    for (let i = 0; i < 3; i++) {
      await clock.advance(60_000);
      await session.fetch(API);
    }
    expect(server.refreshes).toEqual(["rt-1", "rt-1", "rt-1"]);
    expect((await session.getTokens())?.refreshToken).toBe("rt-1");
  });

  it("a stored in-flight marker (a refresh cut off) makes the next reader refresh at once", async () => {
    const server = fakeServer();
    const storage = memoryStorage();
    const { clock } = await setup({ storage, autoRefresh: false }, server);
    const key = `evergreen:${ISSUER}:app`;
    const stored = JSON.parse(String(storage.get(key)));
    storage.set(key, JSON.stringify({ ...stored, refreshingSince: clock.now() }));
    const restarted = createSession({
      tokenEndpoint: `${ISSUER}/token`,
      clientId: "app",
      origins: [API],
      storageKey: key,
      clock,
      fetch: server.fetch,
      storage,
      autoRefresh: false,
    });
    await restarted.fetch(API);
    expect(server.refreshes).toEqual(["rt-1"]);
    expect(JSON.parse(String(storage.get(key))).refreshingSince).toBeUndefined();
  });
});

describe("storage and logout", () => {
  it("lockedStorage asks unlock() once before reading, and refuses when it says no", async () => {
    let prompts = 0;
    const inner = memoryStorage();
    inner.set("k", "v");
    const storage = lockedStorage(inner, { unlock: () => ++prompts === 1 });
    expect(await Promise.all([storage.get("k"), storage.get("k")])).toEqual(["v", "v"]);
    expect(prompts).toBe(1);
    storage.relock();
    await expect(storage.get("k")).rejects.toBeInstanceOf(StorageLockedError);
    expect(storage.locked).toBe(true);
  });

  it("logout revokes the refresh token and clears storage", async () => {
    const server = fakeServer();
    const revoked: string[] = [];
    const original = server.fetch;
    server.fetch = async (input, init) => {
      if (String(input).endsWith("/revoke"))
        revoked.push(new URLSearchParams(String(init?.body)).get("token") ?? "");
      return original(input, init);
    };
    const { session, storage } = await setup({ autoRefresh: false }, server);
    expect(await session.logout()).toEqual({ revoked: true });
    expect(revoked).toEqual(["rt-1"]);
    expect(await storage.get(`evergreen:${ISSUER}:app`)).toBeNull();
    await expect(session.fetch(API)).rejects.toBeInstanceOf(SessionExpiredError);
  });
});

describe("the access token goes only to allowed origins", () => {
  it("by default only to the issuer's origin; elsewhere requests go out without it, never refreshed or retried", async () => {
    const { session, server } = await setup({ origins: undefined });
    server.rejected.add("at-1");
    const sent = async (input: RequestInfo | URL, init?: RequestInit) => {
      const response = await session.fetch(input, init);
      return { status: response.status, authorization: server.resources.at(-1)?.authorization };
    };
    expect(await sent(API)).toEqual({ status: 200, authorization: null });
    for (const lookalike of [
      "https://as.example.evil.test/me",
      "http://as.example/me",
      "https://as.example:8443/me",
      "https://evil.test/https://as.example/",
    ]) {
      expect(await sent(lookalike)).toEqual({ status: 200, authorization: null });
      expect(await sent(new URL(lookalike))).toEqual({ status: 200, authorization: null });
      expect(await sent(new Request(lookalike))).toEqual({ status: 200, authorization: null });
    }
    // A header the app set itself on a third-party request is left alone.
    expect(await sent(API, { headers: { authorization: "Basic app-own" } })).toEqual({
      status: 200,
      authorization: "Basic app-own",
    });
    expect(server.refreshes).toEqual([]);
    // The issuer's own origin (its /userinfo) does get the token, refreshed on a 401 as usual.
    expect(await sent(`${ISSUER}/userinfo`)).toEqual({ status: 200, authorization: "Bearer at-2" });
    expect(server.refreshes).toEqual(["rt-1"]);
  });

  it("`origins` adds the app's APIs (given as origins or URLs on them)", async () => {
    const { session, server } = await setup({
      origins: ["https://api.example/any/path", "https://other.example"],
    });
    for (const url of [API, "https://other.example/x", `${ISSUER}/userinfo`]) {
      await session.fetch(url);
      expect(server.resources.at(-1)?.authorization).toBe("Bearer at-1");
    }
    await session.fetch(new Request("https://api.example/things", { method: "POST", body: "x" }));
    expect(server.resources.at(-1)).toEqual({ method: "POST", authorization: "Bearer at-1", body: "x" });
    await session.fetch("https://third.example/x");
    expect(server.resources.at(-1)?.authorization).toBeNull();
  });
});
