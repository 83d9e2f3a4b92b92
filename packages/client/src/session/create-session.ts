import type { ClientCredentials } from "../client-auth.ts";
import { type Clock, systemClock } from "../clock.ts";
import { type SessionMessage, sessionChannel } from "../coordination/broadcast.ts";
import { type Lock, storageLock } from "../coordination/lock.ts";
import { webLock } from "../coordination/web-lock.ts";
import { type AuthorizationServerMetadata, discover } from "../discovery.ts";
import { RefreshFailedError, SessionExpiredError, TokenEndpointError } from "../errors.ts";
import { passwordGrant } from "../grants/password.ts";
import { oauth2Profile } from "../profiles/oauth2.ts";
import type { RefreshContext, RefreshFunction, RefreshProfile } from "../profiles/refresh-profile.ts";
import { revokeToken } from "../revocation.ts";
import { ServerTime } from "../server-time.ts";
import { memoryStorage, type TokenStorage } from "../storage/token-storage.ts";
import type { FetchLike, TokenResult } from "../token-response.ts";
import { Emitter, type Listener, type SessionEvents } from "./events.ts";
import { onWake } from "./lifecycle.ts";
import { isTokenRejected, replayableRequest } from "./replayable-request.ts";
import { classifyFailure, type RetryPolicy, withRetry } from "./retry.ts";
import { decodeStoredSession, type StoredSession, type TokenSet, tokenSetFrom } from "./stored-session.ts";

/** The shortest wait between timer refreshes that keep bringing tokens already due, or failing. */
const MIN_TIMER_GAP = 5000;
const MAX_TIMER_GAP = 5 * 60_000;

export interface SessionOptions {
  /** The issuer URL; its metadata names the token and revocation endpoints. */
  issuer?: string;
  clientId: string;
  clientSecret?: string;
  clientAuthMethod?: ClientCredentials["authMethod"];
  /** Skips discovery for the token endpoint. */
  tokenEndpoint?: string;
  /** Skips discovery for the revocation endpoint. */
  revocationEndpoint?: string;
  /** Where tokens live. Default: memory (this realm only). */
  storage?: TokenStorage;
  /** The key under which this session is stored. Default: `evergreen:<issuer>:<clientId>`. */
  storageKey?: string;
  /** How to refresh: standard OAuth 2 (default), `jsonProfile(...)`, or your own function. */
  refresh?: RefreshProfile | RefreshFunction;
  /** Refresh this many seconds before the access token expires (at most half its lifetime). Default 30. */
  refreshLeeway?: number;
  /** Refresh on a timer ahead of expiry, not only when a request needs a token. Default true. */
  autoRefresh?: boolean;
  retry?: RetryPolicy;
  /**
   * Coordination with other tabs/processes. Default: the storage's own lock (the file store's),
   * else Web Locks for a storage shared by tabs (`storage.shared`), else an in-realm lock shared
   * by the sessions on this same storage object.
   */
  lock?: Lock;
  /** Buffer ReadableStream request bodies so they can be replayed after a 401. Default false (refuse). */
  bufferStreamBodies?: boolean;
  clock?: Clock;
  fetch?: FetchLike;
}

export interface Session {
  /** Logs in with the resource owner password grant; stores the tokens. */
  loginWithPassword(username: string, password: string, options?: { scope?: string }): Promise<TokenSet>;
  /** Stores tokens obtained elsewhere (another login flow, a non-standard login endpoint). */
  setTokens(result: TokenResult): Promise<TokenSet>;
  /**
   * `fetch` with `Authorization: Bearer` attached, refreshed ahead of expiry, and on a 401
   * `invalid_token` refreshed once and retried once. A second 401 is returned as it is.
   */
  fetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response>;
  /** A valid access token (refreshing first if it is about to expire). */
  getAccessToken(): Promise<string>;
  /** The current tokens, or null when logged out. */
  getTokens(): Promise<TokenSet | null>;
  /** Refreshes now (shared with any refresh already under way). */
  refresh(): Promise<TokenSet>;
  /** Re-reads storage and refreshes if due; call on app resume (visibility/online are automatic). */
  resume(): Promise<void>;
  on<K extends keyof SessionEvents>(event: K, listener: Listener<K>): () => void;
  /** Revokes the refresh token at the server (RFC 7009, best effort) and clears storage. */
  logout(): Promise<{ revoked: boolean }>;
  /**
   * Stops this session's timer, its wake-up (`visibilitychange`/`online`/`pageshow`) listeners
   * and its BroadcastChannel. Tokens stay in storage; requests still work, refreshing on demand.
   */
  dispose(): void;
}

