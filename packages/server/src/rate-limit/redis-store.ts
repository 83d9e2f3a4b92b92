import { Redis } from "ioredis";
import type { RateLimitStore } from "./store.ts";

// INCRBY and set the expiry on the window's first hit, atomically, so every process sees one count.
const HIT = `local c = redis.call('INCRBY', KEYS[1], ARGV[2])
if c == tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {c, ttl}`;

/** Counters shared by every process that uses the same Redis (REDIS_URL). */
export class RedisRateLimitStore implements RateLimitStore {
  readonly #redis: Redis;
  constructor(url: string, prefix = "evergreen:rl:") {
    this.#redis = new Redis(url, { keyPrefix: prefix, maxRetriesPerRequest: 2, enableOfflineQueue: true });
    // Connection errors surface on the commands that fail; do not crash on the event.
    this.#redis.on("error", () => {});
  }

  async hit(key: string, windowMs: number, nowMs: number, cost = 1) {
    const [count, ttl] = (await this.#redis.eval(HIT, 1, key, windowMs, cost)) as [number, number];
    return { count, resetAt: nowMs + ttl };
  }

  async peek(key: string, nowMs: number) {
    const [value, ttl] = await Promise.all([this.#redis.get(key), this.#redis.pttl(key)]);
    return { count: value ? Number(value) : 0, resetAt: nowMs + Math.max(ttl, 0) };
  }

  async reset(key: string) {
    await this.#redis.del(key);
  }

  async close() {
    this.#redis.disconnect();
  }
}
