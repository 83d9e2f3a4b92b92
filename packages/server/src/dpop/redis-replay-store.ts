import { Redis } from "ioredis";
import { type DpopReplayStore, MemoryDpopReplayStore, replayKeyDigest } from "./replay-store.ts";

/**
 * Shared by every process on the same Redis: `SET NX PX`, one round trip. When Redis does not
 * answer in time, the proof is checked against this process's memory instead (a replay to
 * another process during an outage is the price of staying up, as with the rate limits).
 */
export class RedisDpopReplayStore implements DpopReplayStore {
  readonly #redis: Redis;
  readonly #fallback = new MemoryDpopReplayStore();
  readonly #timeoutMs: number;
  readonly #onFallback: ((err: unknown) => void) | undefined;
  constructor(
    url: string,
    options: { commandTimeoutMs?: number; prefix?: string; onFallback?: (err: unknown) => void } = {},
  ) {
    this.#timeoutMs = options.commandTimeoutMs ?? 100;
    this.#onFallback = options.onFallback;
    this.#redis = new Redis(url, {
      keyPrefix: options.prefix ?? "evergreen:dpop:",
      commandTimeout: Math.max(this.#timeoutMs * 10, 1_000),
      connectTimeout: 2_000,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: (attempt) => Math.min(attempt * 100, 1_000),
    });
    this.#redis.on("error", () => {});
  }

  /** Resolves once connected, or after `timeoutMs` (true when connected). */
  async waitConnected(timeoutMs: number): Promise<boolean> {
    if (this.#redis.status === "ready") return true;
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

  async use(key: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    const ttl = Math.max(expiresAtMs - nowMs, 1);
    // The memory copy makes a replay to this same process refused even if Redis lost the key.
    const local = await this.#fallback.use(key, expiresAtMs, nowMs);
    let timer: NodeJS.Timeout | undefined;
    try {
      const answer = await Promise.race([
        this.#redis.set(replayKeyDigest(key), "1", "PX", ttl, "NX"),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("Redis did not answer in time")), this.#timeoutMs);
        }),
      ]);
      return answer === "OK" && local;
    } catch (err) {
      this.#onFallback?.(err);
      return local;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.#redis.disconnect();
  }
}
