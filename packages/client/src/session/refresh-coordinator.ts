import type { Clock } from "../clock.ts";
import type { SessionMessage } from "../coordination/broadcast.ts";
import type { Lock } from "../coordination/lock.ts";
import { RefreshFailedError, SessionExpiredError } from "../errors.ts";
import type { RefreshContext, RefreshProfile } from "../profiles/refresh-profile.ts";
import type { ServerTime } from "../server-time.ts";
import type { TokenStorage } from "../storage/token-storage.ts";
import type { TokenResult } from "../token-response.ts";
import type { Emitter } from "./events.ts";
import { classifyFailure, type RetryPolicy, withRetry } from "./retry.ts";
import {
  decodeStoredSession,
  generationOf,
  type StoredSession,
  type TokenSet,
  tokenSetFrom,
} from "./stored-session.ts";

export interface CoordinatorOptions {
  storage: TokenStorage;
  /** The storage key of this session. */
  key: string;
  lock: Lock;
  clock: Clock;
  serverTime: ServerTime;
  profile: RefreshProfile;
  context: RefreshContext;
  retry: RetryPolicy | undefined;
  whenOnline: () => Promise<void>;
  /** Refresh this many ms before the access token expires (at most half its lifetime). */
  leeway: number;
  events: Emitter;
  /** Tells the other sessions on this storage and key; resolves once the message is on its way. */
  post(type: SessionMessage["type"], session?: string): Promise<void>;
  /** The tokens (or their absence) changed: the timer re-reads when they fall due. */
  changed(): void;
  /** A refresh brought tokens that were already due when they arrived. */
  dueOnArrival(): void;
}

const noSession = () => new SessionExpiredError("no session: log in first");

/** A session's tokens and the one refresh at a time that renews them. */
export interface RefreshCoordinator {
  /** Reads the stored session, bypassing the cache. */
  read(): Promise<StoredSession | null>;
  /** The session, from the cache when it holds tokens. */
  load(): Promise<StoredSession | null>;
  isDue(session: StoredSession): boolean;
  /** Milliseconds until the cached tokens fall due; undefined when they cannot be refreshed on a timer. */
  dueIn(): number | undefined;
  /** Obtains tokens from a grant or refresh call, measuring expiry on the server's clock. */
  timed(call: () => Promise<TokenResult>, previous?: TokenSet, justIssued?: boolean): Promise<TokenSet>;
  /** Keeps tokens from a login (here or handed over) and tells the other sessions. */
  store(tokens: TokenSet): Promise<TokenSet>;
  /** One refresh for every caller in this realm; `stale` is the access token a caller saw rejected. */
  refresh(stale?: string): Promise<TokenSet>;
  /** Refreshes if the tokens are due (for the timer); says whether it did. */
  refreshIfDue(): Promise<boolean>;
  /**
   * Tokens for a request, refreshed first when due. `fresh` when the token endpoint issued them
   * for this call: a 401 for those is an authorization failure. Tokens adopted from another tab
   * or process are not fresh (they may be older than they look), so a 401 may still refresh once.
   */
  currentTokens(): Promise<{ tokens: TokenSet; fresh: boolean }>;
  /** Refreshes now, for a caller that asked to. */
  refreshNow(): Promise<TokenSet>;
  /** Re-reads storage and refreshes if due (app resume, page visible, back online). */
  resume(): Promise<void>;
  /** What another session on this storage and key announced. */
  heard(message: SessionMessage): Promise<void>;
  /**
   * Ends the session under the lock: `revoke` is given the refresh token (best effort, says
   * whether the server was told), then storage is cleared and the other sessions told.
   */
  logout(revoke: (refreshToken: string) => Promise<boolean>): Promise<{ revoked: boolean }>;
}

/**
 * Owns a session's tokens: reads and writes them in storage, refreshes them once for every
 * caller in this realm (and, under the lock, once for every tab and process on the storage),
 * follows a rotation another holder won, and ends the session when the refresh token is dead.
 */
