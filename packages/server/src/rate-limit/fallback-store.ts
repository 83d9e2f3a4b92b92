import type { FastifyBaseLogger } from "fastify";
import type { Counter } from "prom-client";
import { MemoryRateLimitStore } from "./memory-store.ts";
import type { RedisRateLimitStore } from "./redis-store.ts";
import type { RateLimitStore } from "./store.ts";

/**
 * Redis-backed limits that fail open: while Redis is unreachable (disconnected, or a command
 * times out), every operation is answered by this process's in-memory store, so a Redis outage
 * never takes the token endpoint down: limits only stop being shared between processes. The
 * switch is logged once each way and every operation answered from memory is counted.
 * Every operation tries Redis while the connection is up, so one slow answer costs one request
 * its shared count, not the following ones, and Redis is used again as soon as it answers; a
 * frozen Redis costs each request the command timeout, a disconnected one nothing.
 */
export class FallbackRateLimitStore implements RateLimitStore {
  readonly #memory = new MemoryRateLimitStore();
  #degraded = false;

  private readonly redis: RedisRateLimitStore;
  private readonly log: FastifyBaseLogger;
  private readonly fallbacks: Counter;

  constructor(redis: RedisRateLimitStore, log: FastifyBaseLogger, fallbacks: Counter) {
    this.redis = redis;
    this.log = log;
    this.fallbacks = fallbacks;
  }

  /**
   * Waits (at most `timeoutMs`) for the first connection, so a server starts with shared
   * limits; when Redis is down at start, it starts on memory and switches once Redis is up.
   */
  async start(timeoutMs: number): Promise<void> {
    if (!(await this.redis.waitConnected(timeoutMs))) this.#enterFallback("not connected at start");
  }

  hit(key: string, windowMs: number, nowMs: number, cost?: number) {
    return this.#run((s) => s.hit(key, windowMs, nowMs, cost));
  }

  peek(key: string, nowMs: number) {
    return this.#run((s) => s.peek(key, nowMs));
  }

  reset(key: string) {
    return this.#run((s) => s.reset(key));
  }

  /** Readiness reports Redis itself, not the fallback. */
  ping(): Promise<void> {
    return this.redis.ping();
  }

  async close() {
    await this.redis.close();
  }

  async #run<T>(op: (store: RateLimitStore) => Promise<T>): Promise<T> {
    if (this.redis.connected) {
      try {
        const result = await op(this.redis);
        if (this.#degraded) {
          this.#degraded = false;
          this.log.info(
            { event: "rate_limit_store_recovered" },
            "Redis is back; rate limits are shared again",
          );
        }
        return result;
      } catch (err) {
        this.#enterFallback((err as Error)?.message);
      }
    } else {
      this.#enterFallback("not connected");
    }
    this.fallbacks.inc();
    return op(this.#memory);
  }

  #enterFallback(reason: string | undefined) {
    if (this.#degraded) return;
    this.#degraded = true;
    this.log.warn(
      { event: "rate_limit_store_fallback", reason: String(reason ?? "unknown").slice(0, 100) },
      "Redis unreachable; rate limits fall back to this process's memory",
    );
  }
}
