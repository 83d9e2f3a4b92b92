import type { ClientCredentials } from "../client-auth.ts";
import { type Clock, systemClock } from "../clock.ts";
import { sessionChannel } from "../coordination/broadcast.ts";
import { type Lock, storageLock } from "../coordination/lock.ts";
import { webLock } from "../coordination/web-lock.ts";
import { type AuthorizationServerMetadata, discover } from "../discovery.ts";
import { passwordGrant } from "../grants/password.ts";
import { oauth2Profile } from "../profiles/oauth2.ts";
import type { RefreshContext, RefreshFunction, RefreshProfile } from "../profiles/refresh-profile.ts";
import { revokeToken } from "../revocation.ts";
import { ServerTime } from "../server-time.ts";
import { memoryStorage, type TokenStorage } from "../storage/token-storage.ts";
import type { FetchLike, TokenResult } from "../token-response.ts";
import { Emitter, type Listener, type SessionEvents } from "./events.ts";
import { browserLifecycle, type Lifecycle } from "./lifecycle.ts";
import { refreshCoordinator } from "./refresh-coordinator.ts";
import { RefreshTimer } from "./refresh-timer.ts";
import { isTokenRejected, replayableRequest } from "./replayable-request.ts";
import type { RetryPolicy } from "./retry.ts";
import type { TokenSet } from "./stored-session.ts";

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
  /**
   * Origins (`https://api.example`, or any URL on them) that `session.fetch` sends the access
   * token to, besides the issuer's own origin (the token endpoint's when there is no `issuer`).
   * A request to any other origin goes out as it is, without the token (and without a refresh
   * or a retry on 401): a token never leaves for a third party.
   */
  origins?: string[];
  /** Buffer ReadableStream request bodies so they can be replayed after a 401. Default false (refuse). */
  bufferStreamBodies?: boolean;
  clock?: Clock;
  fetch?: FetchLike;
  /** Wake-up (visible, online) and online signals. Default: the browser's events, where they exist. */
  lifecycle?: Lifecycle;
}

export interface Session {
  /** Logs in with the resource owner password grant; stores the tokens. */
  loginWithPassword(username: string, password: string, options?: { scope?: string }): Promise<TokenSet>;
  /** Stores tokens obtained elsewhere (another login flow, a non-standard login endpoint). */
  setTokens(result: TokenResult): Promise<TokenSet>;
  /**
   * `fetch` with `Authorization: Bearer` attached, refreshed ahead of expiry, and on a 401
   * `invalid_token` refreshed once and retried once. A second 401 is returned as it is.
   * Only for the issuer's origin and `origins`: other requests are sent unchanged, without the token.
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

/**
 * A session: the public face over a refresh coordinator (the tokens, one refresh at a time,
 * expiry) and a refresh timer (ahead of expiry, with back-off). This file only wires them to
 * the options, the other sessions on the same storage, and the app's wake-ups.
 */
export function createSession(options: SessionOptions): Session {
  if (!options.issuer && !options.tokenEndpoint) {
    throw new TypeError("createSession needs `issuer` or `tokenEndpoint`");
  }
  const clock = options.clock ?? systemClock;
  const fetchFn: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));
  const lifecycle = options.lifecycle ?? browserLifecycle;
  const storage = options.storage ?? memoryStorage();
  const key =
    options.storageKey ?? `evergreen:${options.issuer ?? options.tokenEndpoint}:${options.clientId}`;
  const shared = storage.shared === true;
  const lock = options.lock ?? storage.lock ?? (shared ? webLock() : undefined) ?? storageLock(storage);
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
  const events = new Emitter();
  // Where the access token may go (a bad URL throws here, before anything is started).
  const allowed = new Set(
    [options.issuer ?? (options.tokenEndpoint as string), ...(options.origins ?? [])].map(
      (url) => new URL(url).origin,
    ),
  );

  let metadata: Promise<AuthorizationServerMetadata> | undefined;
  const getMetadata = () => {
    metadata ??= discover(options.issuer as string, { fetch: fetchFn }).catch((error) => {
      metadata = undefined;
      throw error;
    });
    return metadata;
  };
  const tokenEndpoint = async () => options.tokenEndpoint ?? (await getMetadata()).token_endpoint;
  const context: RefreshContext = { fetch: fetchFn, clientId: options.clientId, tokenEndpoint };

  const coordinator = refreshCoordinator({
    storage,
    key,
    lock,
    clock,
    serverTime: new ServerTime(clock),
    profile,
    context,
    retry: options.retry,
    whenOnline: () => lifecycle.whenOnline(),
    leeway: (options.refreshLeeway ?? 30) * 1000,
    events,
    post: (type) => channel.post(type),
    changed: () => timer.schedule(),
    dueOnArrival: () => timer.backOff(),
  });
  const timer = new RefreshTimer(clock, coordinator, (error) => events.emit("error", { error }));
  if (options.autoRefresh === false) timer.stop();
  const channel = sessionChannel(storage, key, shared, (m) => void coordinator.heard(m));
  const resume = () => coordinator.resume();
  const removeWakeListeners = lifecycle.onWake(() => void resume());

  const store = (tokens: TokenSet) => {
    timer.reset();
    return coordinator.store(tokens);
  };

  return {
    async loginWithPassword(username, password, loginOptions = {}) {
      const endpoint = await tokenEndpoint();
      const tokens = await coordinator.timed(() =>
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
      return store(await coordinator.timed(async () => result, undefined, false));
    },

    async fetch(input, init) {
      if (!allowed.has(originOf(input))) return fetchFn(input, init);
      const attempt = await replayableRequest(input, init, options.bufferStreamBodies ?? false);
      const { tokens, fresh } = await coordinator.currentTokens();
      const response = await fetchFn(...attempt(`Bearer ${tokens.accessToken}`));
      // Never a loop: a 401 for a token that was just refreshed, or on the retry, goes to the caller.
      if (fresh || !tokens.refreshToken || !isTokenRejected(response)) return response;
      await response.body?.cancel().catch(() => undefined);
      const next = await coordinator.refresh(tokens.accessToken);
      return fetchFn(...attempt(`Bearer ${next.accessToken}`));
    },

    async getAccessToken() {
      return (await coordinator.currentTokens()).tokens.accessToken;
    },

    async getTokens() {
      return (await coordinator.load())?.tokens ?? null;
    },

    refresh: () => coordinator.refreshNow(),

    resume,

    on: (event, listener) => events.on(event, listener),

    logout: () =>
      coordinator.logout(async (token) => {
        try {
          const endpoint = options.revocationEndpoint ?? (await getMetadata()).revocation_endpoint;
          if (!endpoint) return false;
          await revokeToken(endpoint, client, token, { tokenTypeHint: "refresh_token", fetch: fetchFn });
          return true;
        } catch {
          return false; // best effort: the local session ends whether or not the server could be told
        }
      }),

    dispose() {
      timer.stop();
      removeWakeListeners();
      channel.close();
    },
  };
}

/** The origin a request goes to (relative URLs resolve against the page); "" when unknown. */
function originOf(input: RequestInfo | URL): string {
  const url = typeof input === "string" ? input : "href" in input ? input.href : input.url;
  try {
    return new URL(url, (globalThis as { location?: { href?: string } }).location?.href).origin;
  } catch {
    return "";
  }
}
