import { exchangeAuthorizationCode } from "../authorization/code-exchange.ts";
import { type AuthorizationParameters, createAuthorizationRequest } from "../authorization/request.ts";
import { authorizationCode } from "../authorization/response.ts";
import type { ClientCredentials } from "../client-auth.ts";
import { type Clock, systemClock } from "../clock.ts";
import { sessionChannel } from "../coordination/broadcast.ts";
import { type Lock, storageLock } from "../coordination/lock.ts";
import { webLock } from "../coordination/web-lock.ts";
import { type AuthorizationServerMetadata, discover } from "../discovery.ts";
import { dpopFetch } from "../dpop/dpop-fetch.ts";
import { type DpopKeys, indexedDBDpopKeys, storageDpopKeys } from "../dpop/keys.ts";
import { AuthorizationError } from "../errors.ts";
import { passwordGrant } from "../grants/password.ts";
import { oauth2Profile } from "../profiles/oauth2.ts";
import type { RefreshContext, RefreshFunction, RefreshProfile } from "../profiles/refresh-profile.ts";
import { revokeToken } from "../revocation.ts";
import { ServerTime } from "../server-time.ts";
import { memoryStorage, type TokenStorage } from "../storage/token-storage.ts";
import { webStorage } from "../storage/web-storage.ts";
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
  /**
   * Sender-constrained tokens (DPoP, RFC 9449): token requests and requests with a DPoP-bound
   * access token carry proofs signed by an ES256 key. `true`: a non-extractable key in
   * IndexedDB where there is IndexedDB, else a key exported as a JWK into `storage` (beside the
   * tokens, under `<storageKey>:dpop`). Or a provider: `indexedDBDpopKeys()`, `memoryDpopKeys()`,
   * `storageDpopKeys(storage, key)`, your own.
   */
  dpop?: boolean | DpopKeys;
  /**
   * Where `loginWithRedirect` keeps the sign-in in progress (PKCE verifier, state, nonce) until
   * `handleRedirectCallback`. Default: `sessionStorage` (this tab).
   */
  transactionStore?: TokenStorage;
}

/** Options of one `loginWithRedirect` call. */
export interface RedirectLoginOptions extends Omit<AuthorizationParameters, "clientId"> {
  /** Sends the browser to the authorization URL. Default: `location.assign(url)`. */
  navigate?: (url: string) => void | Promise<void>;
}

export interface Session {
  /** Logs in with the resource owner password grant; stores the tokens. */
  loginWithPassword(username: string, password: string, options?: { scope?: string }): Promise<TokenSet>;
  /**
   * Sends the browser to the issuer's sign-in (authorization code + PKCE S256, `state`, `nonce`,
   * scope `openid offline_access` unless given). The sign-in in progress is kept in the
   * `transactionStore` until the issuer sends the browser back to `redirectUri`.
   */
  loginWithRedirect(options: RedirectLoginOptions): Promise<void>;
  /**
   * Completes a `loginWithRedirect` on the page the issuer sent the browser back to (`url`,
   * default `location.href`): checks `state` and `iss` (RFC 9207), turns an `error` into an
   * AuthorizationError, redeems the code, validates the ID token (`nonce`, `max_age`), and
   * stores the tokens. The sign-in in progress is used once; in a browser the code and state
   * are removed from the address bar (`history.replaceState`). Resolves to this session.
   */
  handleRedirectCallback(url?: string): Promise<Session>;
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
  const serverTime = new ServerTime(clock);
  const dpopKeys =
    options.dpop === true
      ? typeof indexedDB !== "undefined"
        ? indexedDBDpopKeys({ name: key })
        : storageDpopKeys(storage, `${key}:dpop`)
      : options.dpop || undefined;
  // Proofs carry the issuer's time: a device clock minutes off would fail the iat window.
  const proving = dpopKeys && dpopFetch(dpopKeys, { fetch: fetchFn, now: () => serverTime.now() });
  /** The fetch for token requests: with a DPoP proof when the session has a key. */
  const tokenFetch = proving ?? fetchFn;
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
  const context: RefreshContext = { fetch: tokenFetch, clientId: options.clientId, tokenEndpoint };

