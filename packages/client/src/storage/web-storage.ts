import type { TokenStorage } from "./token-storage.ts";

/**
 * `localStorage` (shared by tabs of one origin, survives restarts) or `sessionStorage` (one
 * tab). Anything script on the page can read them: prefer short access lifetimes and rotation.
 */
export function webStorage(storage: Storage = globalThis.localStorage): TokenStorage {
  return {
    get: (key) => storage.getItem(key),
    set: (key, value) => storage.setItem(key, value),
    remove: (key) => storage.removeItem(key),
  };
}
