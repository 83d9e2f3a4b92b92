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
import { decodeStoredSession, type StoredSession, type TokenSet, tokenSetFrom } from "./stored-session.ts";

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
  /** Tells the other sessions on this storage and key. */
  post(type: SessionMessage["type"]): void;
  /** The tokens (or their absence) changed: the timer re-reads when they fall due. */
  changed(): void;
  /** A refresh brought tokens that were already due when they arrived. */
  dueOnArrival(): void;
}

const noSession = () => new SessionExpiredError("no session: log in first");

/**
 * Owns a session's tokens: reads and writes them in storage, refreshes them once for every
 * caller in this realm (and, under the lock, once for every tab and process on the storage),
 * follows a rotation another holder won, and ends the session when the refresh token is dead.
 */
export class RefreshCoordinator {
  readonly #o: CoordinatorOptions;
  /** undefined: not read from storage yet; null: no session. */
  #state: StoredSession | null | undefined;
  #loading: Promise<StoredSession | null> | undefined;
  #inflight: Promise<TokenSet> | undefined;
  #expiredEmitted = false;
  /** Token sets this session got from the token endpoint itself (not adopted from storage). */
  readonly #issuedHere = new WeakSet<TokenSet>();

  constructor(options: CoordinatorOptions) {
    this.#o = options;
  }

  /** Reads the stored session, bypassing the cache. */
  async read(): Promise<StoredSession | null> {
    this.#state = decodeStoredSession(await this.#o.storage.get(this.#o.key));
    return this.#state;
  }

