import type { TokenStorage } from "../storage/token-storage.ts";

/**
 * Where a session's DPoP key pair (ES256) comes from. The same pair must sign every proof for
 * as long as the tokens bound to it live: a refresh token bound to a lost key is dead.
 */
export interface DpopKeys {
  keyPair(): Promise<CryptoKeyPair>;
}

const ES256 = { name: "ECDSA", namedCurve: "P-256" } as const;

/** A fresh ES256 pair whose private key cannot be exported (WebCrypto enforces it). */
export function generateDpopKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(ES256, false, ["sign", "verify"]) as Promise<CryptoKeyPair>;
}

/** Caches the first pair a provider hands out; a failed load is tried again next time. */
function cached(load: () => Promise<CryptoKeyPair>): DpopKeys {
  let pair: Promise<CryptoKeyPair> | undefined;
  return {
    keyPair() {
      pair ??= load().catch((error) => {
        pair = undefined;
        throw error;
      });
      return pair;
    },
  };
}

/** A non-extractable key pair in memory: tokens bound to it die with this page or process. */
export function memoryDpopKeys(): DpopKeys {
  return cached(generateDpopKeyPair);
}

function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * A non-extractable key pair kept in IndexedDB (browsers, service workers): CryptoKey objects
 * are stored as they are, so the private key never exists outside WebCrypto, yet survives
 * reloads and is shared by the tabs of the origin. Two tabs creating the key at once agree on
 * one (the first stored wins, inside one IndexedDB transaction).
 */
export function indexedDBDpopKeys(
  options: { database?: string; store?: string; name?: string } = {},
): DpopKeys {
  const storeName = options.store ?? "keys";
  const name = options.name ?? "dpop";
  return cached(async () => {
    const fresh = await generateDpopKeyPair(); // before the transaction, which may not wait for it
    const request = indexedDB.open(options.database ?? "evergreen-dpop", 1);
    request.onupgradeneeded = () => request.result.createObjectStore(storeName);
    const db = await done(request);
    try {
      const store = db.transaction(storeName, "readwrite").objectStore(storeName);
      const existing = await new Promise<CryptoKeyPair | undefined>((resolve, reject) => {
        const get = store.get(name);
        get.onerror = () => reject(get.error);
        get.onsuccess = () => {
          const pair = get.result as CryptoKeyPair | undefined;
          if (pair?.privateKey) return resolve(pair);
          const put = store.put(fresh, name); // in the same transaction: no other tab in between
          put.onerror = () => reject(put.error);
          put.onsuccess = () => resolve(undefined);
        };
      });
      return existing ?? fresh;
    } finally {
      db.close();
    }
  });
}

interface StoredPair {
  privateJwk: JsonWebKey;
}

/**
 * A key pair kept in a TokenStorage as a JWK, for runtimes that cannot persist a
 * non-extractable CryptoKey (Node, React Native): the private key is exported once when
 * created, and imported non-extractable whenever it is loaded. Its protection is the storage's:
 * with `fileStorage` that is an AES-256-GCM encrypted file of mode 0600. The key is created by
 * the first request that needs it — a login, in one process — and only read afterwards. (Not
 * under the storage's lock: a refresh holds that lock while it signs its proof.)
 */
export function storageDpopKeys(storage: TokenStorage, key: string): DpopKeys {
  const importPair = async ({ privateJwk }: StoredPair): Promise<CryptoKeyPair> => {
    const { d: _d, key_ops: _ops, ext: _ext, ...publicJwk } = privateJwk;
    return {
      privateKey: await crypto.subtle.importKey("jwk", privateJwk, ES256, false, ["sign"]),
      publicKey: await crypto.subtle.importKey("jwk", publicJwk, ES256, true, ["verify"]),
    };
  };
  const load = async () => {
    const stored = await storage.get(key);
    if (stored) return importPair(JSON.parse(stored) as StoredPair);
    const pair = (await crypto.subtle.generateKey(ES256, true, ["sign", "verify"])) as CryptoKeyPair;
    const record: StoredPair = { privateJwk: await crypto.subtle.exportKey("jwk", pair.privateKey) };
    await storage.set(key, JSON.stringify(record));
    return importPair(record);
  };
  return cached(load);
}
