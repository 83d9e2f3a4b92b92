/**
 * Tabs whose view of shared storage lags (as Chromium's localStorage does), modelled in Node:
 * each "tab" has its own view of one store and sees the others' writes only when the test
 * hands them over. Real BroadcastChannels carry the sessions' messages; time is a manual clock.
 */
import { describe, expect, it } from "vitest";
import {
  createSession,
  lockedStorage,
  memoryStorage,
  processLock,
  type Session,
  type SessionOptions,
  StorageLockedError,
  type TokenStorage,
} from "../src/index.ts";
import { type FakeServer, fakeServer } from "./support/fake-endpoint.ts";
import { ManualClock } from "./support/manual-clock.ts";

const ISSUER = "https://as.example";
let keys = 0;

function make(clock: ManualClock, server: FakeServer, options: Partial<SessionOptions>): Session {
  return createSession({
    issuer: ISSUER,
    tokenEndpoint: `${ISSUER}/token`,
    clientId: "app",
    clock,
    fetch: server.fetch,
    autoRefresh: false,
    ...options,
  });
}

/**
 * One store shared by tabs: `truth` is what the browser holds; each view sees its own writes at
 * once and the other views' writes only after `propagate()`.
 */
function laggingStore() {
  const truth = new Map<string, string>();
  const views: Map<string, string>[] = [];
  const pending: (() => void)[] = [];
  return {
    truth,
    view(): TokenStorage {
      const mine = new Map(truth);
      views.push(mine);
      const apply = (change: (values: Map<string, string>) => void) => {
        change(truth);
        change(mine);
        for (const other of views) if (other !== mine) pending.push(() => change(other));
      };
      return {
        shared: true,
        get: (key) => mine.get(key) ?? null,
        set: (key, value) => apply((values) => values.set(key, value)),
        remove: (key) => apply((values) => values.delete(key)),
      };
    },
    propagate: () => {
      for (const change of pending.splice(0)) change();
    },
  };
}

/** Resolves once a message on the channel of `key` has been delivered (to this listener, created last). */
function nextMessage(key: string) {
  const channel = new BroadcastChannel(`evergreen:${key}`);
  return new Promise<void>((resolve) => {
    channel.onmessage = () => {
      channel.close();
      setImmediate(resolve); // after the sessions' own handlers
    };
  });
}

describe("tabs whose storage lags behind each other's writes", () => {
  it("a tab that gets the lock right after another's refresh takes the announced tokens: one refresh", async () => {
    const clock = new ManualClock();
    const server = fakeServer();
    server.rotate = false; // a legacy endpoint: a second refresh would be a second request, not a replay
    const store = laggingStore();
    const lock = processLock(); // one Web Lock for both tabs
    const storageKey = `lagging-${++keys}`;
    const a = make(clock, server, { storage: store.view(), lock, storageKey });
    const b = make(clock, server, { storage: store.view(), lock, storageKey });
    const events: string[] = [];
    a.on("refreshed", (e) => events.push(`a:${e.source}`));
    b.on("refreshed", (e) => events.push(`b:${e.source}`));
    await a.loginWithPassword("alice", "pw");
    store.propagate();
    expect(await b.getAccessToken()).toBe("at-1");

    for (let round = 1; round <= 3; round++) {
      await clock.advance(61_000); // both tabs' access token has expired
      const tokens = await Promise.all([a.getAccessToken(), b.getAccessToken(), b.getAccessToken()]);
      expect(new Set(tokens)).toEqual(new Set([`at-${round + 1}`]));
      expect(server.refreshes).toHaveLength(round);
      // Nothing older was written over the new tokens (no "refresh in progress" marker from a stale read).
      const stored = JSON.parse(store.truth.get(storageKey) ?? "{}");
      expect(stored.tokens.accessToken).toBe(`at-${round + 1}`);
      expect(stored.refreshingSince).toBeUndefined();
      // The storage catches up later: the tab already has those tokens, no second event.
      store.propagate();
      await b.resume();
      await a.resume();
    }
    expect(events.filter((e) => e.endsWith(":this"))).toHaveLength(3);
    expect(events.filter((e) => e.endsWith(":other"))).toHaveLength(3);
    expect(events).toHaveLength(6);
    a.dispose();
    b.dispose();
  });

  it("a refresh never writes over a login stored while it was out", async () => {
    const clock = new ManualClock();
    const server = fakeServer();
    const storage = { ...memoryStorage(), shared: true };
    const storageKey = `login-during-refresh-${++keys}`;
    let b: Session | undefined;
    let loggedIn: Promise<unknown> = Promise.resolve();
    const fetch: typeof server.fetch = async (input, init) => {
      const body = init?.body?.toString() ?? "";
      // While tab A's refresh is at the token endpoint, tab B signs in as someone else.
      if (body.includes("grant_type=refresh_token")) {
        loggedIn = (b as Session).loginWithPassword("bob", "pw");
        await loggedIn;
      }
      return server.fetch(input, init);
    };
    const a = make(clock, { ...server, fetch }, { storage, storageKey });
    b = make(clock, server, { storage, storageKey });
    await a.loginWithPassword("alice", "pw"); // at-1
    await clock.advance(61_000);
    const refreshed = await a.refresh(); // bob's login is at-2, the refresh brings at-3
    await loggedIn;
    expect(refreshed.accessToken).toBe("at-2");
    expect(JSON.parse((await storage.get(storageKey)) ?? "{}").tokens.accessToken).toBe("at-2");
    expect(await b.getAccessToken()).toBe("at-2");
    a.dispose();
    b.dispose();
  });
});

