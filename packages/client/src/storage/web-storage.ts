import type { TokenStorage } from "./token-storage.ts";

/**
 * `localStorage` (shared by tabs of one origin, survives restarts) or `sessionStorage` (one
 * tab). Anything script on the page can read them: prefer short access lifetimes and rotation.
 * Sessions on `localStorage` coordinate across tabs; pass `shared` for another Storage object.
 */
export function webStorage(
  storage: Storage = globalThis.localStorage,
  options: { shared?: boolean } = {},
): TokenStorage {
  let shared = options.shared;
  if (shared === undefined) {
    try {
      shared = storage === globalThis.localStorage;
    } catch {
      shared = false; // localStorage itself is off limits here (a sandboxed frame)
    }
  }
  return {
    shared,
    get: (key) => storage.getItem(key),
    set: (key, value) => storage.setItem(key, value),
    remove: (key) => storage.removeItem(key),
  };
}
