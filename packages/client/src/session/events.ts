import type { SessionExpiredError } from "../errors.ts";

export interface SessionEvents {
  /**
   * New tokens: refreshed here (`source: "this"`) or by another tab/process (`"other"`, once per
   * token set, and only in a session that held the tokens it replaces).
   */
  refreshed: { expiresAt: number | undefined; source: "this" | "other" };
  /** The session is over (refresh token rejected); emitted once per session, in every tab. */
  expired: { error: SessionExpiredError };
  /** `logout()` ran here or in another tab. */
  logout: Record<string, never>;
  /**
   * A timer (background) refresh failed for a reason that retrying will not fix
   * (`invalid_client`, `invalid_request`, an `InvalidResponseError`, a refused `lockedStorage`):
   * the timer stops, tokens are kept, and requests still try to refresh when they need to.
   * (Transient failures are retried with back-off; `invalid_grant` emits `expired`.)
   */
  error: { error: unknown };
}

export type Listener<K extends keyof SessionEvents> = (event: SessionEvents[K]) => void;

export class Emitter {
  readonly #listeners = new Map<keyof SessionEvents, Set<(event: never) => void>>();

  on<K extends keyof SessionEvents>(name: K, listener: Listener<K>): () => void {
    const set = this.#listeners.get(name) ?? new Set();
    this.#listeners.set(name, set);
    set.add(listener);
    return () => set.delete(listener);
  }

  emit<K extends keyof SessionEvents>(name: K, event: SessionEvents[K]): void {
    for (const listener of this.#listeners.get(name) ?? []) {
      try {
        (listener as Listener<K>)(event);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
