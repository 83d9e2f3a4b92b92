/**
 * The background timer never loops or retries what cannot succeed, and sessions only hear
 * about sessions that share their storage. Manual clock, in-process token endpoint.
 */
import { describe, expect, it } from "vitest";
import {
  type Clock,
  createSession,
  InvalidResponseError,
  type Lifecycle,
  memoryStorage,
  type Session,
  type SessionOptions,
  TokenEndpointError,
  type TokenStorage,
  webStorage,
} from "../src/index.ts";
import { tokenSetFrom } from "../src/session/stored-session.ts";
import { type FakeServer, fakeServer, json } from "./support/fake-endpoint.ts";
import { ManualClock } from "./support/manual-clock.ts";

const ISSUER = "https://as.example";
const API = "https://api.example/things";

/** Ends a runaway refresh loop (so a regression fails instead of hanging): after `limit` refreshes, invalid_grant. */
function capped(server: FakeServer, limit = 50) {
  const original = server.fetch;
  server.fetch = async (input, init) => {
    if (String(input).endsWith("/token") && server.refreshes.length >= limit) {
      server.refreshes.push("(cut off)");
      return json(400, { error: "invalid_grant" });
    }
    return original(input, init);
  };
  return server;
}

function make(clock: ManualClock, server: FakeServer, options: Partial<SessionOptions> = {}): Session {
  return createSession({
    issuer: ISSUER,
    tokenEndpoint: `${ISSUER}/token`,
    revocationEndpoint: `${ISSUER}/revoke`,
    clientId: "app",
    origins: [API],
    clock,
    fetch: server.fetch,
    ...options,
  });
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 50)); // BroadcastChannel delivery

describe("no refresh loop when new tokens are already due", () => {
  it("expires_in: 0 is treated as an unknown expiry: no timer refreshes, a 401 still refreshes once", async () => {
    const clock = new ManualClock();
    const server = capped(fakeServer());
    const session = make(clock, server);
    await session.loginWithPassword("alice", "pw");
    server.expiresIn = 0;
    await clock.advance(60_000); // the login's token falls due: one timer refresh, answered with expires_in 0
    await clock.advance(10 * 60_000);
    expect(server.refreshes).toEqual(["rt-1"]);
    expect((await session.getTokens())?.expiresAt).toBeUndefined();
    server.rejected.add("at-2");
    expect((await session.fetch(API)).status).toBe(200);
    expect(server.refreshes).toEqual(["rt-1", "rt-2"]);
    session.dispose();
  });

  it("an absolute expiry at or before receipt is not believed (a JWT exp still ahead is)", () => {
    const sentAt = Date.UTC(2026, 0, 1);
    const base = { accessToken: "opaque", tokenType: "Bearer", raw: {} };
    expect(tokenSetFrom({ ...base, expiresAt: sentAt - 300_000 }, sentAt).expiresAt).toBeUndefined();
    expect(tokenSetFrom({ ...base, expiresAt: sentAt }, sentAt).expiresAt).toBeUndefined();
    expect(tokenSetFrom({ ...base, expiresIn: 0 }, sentAt).expiresAt).toBeUndefined();
    const jwt = `h.${btoa(JSON.stringify({ exp: sentAt / 1000 + 60 }))}.s`;
    expect(tokenSetFrom({ ...base, accessToken: jwt, expiresIn: 0 }, sentAt).expiresAt).toBe(sentAt + 60_000);
    // Tokens handed to setTokens may really have expired: those are believed.
    expect(tokenSetFrom({ ...base, expiresIn: 0 }, sentAt, undefined, false).expiresAt).toBe(sentAt);
  });

  it("tokens due on arrival (a lifetime shorter than the round trip): the timer backs off from 5 s", async () => {
    const clock = new ManualClock();
    const calls: number[] = [];
    const session = createSession({
      tokenEndpoint: `${ISSUER}/token`,
      clientId: "app",
      origins: [API],
      clock,
      refresh: async () => {
        calls.push(clock.monotonic());
        if (calls.length > 50) throw new TokenEndpointError(400, "invalid_grant"); // runaway guard
        clock.pass(600); // a 600 ms round trip ...
        return {
          accessToken: `at-${calls.length}`,
          refreshToken: "rt",
          tokenType: "Bearer",
          expiresIn: 1,
          raw: {},
        };
      }, // ... for a 1 s token, due at half its life: already due when it arrives
    });
    await session.setTokens({
      accessToken: "at-0",
      refreshToken: "rt",
      tokenType: "Bearer",
      expiresIn: 0,
      raw: {},
    });
    await clock.advance(60_000);
    const gaps = calls.slice(1).map((at, i) => at - (calls[i] as number));
    expect(calls.length).toBeGreaterThanOrEqual(3);
    expect(calls.length).toBeLessThanOrEqual(5); // at 0, 5, 15, 35 s
    expect(gaps[0]).toBeGreaterThanOrEqual(5000);
    for (let i = 1; i < gaps.length; i++) expect(gaps[i]).toBeGreaterThan(gaps[i - 1] as number);
    session.dispose();
  });

  it("a request refreshes at most once for tokens that are due on arrival", async () => {
    const clock = new ManualClock();
    let calls = 0;
    const server = fakeServer();
    const session = createSession({
      tokenEndpoint: `${ISSUER}/token`,
      clientId: "app",
      origins: [API],
      clock,
      fetch: server.fetch,
      refresh: async () => {
        calls++;
        clock.pass(600);
        return { accessToken: `at-${calls}`, refreshToken: "rt", tokenType: "Bearer", expiresIn: 1, raw: {} };
      },
    });
    await session.setTokens({
      accessToken: "at-0",
      refreshToken: "rt",
      tokenType: "Bearer",
      expiresIn: 0,
      raw: {},
    });
    for (let i = 1; i <= 3; i++) {
      expect((await session.fetch(API)).status).toBe(200);
      expect(calls).toBe(i); // one refresh for this request, not one after another
    }
    expect(server.resources).toHaveLength(3);
    session.dispose();
  });
});

