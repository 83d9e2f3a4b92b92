import type { Clock } from "@evergreen/db";
import { OAuthError } from "../errors.ts";
import type { RateLimitStore } from "./store.ts";

export interface LimitDecision {
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  reset: number;
}

/** RateLimit-* headers (IETF httpapi draft) and Retry-After when refused. */
export function rateLimitHeaders(d: LimitDecision, refused: boolean): Record<string, string> {
  const headers: Record<string, string> = {
    "RateLimit-Limit": String(d.limit),
    "RateLimit-Remaining": String(d.remaining),
    "RateLimit-Reset": String(d.reset),
  };
  if (refused) headers["Retry-After"] = String(Math.max(d.reset, 1));
  return headers;
}

/** Fixed-window limits over a store; `enabled: false` makes every check pass. */
export class RateLimiter {
  private readonly store: RateLimitStore;
  private readonly clock: Clock;
  readonly enabled: boolean;
  constructor(store: RateLimitStore, clock: Clock, enabled: boolean) {
    this.store = store;
    this.clock = clock;
    this.enabled = enabled;
  }

  /** Counts one request against `key`; throws 429 `too_many_requests` once over `limit`. */
  async consume(key: string, limit: number, windowSeconds: number): Promise<LimitDecision | undefined> {
    if (!this.enabled) return undefined;
    const now = this.clock.now().getTime();
    const { count, resetAt } = await this.store.hit(key, windowSeconds * 1000, now);
    const decision = {
      limit,
      remaining: Math.max(limit - count, 0),
      reset: Math.ceil((resetAt - now) / 1000),
    };
    if (count > limit) {
      throw new OAuthError(
        "too_many_requests",
        "rate limit exceeded; retry later",
        rateLimitHeaders(decision, true),
      );
    }
    return decision;
  }

  /** Throws 429 when `key` is already at `limit`, without counting (failure budgets). */
  async check(
    key: string,
    limit: number,
    message = "too many failed logins for this account; retry later",
  ): Promise<void> {
    if (!this.enabled) return;
    const now = this.clock.now().getTime();
    const { count, resetAt } = await this.store.peek(key, now);
    if (count >= limit) {
      const decision = { limit, remaining: 0, reset: Math.ceil((resetAt - now) / 1000) };
      throw new OAuthError("too_many_requests", message, rateLimitHeaders(decision, true));
    }
  }

  /** Whether `key` has reached `limit` in its current window (nothing counted, nothing thrown). */
  async reached(key: string, limit: number): Promise<boolean> {
    if (!this.enabled) return false;
    const { count } = await this.store.peek(key, this.clock.now().getTime());
    return count >= limit;
  }

  async record(key: string, windowSeconds: number): Promise<void> {
    if (!this.enabled) return;
    await this.store.hit(key, windowSeconds * 1000, this.clock.now().getTime());
  }

  async forgive(key: string): Promise<void> {
    if (this.enabled) await this.store.reset(key);
  }

  /** Resolves when the counter store is reachable (readiness). */
  ping(): Promise<void> {
    return this.store.ping();
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
