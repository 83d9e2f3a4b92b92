import type { Lock } from "../coordination/lock.ts";

/**
 * Where a session keeps its tokens: string values under string keys, sync or async (the shape
 * of localStorage and React Native's AsyncStorage, so those wrap in a line).
 */
export interface TokenStorage {
  get(key: string): Promise<string | null> | string | null;
  set(key: string, value: string): Promise<void> | void;
  remove(key: string): Promise<void> | void;
  /**
   * A lock shared by everyone using this same store, when the store is shared beyond a
   * browser's tabs (the Node file store has a file lock). Sessions use it around refreshes.
   */
  lock?: Lock | undefined;
  /**
   * `true` when other tabs and workers of this origin see the same values (localStorage,
   * IndexedDB): sessions then refresh under a Web Lock and tell each other about refreshes,
   * logouts and expiry over a BroadcastChannel. Leave it unset for a store private to this
   * realm (memory, sessionStorage, AsyncStorage); a store shared between processes brings its
   * own `lock` instead (the file store).
   */
  shared?: boolean | undefined;
}

/** Tokens in this JavaScript realm only; the default. */
export function memoryStorage(): TokenStorage {
  const values = new Map<string, string>();
  return {
    get: (key) => values.get(key) ?? null,
    set: (key, value) => void values.set(key, value),
    remove: (key) => void values.delete(key),
  };
}
