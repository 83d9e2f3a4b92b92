import { Redis } from "ioredis";
import type { RateLimitStore } from "./store.ts";

// INCRBY and set the expiry on the window's first hit, atomically, so every process sees one count.
const HIT = `local c = redis.call('INCRBY', KEYS[1], ARGV[2])
if c == tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {c, ttl}`;

/**
 * Counters shared by every process that uses the same Redis (REDIS_URL). Commands never wait:
 * none are queued while disconnected and each times out after `commandTimeoutMs`, so a caller
 * (FallbackRateLimitStore) can answer from memory instead of stalling a request.
 */
export class RedisRateLimitStore implements RateLimitStore {
  readonly #redis: Redis;
  readonly #timeoutMs: number;
  constructor(url: string, options: { commandTimeoutMs: number; prefix?: string }) {
    this.#timeoutMs = options.commandTimeoutMs;
    this.#redis = new Redis(url, {
      keyPrefix: options.prefix ?? "evergreen:rl:",
      // The caller stops waiting after commandTimeoutMs (see #timed); this only clears commands
      // a frozen connection never answers.
      commandTimeout: Math.max(options.commandTimeoutMs * 10, 1_000),
      connectTimeout: 2_000,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      // Keep reconnecting for ever, at most a second apart, so limits are shared again soon after Redis returns.
      retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
    });
    // Connection errors surface on the commands that fail; do not crash on the event.
    this.#redis.on("error", () => {});
  }

  /** True while the connection is up (commands sent now may still time out on a frozen server). */
  get connected(): boolean {
    return this.#redis.status === "ready";
  }

  /** Resolves once connected, or after `timeoutMs` if Redis cannot be reached (true when connected). */
  async waitConnected(timeoutMs: number): Promise<boolean> {
    if (this.connected) return true;
    let timer: NodeJS.Timeout | undefined;
    let onReady: (() => void) | undefined;
    const connected = await new Promise<boolean>((resolve) => {
      onReady = () => resolve(true);
      this.#redis.once("ready", onReady);
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    clearTimeout(timer);
    if (onReady) this.#redis.off("ready", onReady);
    return connected;
  }

  async ping(): Promise<void> {
    await this.#timed(this.#redis.ping());
  }

  async hit(key: string, windowMs: number, nowMs: number, cost = 1) {
    const [count, ttl] = (await this.#timed(this.#redis.eval(HIT, 1, key, windowMs, cost))) as [
      number,
      number,
    ];
    return { count, resetAt: nowMs + ttl };
  }

  async peek(key: string, nowMs: number) {
    const [value, ttl] = await this.#timed(Promise.all([this.#redis.get(key), this.#redis.pttl(key)]));
    return { count: value ? Number(value) : 0, resetAt: nowMs + Math.max(ttl, 0) };
  }

  async reset(key: string) {
    await this.#timed(this.#redis.del(key));
  }

  async close() {
    this.#redis.disconnect();
  }

  /**
   * Rejects when `command` has not answered within the timeout. The rejection waits for
   * setImmediate, which runs after the event loop has read the sockets: when the loop itself was
   * stalled (a busy process), an answer already received wins, so only a silent Redis times out.
   */
  #timed<T>(command: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => setImmediate(() => reject(new Error(`Redis did not answer within ${this.#timeoutMs} ms`))),
        this.#timeoutMs,
      );
    });
    return Promise.race([command, timeout]).finally(() => clearTimeout(timer));
  }
}