  async #write(next: StoredSession): Promise<void> {
    await this.#o.storage.set(this.#o.key, JSON.stringify(next));
    this.#state = next;
  }

  /** The session, from the cache when it holds tokens. */
  async load(): Promise<StoredSession | null> {
    // Cached tokens are current (refreshes here or announced by other tabs update them); "no
    // session" is re-checked, since another tab or process may have logged in meanwhile.
    if (this.#state) return this.#state;
    this.#loading ??= this.read().finally(() => {
      this.#loading = undefined;
    });
    const loaded = await this.#loading;
    this.#o.changed();
    return loaded;
  }

  #leewayFor(tokens: TokenSet): number {
    return tokens.expiresAt === undefined
      ? 0
      : Math.min(this.#o.leeway, (tokens.expiresAt - tokens.receivedAt) / 2);
  }

  isDue(session: StoredSession): boolean {
    return (
      session.refreshingSince !== undefined ||
      (session.tokens.expiresAt !== undefined &&
        this.#o.serverTime.now() >= session.tokens.expiresAt - this.#leewayFor(session.tokens))
    );
  }

  /** Milliseconds until the cached tokens fall due; undefined when they cannot be refreshed on a timer. */
  dueIn(): number | undefined {
    const tokens = this.#state?.tokens;
    if (!tokens?.refreshToken || tokens.expiresAt === undefined) return undefined;
    if (this.#state?.refreshingSince !== undefined) return 0;
    return tokens.expiresAt - this.#leewayFor(tokens) - this.#o.serverTime.now();
  }

  /** Obtains tokens from a grant or refresh call, measuring expiry on the server's clock. */
  async timed(call: () => Promise<TokenResult>, previous?: TokenSet, justIssued = true): Promise<TokenSet> {
    const { clock, serverTime } = this.#o;
    const sentMono = clock.monotonic();
    const result = await call();
    serverTime.learn(result.serverDate);
    const sentAt = serverTime.now() - (clock.monotonic() - sentMono);
    return tokenSetFrom(result, sentAt, previous, justIssued);
  }

  /** Keeps tokens from a login (here or handed over) and tells the other sessions. */
  async store(tokens: TokenSet): Promise<TokenSet> {
    await this.#write({ version: 1, tokens });
    this.#expiredEmitted = false;
    this.#o.changed();
    this.#o.post("login");
    return tokens;
  }

  async #expire(cause: unknown): Promise<never> {
    await this.#o.storage.remove(this.#o.key);
    this.#state = null;
    this.#o.changed();
    this.#o.post("expired");
    const error = new SessionExpiredError(undefined, cause);
    if (!this.#expiredEmitted) {
      this.#expiredEmitted = true;
      this.#o.events.emit("expired", { error });
    }
    throw error;
  }

  /** One refresh for every caller in this realm; `stale` is the access token a caller saw rejected. */
  refresh(stale?: string): Promise<TokenSet> {
    if (!this.#inflight) {
      const state = this.#state;
      if (stale !== undefined && state?.tokens && state.tokens.accessToken !== stale && !this.isDue(state)) {
        return Promise.resolve(state.tokens); // someone already replaced the rejected token
      }
      // The token this refresh replaces, as seen now: by the time the lock is ours another tab
      // may have refreshed and told us (BroadcastChannel), updating the state under our feet.
      const replaces = stale ?? state?.tokens.accessToken;
      this.#inflight = this.#o.lock
        .run(`evergreen:${this.#o.key}`, () => this.#refreshHoldingLock(replaces))
        .finally(() => {
          this.#inflight = undefined;
        });
    }
    return this.#inflight;
  }

  async #refreshHoldingLock(replaces: string | undefined): Promise<TokenSet> {
    const { events, serverTime } = this.#o;
    // Another tab or process may have refreshed while we waited for the lock: use its tokens.
    const known = this.#state?.tokens.accessToken;
    const stored = await this.read();
    if (!stored) throw this.#expiredEmitted ? noSession() : await this.#expire(noSession());
    if (stored.tokens.accessToken !== replaces && !this.isDue(stored)) {
      this.#o.changed();
      // (Unless a BroadcastChannel message already told us about these tokens.)
      if (stored.tokens.accessToken !== known) {
        events.emit("refreshed", { expiresAt: stored.tokens.expiresAt, source: "other" });
      }
      return stored.tokens;
    }
    const refreshToken = stored.tokens.refreshToken;
    if (!refreshToken) return this.#expire(new Error("no refresh token"));
    await this.#write({ ...stored, refreshingSince: serverTime.now() });
    const { profile, context, clock, retry, whenOnline } = this.#o;
    const attempt = (token: string) =>
      this.timed(
        () => withRetry(() => profile.refresh(token, context), clock, retry, whenOnline),
        stored.tokens,
      );
    let tokens: TokenSet;
    try {
      tokens = await attempt(refreshToken);
    } catch (error) {
      if (classifyFailure(error) !== "expired") {
        await this.#write(stored); // tokens kept, marker cleared: offline is not logout
        throw error;
      }
      // A lost rotation: someone may have stored a newer refresh token; try it once.
      const newest = (await this.read())?.tokens.refreshToken;
      if (!newest || newest === refreshToken) return this.#expire(error);
      try {
        tokens = await attempt(newest);
      } catch (retryError) {
        if (classifyFailure(retryError) === "expired") return this.#expire(retryError);
        throw retryError;
      }
    }
    const next: StoredSession = { version: 1, tokens };
    await this.#write(next);
    this.#issuedHere.add(tokens);
    // Tokens already due the moment they arrive: the timer waits before trying again, longer each time.
    if (this.isDue(next)) this.#o.dueOnArrival();
    this.#o.changed();
    this.#o.post("refreshed");
    events.emit("refreshed", { expiresAt: tokens.expiresAt, source: "this" });
    return tokens;
  }

  /** Refreshes if the tokens are due (for the timer); says whether it did. */
  async refreshIfDue(): Promise<boolean> {
    const current = await this.load();
    if (!current || !this.isDue(current)) return false;
    await this.refresh();
    return true;
  }

  /**
   * Tokens for a request, refreshed first when due. `fresh` when the token endpoint issued them
   * for this call: a 401 for those is an authorization failure. Tokens adopted from another tab
   * or process are not fresh (they may be older than they look), so a 401 may still refresh once.
   */
  async currentTokens(): Promise<{ tokens: TokenSet; fresh: boolean }> {
    const current = await this.load();
    if (!current) throw noSession();
    if (!this.isDue(current) || !current.tokens.refreshToken) return { tokens: current.tokens, fresh: false };
    const pending = this.#inflight;
    try {
      const tokens = await this.refresh();
      return { tokens, fresh: this.#issuedHere.has(tokens) };
    } catch (error) {
      // Inside the leeway the old token still works: a failed early refresh must not fail the request.
      const expiresAt = current.tokens.expiresAt ?? 0;
      if (error instanceof RefreshFailedError && !pending && this.#o.serverTime.now() < expiresAt) {
        return { tokens: current.tokens, fresh: false };
      }
      throw error;
    }
  }

  /** Refreshes now, for a caller that asked to. */
  async refreshNow(): Promise<TokenSet> {
    if (!(await this.load())) throw noSession();
    return this.refresh();
  }

  /** Re-reads storage and refreshes if due (app resume, page visible, back online). */
  async resume(): Promise<void> {
    const current = await this.read();
    this.#o.changed();
    if (current && this.isDue(current) && current.tokens.refreshToken) {
      await this.refresh().catch(() => undefined);
    }
  }

  /** What another session on this storage and key announced. */
  async heard(message: SessionMessage): Promise<void> {
    const { events } = this.#o;
    if (message.type === "refreshed" || message.type === "login") {
      const next = await this.read();
      if (message.type === "login") this.#expiredEmitted = false;
      this.#o.changed();
      if (next && message.type === "refreshed") {
        events.emit("refreshed", { expiresAt: next.tokens.expiresAt, source: "other" });
      }
      return;
    }
    this.#state = null;
    this.#o.changed();
    if (message.type === "logout") events.emit("logout", {});
    else if (!this.#expiredEmitted) {
      this.#expiredEmitted = true;
      events.emit("expired", { error: new SessionExpiredError() });
    }
  }

  /**
   * Ends the session under the lock: `revoke` is given the refresh token (best effort, says
   * whether the server was told), then storage is cleared and the other sessions told.
   */
  logout(revoke: (refreshToken: string) => Promise<boolean>): Promise<{ revoked: boolean }> {
    const { key, lock, storage, events } = this.#o;
    return lock.run(`evergreen:${key}`, async () => {
      const token = (await this.read())?.tokens.refreshToken;
      const revoked = token ? await revoke(token) : false;
      await storage.remove(key);
      this.#state = null;
      this.#o.changed();
      this.#o.post("logout");
      events.emit("logout", {});
      return { revoked };
    });
  }
}