  const coordinator = refreshCoordinator({
    storage,
    key,
    lock,
    clock,
    serverTime,
    profile,
    context,
    retry: options.retry,
    whenOnline: () => lifecycle.whenOnline(),
    leeway: (options.refreshLeeway ?? 30) * 1000,
    events,
    post: (type, session) => channel.post(type, session),
    changed: () => timer.schedule(),
    dueOnArrival: () => timer.backOff(),
  });
  const timer = new RefreshTimer(clock, coordinator, (error) => events.emit("error", { error }));
  if (options.autoRefresh === false) timer.stop();
  // (A refused `lockedStorage` read here is not an error of anyone's: the next request asks again.)
  const channel = sessionChannel(
    storage,
    key,
    shared,
    (m) => void coordinator.heard(m).catch(() => undefined),
  );
  const resume = () => coordinator.resume();
  const removeWakeListeners = lifecycle.onWake(() => void resume());

  const store = (tokens: TokenSet) => {
    timer.reset();
    return coordinator.store(tokens);
  };

  const transactions = () => {
    if (options.transactionStore) return options.transactionStore;
    try {
      return webStorage(sessionStorage); // absent in Node, refused in some sandboxed frames
    } catch {
      throw new TypeError("redirect sign-in needs sessionStorage or a `transactionStore`");
    }
  };
  const transactionKey = (state: string) => `${key}:login:${state}`;

  const session: Session = {
    async loginWithRedirect({ navigate, ...parameters }) {
      const { url, transaction } = await createAuthorizationRequest(await getMetadata(), {
        ...parameters,
        clientId: options.clientId,
      });
      await transactions().set(transactionKey(transaction.state), JSON.stringify(transaction));
      await (navigate ?? ((to: string) => location.assign(to)))(url);
    },

    async handleRedirectCallback(url) {
      const href = url ?? location.href;
      const params = new URL(href).searchParams;
      forgetCallbackParameters(href);
      // One use: the sign-in in progress is gone before its code is redeemed.
      const state = params.get("state") ?? "";
      const inProgress = transactions();
      const saved = state && (await inProgress.get(transactionKey(state)));
      if (!saved) throw new AuthorizationError("invalid_state", "no sign-in in progress for this state");
      await inProgress.remove(transactionKey(state));
      const transaction = JSON.parse(saved) as Parameters<typeof exchangeAuthorizationCode>[2];
      const metadata = await getMetadata();
      if (transaction.issuer !== metadata.issuer || transaction.clientId !== options.clientId)
        throw new AuthorizationError("invalid_state", "the sign-in was started for another issuer or client");
      const code = authorizationCode(metadata, params, transaction.state);
      await store(
        await coordinator.timed(() =>
          exchangeAuthorizationCode(metadata, client, transaction, code, {
            fetch: fetchFn,
            tokenFetch,
            now: () => serverTime.now(),
          }),
        ),
      );
      return session;
    },

    async loginWithPassword(username, password, loginOptions = {}) {
      const endpoint = await tokenEndpoint();
      const tokens = await coordinator.timed(() =>
        passwordGrant(
          endpoint,
          client,
          { username, password, scope: loginOptions.scope },
          { fetch: tokenFetch },
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
      const response = await send(tokens);
      // Never a loop: a 401 for a token that was just refreshed, or on the retry, goes to the caller.
      if (fresh || !tokens.refreshToken || !isTokenRejected(response)) return response;
      await response.body?.cancel().catch(() => undefined);
      return send(await coordinator.refresh(tokens.accessToken));

      /** A DPoP-bound token goes with a proof (`ath`, nonce retry); any other as a bearer token. */
      function send(tokens: TokenSet) {
        if (proving && /^dpop$/i.test(tokens.tokenType))
          return proving(...attempt(`DPoP ${tokens.accessToken}`));
        return fetchFn(...attempt(`Bearer ${tokens.accessToken}`));
      }
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
  return session;
}

/** Takes the authorization response out of the address bar, so a reload or a shared link does not carry it. */
function forgetCallbackParameters(href: string): void {
  const { history, location } = globalThis as { history?: History; location?: Location };
  if (!history?.replaceState || location?.href !== href) return;
  const url = new URL(href);
  for (const name of ["code", "state", "iss", "error", "error_description", "error_uri", "session_state"])
    url.searchParams.delete(name);
  history.replaceState(history.state, "", url.toString());
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
