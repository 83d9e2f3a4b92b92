import { StorageLockedError } from "../errors.ts";
import type { TokenStorage } from "./token-storage.ts";

export interface LockedStorage extends TokenStorage {
  /** Locks again: the next read asks `unlock()` first. */
  relock(): void;
  readonly locked: boolean;
}

/**
 * Wraps a store so nothing can be read from it until `unlock()` (a biometric prompt, a keychain
 * access, a passphrase) resolves `true` — the shape a keychain-backed store needs. Concurrent
 * reads share one prompt; a refusal throws StorageLockedError and the store stays locked.
 * Writes and removals do not need unlocking (a refresh may store its result).
 */
export function lockedStorage(
  inner: TokenStorage,
  options: { unlock: () => Promise<boolean> | boolean },
): LockedStorage {
  let locked = true;
  let pending: Promise<void> | undefined;
  const ensureUnlocked = () => {
    if (!locked) return;
    pending ??= Promise.resolve()
      .then(options.unlock)
      .then((granted) => {
        if (!granted) throw new StorageLockedError();
        locked = false;
      })
      .finally(() => {
        pending = undefined;
      });
    return pending;
  };
  return {
    async get(key) {
      await ensureUnlocked();
      return inner.get(key);
    },
    set: (key, value) => inner.set(key, value),
    remove: (key) => inner.remove(key),
    relock: () => {
      locked = true;
    },
    get locked() {
      return locked;
    },
    lock: inner.lock,
    shared: inner.shared,
  };
}
