import type { RateLimitStore } from "./store.ts";

/** In-process counters. Safe to lose: a restart only forgives some requests. */
export class MemoryRateLimitStore implements RateLimitStore {
  #windows = new Map<string, { count: number; resetAt: number }>();
  #sweptAt = 0;

  async hit(key: string, windowMs: number, nowMs: number, cost = 1) {
    this.#sweep(nowMs);
    let w = this.#windows.get(key);
    if (!w || w.resetAt <= nowMs) {
      w = { count: 0, resetAt: nowMs + windowMs };
      this.#windows.set(key, w);
    }
    w.count += cost;
    return { count: w.count, resetAt: w.resetAt };
  }

  async peek(key: string, nowMs: number) {
    const w = this.#windows.get(key);
    return !w || w.resetAt <= nowMs ? { count: 0, resetAt: nowMs } : { count: w.count, resetAt: w.resetAt };
  }

  async reset(key: string) {
    this.#windows.delete(key);
  }

  async ping() {}

  async close() {}

  // Bounded memory: drop finished windows at most once a second.
  #sweep(nowMs: number) {
    if (nowMs - this.#sweptAt < 1000 || this.#windows.size < 1000) return;
    this.#sweptAt = nowMs;
    for (const [k, w] of this.#windows) if (w.resetAt <= nowMs) this.#windows.delete(k);
  }
}
