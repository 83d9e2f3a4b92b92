/** A fixed-window counter store; memory for one process, Redis when processes share limits. */
export interface RateLimitStore {
  /** Adds `cost` to `key`'s window and returns the count and when the window resets (epoch ms). */
  hit(
    key: string,
    windowMs: number,
    nowMs: number,
    cost?: number,
  ): Promise<{ count: number; resetAt: number }>;
  /** Reads without counting. */
  peek(key: string, nowMs: number): Promise<{ count: number; resetAt: number }>;
  reset(key: string): Promise<void>;
  /** Resolves when the store can be reached (readiness); rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