export function createSession(options: SessionOptions): Session {
  if (!options.issuer && !options.tokenEndpoint) {
    throw new TypeError("createSession needs `issuer` or `tokenEndpoint`");
  }
  const clock = options.clock ?? systemClock;
  const fetchFn: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));
  const storage = options.storage ?? memoryStorage();
  const key =
    options.storageKey ?? `evergreen:${options.issuer ?? options.tokenEndpoint}:${options.clientId}`;
  const shared = storage.shared === true;
  const lock = options.lock ?? storage.lock ?? (shared ? webLock() : undefined) ?? storageLock(storage);
  const leeway = (options.refreshLeeway ?? 30) * 1000;
  const client: ClientCredentials = {
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    authMethod: options.clientAuthMethod,
  };
  const profile: RefreshProfile =
    typeof options.refresh === "function"
      ? { refresh: options.refresh }
      : (options.refresh ??
        oauth2Profile({ clientSecret: options.clientSecret, authMethod: options.clientAuthMethod }));
  const serverTime = new ServerTime(clock);
  const events = new Emitter();

  let state: StoredSession | null | undefined; // undefined: not read from storage yet
  let loading: Promise<StoredSession | null> | undefined;
  let inflight: Promise<TokenSet> | undefined;
  let expiredEmitted = false;
  let disposed = false;
  let cancelTimer: (() => void) | undefined;
  /**
   * Timer back-off (ms): grows while timer refreshes keep bringing tokens that are already due
   * (`expires_in` shorter than the round trip, a skewed absolute expiry) or keep failing for a
   * transient reason; `retryAt` (monotonic) is when the timer may refresh again.
   */
  let backoff = 0;
  let retryAt = 0;
  let metadata: Promise<AuthorizationServerMetadata> | undefined;
  /** Token sets this session got from the token endpoint itself (not adopted from storage). */
  const issuedHere = new WeakSet<TokenSet>();

  const getMetadata = () => {
    metadata ??= discover(options.issuer as string, { fetch: fetchFn }).catch((error) => {
      metadata = undefined;
      throw error;
    });
    return metadata;
  };
  const tokenEndpoint = async () => options.tokenEndpoint ?? (await getMetadata()).token_endpoint;
  const context: RefreshContext = { fetch: fetchFn, clientId: options.clientId, tokenEndpoint };

  const read = async () => {
    state = decodeStoredSession(await storage.get(key));
    return state;
  };
  const write = async (next: StoredSession) => {
    await storage.set(key, JSON.stringify(next));
    state = next;
  };
  const load = async () => {
    // Cached tokens are current (refreshes here or announced by other tabs update them); "no
    // session" is re-checked, since another tab or process may have logged in meanwhile.
    if (state) return state;
    loading ??= read().finally(() => {
      loading = undefined;
    });
    const loaded = await loading;
    schedule();
    return loaded;
  };

  const leewayFor = (tokens: TokenSet) =>
    tokens.expiresAt === undefined ? 0 : Math.min(leeway, (tokens.expiresAt - tokens.receivedAt) / 2);
  const isDue = (session: StoredSession) =>
    session.refreshingSince !== undefined ||
    (session.tokens.expiresAt !== undefined &&
      serverTime.now() >= session.tokens.expiresAt - leewayFor(session.tokens));

  /** Obtains tokens from a grant or refresh call, measuring expiry on the server's clock. */
  const timed = async (call: () => Promise<TokenResult>, previous?: TokenSet, justIssued = true) => {
    const sentMono = clock.monotonic();
    const result = await call();
    serverTime.learn(result.serverDate);
    const sentAt = serverTime.now() - (clock.monotonic() - sentMono);
    return tokenSetFrom(result, sentAt, previous, justIssued);
  };

  function schedule() {
    cancelTimer?.();
    cancelTimer = undefined;
    const tokens = state?.tokens;
    if (
      disposed ||
      options.autoRefresh === false ||
      !tokens?.refreshToken ||
      tokens.expiresAt === undefined
    ) {
      return;
    }
    if (state && !isDue(state)) backoff = retryAt = 0; // good tokens: any back-off is over
    const delay =
      state?.refreshingSince !== undefined ? 0 : tokens.expiresAt - leewayFor(tokens) - serverTime.now();
    // Never a tight loop: while refreshes bring tokens already due, the timer waits `backoff`.
    cancelTimer = clock.setTimeout(
      () => {
        cancelTimer = undefined;
        void refreshInBackground();
      },
      Math.max(delay, retryAt - clock.monotonic()),
    );
  }

  const backOff = (atLeast = 0) => {
    backoff = Math.min(Math.max(backoff * 2, MIN_TIMER_GAP, atLeast), MAX_TIMER_GAP);
    retryAt = clock.monotonic() + backoff;
  };

  async function refreshInBackground() {
    try {
      const current = await load();
      if (current && isDue(current)) await refresh();
    } catch (error) {
      // Expiry was already announced. A transient failure (network, 5xx, 429) is tried again
      // later, backing off; anything else (invalid_client, a malformed response) would fail the
      // same way every time: the timer stops (requests still refresh on demand) and says why.
      if (error instanceof SessionExpiredError || classifyFailure(error) === "expired") return;
      const cause = error instanceof RefreshFailedError ? error.cause : error;
      if (error instanceof RefreshFailedError || classifyFailure(error) === "transient") {
        backOff(cause instanceof TokenEndpointError ? cause.retryAfter : undefined);
        schedule();
      } else if (!disposed) {
        events.emit("error", { error });
      }
    }
  }

  async function expire(cause: unknown): Promise<never> {
    await storage.remove(key);
    state = null;
    schedule();
    channel.post("expired");
    const error = new SessionExpiredError(undefined, cause);
    if (!expiredEmitted) {
      expiredEmitted = true;
      events.emit("expired", { error });
    }
    throw error;
  }

  const noSession = () => new SessionExpiredError("no session: log in first");

  /** One refresh for every caller in this realm; `stale` is the access token a caller saw rejected. */
  function refresh(stale?: string): Promise<TokenSet> {
    if (!inflight) {
      if (stale !== undefined && state?.tokens && state.tokens.accessToken !== stale && !isDue(state)) {
        return Promise.resolve(state.tokens); // someone already replaced the rejected token
      }
      // The token this refresh replaces, as seen now: by the time the lock is ours another tab
      // may have refreshed and told us (BroadcastChannel), updating `state` under our feet.
      const replaces = stale ?? state?.tokens.accessToken;
      inflight = lock
        .run(`evergreen:${key}`, () => refreshHoldingLock(replaces))
        .finally(() => {
          inflight = undefined;
        });
    }
    return inflight;
  }

  async function refreshHoldingLock(replaces: string | undefined): Promise<TokenSet> {
    // Another tab or process may have refreshed while we waited for the lock: use its tokens.
    const known = state?.tokens.accessToken;
    const stored = await read();
    if (!stored) throw expiredEmitted ? noSession() : await expire(noSession());
    if (stored.tokens.accessToken !== replaces && !isDue(stored)) {
      schedule();
      // (Unless a BroadcastChannel message already told us about these tokens.)
      if (stored.tokens.accessToken !== known) {
        events.emit("refreshed", { expiresAt: stored.tokens.expiresAt, source: "other" });
      }
      return stored.tokens;
    }
    const refreshToken = stored.tokens.refreshToken;
    if (!refreshToken) return expire(new Error("no refresh token"));
    await write({ ...stored, refreshingSince: serverTime.now() });
    const attempt = (token: string) =>
      timed(() => withRetry(() => profile.refresh(token, context), clock, options.retry), stored.tokens);
    let tokens: TokenSet;
    try {
      tokens = await attempt(refreshToken);
    } catch (error) {
      if (classifyFailure(error) !== "expired") {
        await write(stored); // tokens kept, marker cleared: offline is not logout
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
    const next: StoredSession = { version: 1, tokens };
    await write(next);
    issuedHere.add(tokens);
    // Tokens already due the moment they arrive: the timer waits before trying again, longer each time.
    if (isDue(next)) backOff();
    schedule();
    channel.post("refreshed");
    events.emit("refreshed", { expiresAt: tokens.expiresAt, source: "this" });
    return tokens;
  }

  /**
   * Tokens for a request, refreshed first when due. `fresh` when the token endpoint issued them
   * for this call: a 401 for those is an authorization failure. Tokens adopted from another tab
   * or process are not fresh (they may be older than they look), so a 401 may still refresh once.
   */
  async function currentTokens(): Promise<{ tokens: TokenSet; fresh: boolean }> {
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
  }

  async function onMessage(message: SessionMessage) {
    if (message.type === "refreshed" || message.type === "login") {
      const next = await read();
      if (message.type === "login") expiredEmitted = false;
      schedule();
      if (next && message.type === "refreshed") {
        events.emit("refreshed", { expiresAt: next.tokens.expiresAt, source: "other" });
      }
      return;
    }
    state = null;
    schedule();
    if (message.type === "logout") events.emit("logout", {});
    else if (!expiredEmitted) {
      expiredEmitted = true;
      events.emit("expired", { error: new SessionExpiredError() });
    }
  }
  const channel = sessionChannel(storage, key, shared, (m) => void onMessage(m));

  async function resume() {
    const current = await read();
    schedule();
    if (current && isDue(current) && current.tokens.refreshToken) {
      await refresh().catch(() => undefined);
    }
  }
  const removeWakeListeners = onWake(() => void resume());

  async function store(tokens: TokenSet) {
    await write({ version: 1, tokens });
    expiredEmitted = false;
    backoff = retryAt = 0;
    schedule();
    channel.post("login");
    return tokens;
  }

  return {
    async loginWithPassword(username, password, loginOptions = {}) {
      const endpoint = await tokenEndpoint();
      const tokens = await timed(() =>
        passwordGrant(
          endpoint,
          client,
          { username, password, scope: loginOptions.scope },
          { fetch: fetchFn },
        ),
      );
      return store(tokens);
    },

    async setTokens(result) {
      return store(await timed(async () => result, undefined, false));
    },

    async fetch(input, init) {
      const attempt = await replayableRequest(input, init, options.bufferStreamBodies ?? false);
      const { tokens, fresh } = await currentTokens();
      const response = await fetchFn(...attempt(`Bearer ${tokens.accessToken}`));
      // Never a loop: a 401 for a token that was just refreshed, or on the retry, goes to the caller.
      if (fresh || !tokens.refreshToken || !isTokenRejected(response)) return response;
      await response.body?.cancel().catch(() => undefined);
      const next = await refresh(tokens.accessToken);
      return fetchFn(...attempt(`Bearer ${next.accessToken}`));
    },

    async getAccessToken() {
      return (await currentTokens()).tokens.accessToken;
    },

    async getTokens() {
      return (await load())?.tokens ?? null;
    },

    async refresh() {
      if (!(await load())) throw noSession();
      return refresh();
    },

    resume,

    on: (event, listener) => events.on(event, listener),

    async logout() {
      return lock.run(`evergreen:${key}`, async () => {
        const current = await read();
        let revoked = false;
        const token = current?.tokens.refreshToken;
        if (token) {
          try {
            const endpoint = options.revocationEndpoint ?? (await getMetadata()).revocation_endpoint;
            if (endpoint) {
              await revokeToken(endpoint, client, token, { tokenTypeHint: "refresh_token", fetch: fetchFn });
              revoked = true;
            }
          } catch {
            // Best effort: the local session ends whether or not the server could be told.
          }
        }
        await storage.remove(key);
        state = null;
        schedule();
        channel.post("logout");
        events.emit("logout", {});
        return { revoked };
      });
    },

    dispose() {
      disposed = true;
      cancelTimer?.();
      cancelTimer = undefined;
      removeWakeListeners();
      channel.close();
    },
  };
}
