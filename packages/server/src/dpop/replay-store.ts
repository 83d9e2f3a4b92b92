import { createHash } from "node:crypto";

/**
 * Remembers DPoP proof `jti`s for as long as a proof could be accepted (RFC 9449 §11.1).
 * `use` answers true the first time a key is seen before `expiresAtMs`, false after.
 */
export interface DpopReplayStore {
  use(key: string, expiresAtMs: number, nowMs: number): Promise<boolean>;
  close?(): Promise<void>;
}

/** Keys are hashed: bounded size whatever the proof's `jti`. */
export const replayKeyDigest = (key: string) => createHash("sha256").update(key).digest("base64url");

/**
 * One process's memory. Bounded: when full, expired entries are dropped first, then the
 * oldest. Entries all live about as long (the window), so the oldest is also the first to
 * expire; evicting one still inside its window would re-admit that proof, which needs more than
 * `maxEntries` fresh proofs within one window — size the bound above the expected rate.
 */
export class MemoryDpopReplayStore implements DpopReplayStore {
  readonly #seen = new Map<string, number>();
  readonly #max: number;
  constructor(maxEntries = 100_000) {
    this.#max = maxEntries;
  }

  async use(key: string, expiresAtMs: number, nowMs: number): Promise<boolean> {
    const k = replayKeyDigest(key);
    const until = this.#seen.get(k);
    if (until !== undefined && until > nowMs) return false;
    if (this.#seen.size >= this.#max) this.#evict(nowMs);
    this.#seen.delete(k);
    this.#seen.set(k, expiresAtMs);
    return true;
  }

  get size(): number {
    return this.#seen.size;
  }

  #evict(nowMs: number): void {
    for (const [k, until] of this.#seen) if (until <= nowMs) this.#seen.delete(k);
    while (this.#seen.size >= this.#max) {
      const oldest = this.#seen.keys().next().value;
      if (oldest === undefined) break;
      this.#seen.delete(oldest);
    }
  }
}