describe("background refresh after a failure", () => {
  it("stops after a fatal failure (invalid_client) and emits `error`; tokens are kept", async () => {
    const clock = new ManualClock();
    const server = capped(fakeServer());
    const writes: string[] = [];
    const inner = memoryStorage();
    const storage: TokenStorage = {
      ...inner,
      set(key, value) {
        writes.push(value);
        return inner.set(key, value);
      },
    };
    const session = make(clock, server, { storage, retry: { attempts: 1 } });
    const errors: unknown[] = [];
    session.on("error", ({ error }) => errors.push(error));
    await session.loginWithPassword("alice", "pw");
    writes.length = 0;
    for (let i = 0; i < 50; i++) server.next.push(() => json(401, { error: "invalid_client" }));
    await clock.advance(10 * 60_000);
    expect(server.refreshes).toEqual(["rt-1"]);
    expect(writes).toHaveLength(2); // the in-flight marker, then the tokens restored
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TokenEndpointError);
    expect((errors[0] as TokenEndpointError).error).toBe("invalid_client");
    expect((await session.getTokens())?.refreshToken).toBe("rt-1");
    expect(clock.pendingTimers).toBe(0);
    session.dispose();
  });

  it("stops after a malformed token response too", async () => {
    const clock = new ManualClock();
    const server = capped(fakeServer());
    const session = make(clock, server, { retry: { attempts: 1 } });
    const errors: unknown[] = [];
    session.on("error", ({ error }) => errors.push(error));
    await session.loginWithPassword("alice", "pw");
    for (let i = 0; i < 60; i++) server.next.push(() => json(200, { token_type: "Bearer" }));
    await clock.advance(10 * 60_000);
    expect(server.refreshes).toEqual(["rt-1"]);
    expect(errors.map((e) => (e as Error).constructor)).toEqual([InvalidResponseError]);
    session.dispose();
  });

  it("keeps trying after transient failures, backing off, and recovers", async () => {
    const clock = new ManualClock();
    const server = capped(fakeServer(), 200);
    const calls: number[] = [];
    const original = server.fetch;
    let down = true;
    server.fetch = async (input, init) => {
      if (String(input).endsWith("/token") && server.counter >= 1) {
        calls.push(clock.monotonic());
        if (down) return json(503, {});
      }
      return original(input, init);
    };
    const session = make(clock, server, { retry: { attempts: 1 } });
    const errors: unknown[] = [];
    session.on("error", ({ error }) => errors.push(error));
    await session.loginWithPassword("alice", "pw");
    await clock.advance(10 * 60_000);
    // 5 s, 10 s, 20 s, ... up to 5 min between attempts: a handful in ten minutes, not 120.
    expect(calls.length).toBeGreaterThanOrEqual(5);
    expect(calls.length).toBeLessThanOrEqual(10);
    const gaps = calls.slice(1).map((at, i) => at - (calls[i] as number));
    expect(gaps[0]).toBeGreaterThanOrEqual(5000);
    expect(gaps.at(-1)).toBeGreaterThan(60_000);
    expect(errors).toEqual([]);
    down = false;
    await clock.advance(5 * 60_000);
    expect((await session.getTokens())?.accessToken).not.toBe("at-1");
    expect(server.refreshes.length).toBeGreaterThan(0);
    session.dispose();
  });
});