export function refreshCoordinator(options: CoordinatorOptions): RefreshCoordinator {
  const { storage, key, lock, clock, serverTime, events, post, changed } = options;
  const lockName = `evergreen:${key}`;
  /** undefined: not read from storage yet; null: no session. */
  let state: StoredSession | null | undefined;
  let loading: Promise<StoredSession | null> | undefined;
  let inflight: Promise<TokenSet> | undefined;
  let expiredEmitted = false;
  /** Token sets this session got from the token endpoint itself (not adopted from storage). */
  const issuedHere = new WeakSet<TokenSet>();
  /**
   * The newest record another tab announced: this tab's view of the storage may lag behind it
   * (Chromium hands localStorage writes to other tabs asynchronously). Forgotten when the
   * session ends.
   */
  let announced: StoredSession | undefined;

  /**
   * Takes `next` as the session's record. Tokens that replace others this session held, and
   * that it did not store itself, are another tab's or process's refresh: `refreshed` once per
   * access token, however many ways (message, storage) they reach this session.
   */
  const take = (next: StoredSession | null) => {
    const before = state?.tokens.accessToken;
    state = next;
    if (next && before !== undefined && next.tokens.accessToken !== before) {
      events.emit("refreshed", { expiresAt: next.tokens.expiresAt, source: "other" });
    }
    return next;
  };
  const read = async () => {
    const stored = decodeStoredSession(await storage.get(key));
    // A stale view of storage (older, or not showing an announced login yet) loses to the announcement.
    return take(announced && generationOf(announced) > generationOf(stored) ? announced : stored);
  };
  const write = async (next: StoredSession) => {
    await storage.set(key, JSON.stringify(next));
    state = next;
  };
  /**
   * Compare-then-write under the lock: stores `next` (made from `base`) unless the session
   * already holds a newer record (a login here or elsewhere while a refresh was out), which
   * is then kept and returned instead.
   */
  const writeOver = async (base: StoredSession, next: StoredSession) => {
    const current = await read();
    if (current && generationOf(current) > generationOf(base)) return current;
    await write(next);
    return next;
  };
  /** Above every generation this session knows of; the clock keeps it ahead of a store wiped and started again. */
  const nextGeneration = () => Math.max(generationOf(state) + 1, generationOf(announced) + 1, clock.now());
  const load = async () => {
    // Cached tokens are current (refreshes here or announced by other tabs update them); "no
    // session" is re-checked, since another tab or process may have logged in meanwhile.
    if (state) return state;
    loading ??= read().finally(() => {
      loading = undefined;
    });
    const loaded = await loading;
    changed();
    return loaded;
  };
  const leewayFor = (tokens: TokenSet) =>
    tokens.expiresAt === undefined ? 0 : Math.min(options.leeway, (tokens.expiresAt - tokens.receivedAt) / 2);
  const isDue = (session: StoredSession) =>
    session.refreshingSince !== undefined ||
    (session.tokens.expiresAt !== undefined &&
      serverTime.now() >= session.tokens.expiresAt - leewayFor(session.tokens));

  const timed = async (call: () => Promise<TokenResult>, previous?: TokenSet, justIssued = true) => {
    const sentMono = clock.monotonic();
    const result = await call();
    serverTime.learn(result.serverDate);
    const sentAt = serverTime.now() - (clock.monotonic() - sentMono);
    return tokenSetFrom(result, sentAt, previous, justIssued);
  };

  const expire = async (cause: unknown): Promise<never> => {
    await storage.remove(key);
    state = null;
    announced = undefined;
    changed();
    await post("expired");
    const error = new SessionExpiredError(undefined, cause);
    if (!expiredEmitted) {
      expiredEmitted = true;
      events.emit("expired", { error });
    }
    throw error;
  };

  const refresh = (stale?: string): Promise<TokenSet> => {
    if (!inflight) {
      if (stale !== undefined && state?.tokens && state.tokens.accessToken !== stale && !isDue(state)) {
        return Promise.resolve(state.tokens); // someone already replaced the rejected token
      }
      // The token this refresh replaces, as seen now: by the time the lock is ours another tab
      // may have refreshed and told us (BroadcastChannel), updating `state` under our feet.
      const replaces = stale ?? state?.tokens.accessToken;
      inflight = lock
        .run(lockName, () => refreshHoldingLock(replaces))
        .finally(() => {
          inflight = undefined;
        });
    }
    return inflight;
  };

  async function refreshHoldingLock(replaces: string | undefined): Promise<TokenSet> {
    // Another tab or process may have refreshed while we waited for the lock: use its tokens
    // (from storage, or from its announcement when this tab's view of storage lags behind).
    const stored = await read();
    if (!stored) throw expiredEmitted ? noSession() : await expire(noSession());
    if (stored.tokens.accessToken !== replaces && !isDue(stored)) {
      changed();
      return stored.tokens;
    }
    const refreshToken = stored.tokens.refreshToken;
    if (!refreshToken) return expire(new Error("no refresh token"));
    // The newest record there is (just compared with any announcement), so no newer tokens are lost.
    await write({ ...stored, refreshingSince: serverTime.now() });
    const { profile, context } = options;
    const attempt = (token: string) =>
      timed(
        () => withRetry(() => profile.refresh(token, context), clock, options.retry, options.whenOnline),
        stored.tokens,
      );
    let tokens: TokenSet;
    try {
      tokens = await attempt(refreshToken);
    } catch (error) {
      if (classifyFailure(error) !== "expired") {
        await writeOver(stored, stored); // tokens kept, marker cleared: offline is not logout
        throw error;
      }
      // A lost rotation: someone may have stored a newer refresh token; try it once.
      const newest = (await read())?.tokens.refreshToken;
      if (!newest || newest === refreshToken) return expire(error);
      try {
        tokens = await attempt(newest);
      } catch (retryError) {
        if (classifyFailure(retryError) === "expired") return expire(retryError);
        throw retryError;
      }
    }
    const next: StoredSession = { version: 1, generation: nextGeneration(), tokens };
    const kept = await writeOver(stored, next);
    if (kept !== next) {
      changed(); // a login replaced the session while the refresh was out: it stands
      return kept.tokens;
    }
    issuedHere.add(tokens);
    // Tokens already due the moment they arrive: the timer waits before trying again, longer each time.
    if (isDue(next)) options.dueOnArrival();
    changed();
    // Announced before the lock is released: the next tab to get it knows of these tokens even
    // when its view of storage still shows the old ones.
    await post("refreshed", JSON.stringify(next));
    events.emit("refreshed", { expiresAt: tokens.expiresAt, source: "this" });
    return tokens;
  }

  return {
    read,
    load,
    isDue,
    timed,
    refresh,

    dueIn() {
      const tokens = state?.tokens;
      if (!tokens?.refreshToken || tokens.expiresAt === undefined) return undefined;
      if (state?.refreshingSince !== undefined) return 0;
      return tokens.expiresAt - leewayFor(tokens) - serverTime.now();
    },

    async store(tokens) {
      const next: StoredSession = { version: 1, generation: nextGeneration(), tokens };
      await write(next);
      expiredEmitted = false;
      changed();
      void post("login", JSON.stringify(next));
      return tokens;
    },

    async refreshIfDue() {
      const current = await load();
      if (!current || !isDue(current)) return false;
      await refresh();
      return true;
    },

    async currentTokens() {
      const current = await load();
      if (!current) throw noSession();
      if (!isDue(current) || !current.tokens.refreshToken) return { tokens: current.tokens, fresh: false };
      const pending = inflight;
      try {
        const tokens = await refresh();
        return { tokens, fresh: issuedHere.has(tokens) };
      } catch (error) {
        // Inside the leeway the old token still works: a failed early refresh must not fail the request.
        const expiresAt = current.tokens.expiresAt ?? 0;
        if (error instanceof RefreshFailedError && !pending && serverTime.now() < expiresAt) {
          return { tokens: current.tokens, fresh: false };
        }
        throw error;
      }
    },

    async refreshNow() {
      if (!(await load())) throw noSession();
      return refresh();
    },

    async resume() {
      const current = await read();
      changed();
      if (current && isDue(current) && current.tokens.refreshToken) {
        await refresh().catch(() => undefined);
      }
    },

    async heard(message) {
      if (message.type === "refreshed" || message.type === "login") {
        if (message.type === "login") expiredEmitted = false;
        // Told without the record (by a session in this realm), storage is current here. A
        // `lockedStorage` still locked in this tab gets no tokens past its gate: it reads (and asks).
        const told = (storage as { locked?: boolean }).locked ? undefined : message.session;
        const next = decodeStoredSession(told ?? (await storage.get(key)));
        if (next && generationOf(next) > generationOf(state)) {
          if (told) announced = next;
          if (message.type === "login")
            state = next; // a new session, not a refresh of ours
          else take(next);
        }
        changed();
        return;
      }
      state = null;
      announced = undefined;
      changed();
      if (message.type === "logout") events.emit("logout", {});
      else if (!expiredEmitted) {
        expiredEmitted = true;
        events.emit("expired", { error: new SessionExpiredError() });
      }
    },

    logout(revoke) {
      return lock.run(lockName, async () => {
        const token = (await read())?.tokens.refreshToken;
        const revoked = token ? await revoke(token) : false;
        await storage.remove(key);
        state = null;
        announced = undefined;
        changed();
        await post("logout");
        events.emit("logout", {});
        return { revoked };
      });
    },
  };
}
