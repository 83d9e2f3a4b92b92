import type { Database } from "@evergreen/db";
import { BROKER_CHANNEL } from "./queries.ts";

/**
 * One LISTEN per process on the broker channel, fanned out in memory: consumers wait for a
 * connection's `changed` notification instead of polling, and workers wake on `due`.
 * Payloads are `changed:<id>` (tokens or status written) and `due:<id>` (refresh wanted now).
 */
export class Notifier {
  readonly #db: Database;
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #dueListeners = new Set<() => void>();
  #stop?: () => Promise<void>;

  constructor(db: Database) {
    this.#db = db;
  }

  async start(): Promise<void> {
    if (this.#stop) return;
    this.#stop = await this.#db.listen(BROKER_CHANNEL, (payload) => this.#dispatch(payload));
  }

  async close(): Promise<void> {
    const stop = this.#stop;
    this.#stop = undefined;
    for (const set of this.#waiters.values()) for (const wake of set) wake();
    this.#waiters.clear();
    await stop?.();
  }

  /** Resolves at the next change of connection `id`, or after `ms` — whichever comes first. */
  waitForChange(id: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiters.get(id);
      if (!set) {
        set = new Set();
        this.#waiters.set(id, set);
      }
      const wake = () => {
        clearTimeout(timer);
        const s = this.#waiters.get(id);
        s?.delete(wake);
        if (s?.size === 0) this.#waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, ms));
      set.add(wake);
    });
  }

  /** Calls `fn` whenever some connection becomes due now; returns the unsubscribe. */
  onDue(fn: () => void): () => void {
    this.#dueListeners.add(fn);
    return () => this.#dueListeners.delete(fn);
  }

  #dispatch(payload: string): void {
    const at = payload.indexOf(":");
    const kind = payload.slice(0, at);
    const id = payload.slice(at + 1);
    if (kind === "changed") {
      const set = this.#waiters.get(id);
      if (set) for (const wake of [...set]) wake();
    } else if (kind === "due") {
      for (const fn of this.#dueListeners) fn();
    }
  }
}