describe("sessions hear only sessions that share their storage", () => {
  it("two sessions with their own memory stores (two users in one service) do not share logout or expiry", async () => {
    const clock = new ManualClock();
    const server = fakeServer();
    const a = make(clock, server, { autoRefresh: false });
    const b = make(clock, server, { autoRefresh: false });
    const heard: string[] = [];
    b.on("logout", () => heard.push("logout"));
    b.on("expired", () => heard.push("expired"));
    await a.loginWithPassword("alice", "pw");
    await b.loginWithPassword("bob", "pw");
    await a.logout();
    await settle();
    expect(heard).toEqual([]);
    expect((await b.getTokens())?.accessToken).toBe("at-2");
    expect((await b.fetch(API)).status).toBe(200);
    a.dispose();
    b.dispose();
  });

  it("sessionStorage-like stores (one per tab) are not coordinated; localStorage-like ones, marked shared, are", async () => {
    const fakeStorage = () => {
      const values = new Map<string, string>();
      return {
        getItem: (k: string) => values.get(k) ?? null,
        setItem: (k: string, v: string) => void values.set(k, v),
        removeItem: (k: string) => void values.delete(k),
      } as unknown as Storage;
    };
    expect(webStorage(fakeStorage()).shared).toBe(false);
    const clock = new ManualClock();
    const server = fakeServer();
    const tabA = make(clock, server, { storage: webStorage(fakeStorage()), autoRefresh: false });
    const tabB = make(clock, server, { storage: webStorage(fakeStorage()), autoRefresh: false });
    const heard: string[] = [];
    tabB.on("logout", () => heard.push("logout"));
    await tabA.loginWithPassword("alice", "pw");
    await tabB.loginWithPassword("alice", "pw");
    await tabA.logout();
    await settle();
    expect(heard).toEqual([]);
    expect(await tabB.getTokens()).not.toBeNull();

    // One store shared by realms (as localStorage is): logout reaches the other session.
    const sharedStore = { ...memoryStorage(), shared: true };
    const c = make(clock, server, { storage: sharedStore, autoRefresh: false });
    const d = make(clock, server, { storage: sharedStore, autoRefresh: false });
    const other = make(clock, server, { storage: sharedStore, storageKey: "another", autoRefresh: false });
    const heardD: string[] = [];
    const heardOther: string[] = [];
    d.on("logout", () => heardD.push("logout"));
    other.on("logout", () => heardOther.push("logout"));
    await c.loginWithPassword("alice", "pw");
    await other.loginWithPassword("carol", "pw");
    await c.logout();
    await settle();
    expect(heardD).toEqual(["logout"]);
    expect(heardOther).toEqual([]); // another storage key: another session
    for (const s of [tabA, tabB, c, d, other]) s.dispose();
  });

  it("sessions on one storage object in one realm still hear each other", async () => {
    const clock = new ManualClock();
    const server = fakeServer();
    const storage = memoryStorage();
    const a = make(clock, server, { storage, autoRefresh: false });
    const b = make(clock, server, { storage, autoRefresh: false });
    const heard: string[] = [];
    b.on("logout", () => heard.push("logout"));
    await a.loginWithPassword("alice", "pw");
    await a.logout();
    await settle();
    expect(heard).toEqual(["logout"]);
    a.dispose();
    b.dispose();
  });
});

