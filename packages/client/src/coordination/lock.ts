/** Mutual exclusion between everything that shares one token store (tabs, processes). */
export interface Lock {
  /** Runs `fn` while holding the lock called `name`; other holders wait. */
  run<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/** A lock that serialises callers inside this JavaScript realm only. */
export function processLock(): Lock {
  const tails = new Map<string, Promise<unknown>>();
  return {
    async run(name, fn) {
      const previous = tails.get(name) ?? Promise.resolve();
      const result = previous.catch(() => undefined).then(fn);
      const tail = result.catch(() => undefined);
      tails.set(name, tail);
      void tail.then(() => tails.get(name) === tail && tails.delete(name));
      return result;
    },
  };
}

const realmLocks = new WeakMap<object, Lock>();

/** The in-realm lock of everything that uses this very storage object. */
export function storageLock(storage: object): Lock {
  const lock = realmLocks.get(storage) ?? processLock();
  realmLocks.set(storage, lock);
  return lock;
}