describe("`refreshed` from another tab: once per new token set", () => {
  it("a session that opened on the refreshed tokens reports no refresh when it hears of it", async () => {
    const clock = new ManualClock();
    const server = fakeServer();
    const storage = { ...memoryStorage(), shared: true };
    const storageKey = `opened-after-${++keys}`;
    const a = make(clock, server, { storage, storageKey });
    await a.loginWithPassword("alice", "pw");
    const b = make(clock, server, { storage, storageKey }); // a tab opened now; it has read nothing yet
    const events: string[] = [];
    b.on("refreshed", (e) => events.push(e.source));
    await clock.advance(61_000);
    const delivered = nextMessage(storageKey);
    await a.refresh();
    expect(await b.getAccessToken()).toBe("at-2"); // it opens on the new tokens
    await delivered;
    expect(events).toEqual([]);
    a.dispose();
    b.dispose();
  });

  it("a session that held the old tokens reports the refresh once, however it learns of it", async () => {
    const clock = new ManualClock();
    const server = fakeServer();
    const storage = { ...memoryStorage(), shared: true };
    const storageKey = `held-old-${++keys}`;
    const a = make(clock, server, { storage, storageKey });
    const b = make(clock, server, { storage, storageKey });
    const events: unknown[] = [];
    b.on("refreshed", (e) => events.push(e));
    await a.loginWithPassword("alice", "pw");
    expect(await b.getAccessToken()).toBe("at-1");
    await clock.advance(61_000);
    const delivered = nextMessage(storageKey);
    const tokens = await a.refresh();
    // B re-reads storage (a wake-up) before or after the message: either way, one event.
    await b.resume();
    await delivered;
    expect(await b.getAccessToken()).toBe("at-2");
    await b.resume();
    expect(events).toEqual([{ expiresAt: tokens.expiresAt, source: "other" }]);
    a.dispose();
    b.dispose();
  });
});

describe("a disposed session on shared storage", () => {
  it("still refreshes on demand (its channel is closed: nobody is told, nothing fails)", async () => {
    const clock = new ManualClock();
    const server = fakeServer();
    const storage = { ...memoryStorage(), shared: true };
    const session = make(clock, server, { storage, storageKey: `disposed-${++keys}` });
    await session.loginWithPassword("alice", "pw");
    session.dispose();
    await clock.advance(61_000);
    expect(await session.getAccessToken()).toBe("at-2");
    expect(server.refreshes).toEqual(["rt-1"]);
  });
});

describe("what a session takes from the channel", () => {
  it("ignores a malformed or older announcement", async () => {
    const clock = new ManualClock();
    const server = fakeServer();
    const storage = { ...memoryStorage(), shared: true };
    const storageKey = `malformed-${++keys}`;
    const session = make(clock, server, { storage, storageKey });
    const events: unknown[] = [];
    session.on("refreshed", (e) => events.push(e));
    await session.loginWithPassword("alice", "pw");
    const stored = JSON.parse((await storage.get(storageKey)) ?? "{}");
    const sender = new BroadcastChannel(`evergreen:${storageKey}`);
    const older = {
      ...stored,
      generation: stored.generation - 1,
      tokens: { ...stored.tokens, accessToken: "old" },
    };
    for (const session of ["{not json", JSON.stringify({ version: 1 }), JSON.stringify(older)]) {
      const delivered = nextMessage(storageKey);
      sender.postMessage({ type: "refreshed", key: storageKey, session });
      await delivered;
    }
    sender.close();
    expect(await session.getAccessToken()).toBe("at-1");
    expect(events).toEqual([]);
    session.dispose();
  });
});

describe("a tab whose lockedStorage is still locked", () => {
  it("takes no tokens from another tab's announcement without unlocking", async () => {
    const clock = new ManualClock();
    const server = fakeServer();
    const inner = { ...memoryStorage(), shared: true }; // IndexedDB, say: shared by the tabs
    const storageKey = `locked-${++keys}`;
    const asked: string[] = [];
    const a = make(clock, server, {
      storage: lockedStorage(inner, { unlock: () => asked.push("a") > 0 }),
      storageKey,
    });
    const b = make(clock, server, {
      storage: lockedStorage(inner, { unlock: () => asked.push("b") < 0 }),
      storageKey,
    });
    await a.loginWithPassword("alice", "pw");
    await clock.advance(61_000);
    const delivered = nextMessage(storageKey);
    await a.refresh();
    await delivered;
    expect(asked).toContain("b"); // B asked its gate rather than taking the tokens it heard of
    await expect(b.getTokens()).rejects.toBeInstanceOf(StorageLockedError);
    a.dispose();
    b.dispose();
  });
});