/** `clock` with timers that fire `drift` ms late (> 0) or early (< 0, as real timers do by a fraction of a millisecond). */
function drifting(clock: ManualClock, drift: number): Clock {
  return {
    now: () => clock.now(),
    monotonic: () => clock.monotonic(),
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms + drift),
  };
}

describe("the background timer re-arms on every path", () => {
  for (const [name, drift] of [
    ["early (0.5 ms)", -0.5],
    ["late (5 s)", 5000],
  ] as const) {
    it(`an idle session keeps refreshing when its timer fires ${name}`, async () => {
      const manual = new ManualClock();
      const server = capped(fakeServer(), 100);
      const session = make(manual, server, { clock: drifting(manual, drift) });
      await session.loginWithPassword("alice", "pw");
      // 60 s tokens, due 30 s before expiry: about one timer refresh every 30 s for ten minutes.
      await manual.advance(10 * 60_000);
      expect(server.refreshes.length).toBeGreaterThanOrEqual(drift < 0 ? 19 : 16);
      expect(server.refreshes.length).toBeLessThanOrEqual(20);
      expect(manual.pendingTimers).toBe(1);
      // Never let lapse: the token held now is still valid.
      const tokens = await session.getTokens();
      expect(tokens?.expiresAt).toBeGreaterThan(manual.now());
      session.dispose();
    });
  }

  it("a token living longer than setTimeout can wait (24.8 days) is neither refreshed early nor dropped", async () => {
    const manual = new ManualClock();
    const fired: number[] = [];
    // As in browsers and Node: a delay above 2^31-1 ms overflows and fires at once.
    const overflowing: Clock = {
      now: () => manual.now(),
      monotonic: () => manual.monotonic(),
      setTimeout: (fn, ms) =>
        manual.setTimeout(
          () => {
            fired.push(manual.monotonic());
            fn();
          },
          ms > 2 ** 31 - 1 ? 1 : ms,
        ),
    };
    const server = capped(fakeServer());
    const session = make(manual, server, { clock: overflowing });
    server.expiresIn = 40 * 86_400; // 40 days
    await session.loginWithPassword("alice", "pw");
    await manual.advance(60 * 60_000);
    expect(fired).toEqual([]);
    expect(server.refreshes).toEqual([]);
    await manual.advance(40 * 86_400_000);
    expect(fired.length).toBeLessThanOrEqual(3); // ~24.8 days, then the rest of the wait
    expect(server.refreshes).toEqual(["rt-1"]);
    session.dispose();
  });
});

describe("injected lifecycle", () => {
  it("a wake-up re-checks the tokens; retries wait for `whenOnline`", async () => {
    const clock = new ManualClock();
    const server = fakeServer();
    let wake: (() => void) | undefined;
    let online = false;
    let goOnline: () => void = () => undefined;
    const lifecycle: Lifecycle = {
      onWake(check) {
        wake = check;
        return () => {
          wake = undefined;
        };
      },
      whenOnline: () => (online ? Promise.resolve() : new Promise<void>((resolve) => (goOnline = resolve))),
    };
    const session = make(clock, server, { lifecycle, autoRefresh: false });
    await session.loginWithPassword("alice", "pw");
    clock.pass(59_000); // due, but no timer and no request
    wake?.();
    await clock.advance(0);
    expect(server.refreshes).toEqual(["rt-1"]);

    // Offline: a failed refresh waits for the network before its retry.
    clock.pass(59_000);
    server.next.push(new TypeError("fetch failed"));
    const refreshing = session.refresh();
    await clock.advance(60_000);
    expect(server.refreshes).toEqual(["rt-1", "rt-2"]);
    online = true;
    goOnline();
    await clock.settle(refreshing);
    expect(server.refreshes).toEqual(["rt-1", "rt-2", "rt-2"]);
    session.dispose();
    expect(wake).toBeUndefined();
  });
});
