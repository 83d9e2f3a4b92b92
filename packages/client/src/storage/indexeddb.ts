import type { TokenStorage } from "./token-storage.ts";

function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** IndexedDB (available to service workers too, unlike localStorage): one object store of strings. */
export function indexedDBStorage(options: { database?: string; store?: string } = {}): TokenStorage {
  const storeName = options.store ?? "tokens";
  let db: Promise<IDBDatabase> | undefined;
  const open = () => {
    db ??= new Promise((resolve, reject) => {
      const request = indexedDB.open(options.database ?? "evergreen", 1);
      request.onupgradeneeded = () => request.result.createObjectStore(storeName);
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    return db;
  };
  const store = async (mode: IDBTransactionMode) =>
    (await open()).transaction(storeName, mode).objectStore(storeName);
  return {
    shared: true,
    async get(key) {
      const value = await done((await store("readonly")).get(key));
      return typeof value === "string" ? value : null;
    },
    async set(key, value) {
      await done((await store("readwrite")).put(value, key));
    },
    async remove(key) {
      await done((await store("readwrite")).delete(key));
    },
  };
}
