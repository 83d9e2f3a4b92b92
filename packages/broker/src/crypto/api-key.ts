import { digestsEqual, newOpaqueToken, sha256 } from "@evergreen/server";

/** Prefix of every broker API key, so secret scanners and humans recognise one. */
export const API_KEY_PREFIX = "egk_";

/** A new key (256 random bits) and what is stored instead of it. */
export function newApiKey(): { key: string; hash: Buffer; prefix: string } {
  const key = newOpaqueToken(API_KEY_PREFIX);
  return { key, hash: sha256(key), prefix: key.slice(0, API_KEY_PREFIX.length + 6) };
}

/** Cheap shape check before any database work: anything else is simply not a key. */
export function looksLikeApiKey(value: string): boolean {
  return value.startsWith(API_KEY_PREFIX) && value.length === API_KEY_PREFIX.length + 43;
}

export function apiKeyHash(key: string): Buffer {
  return sha256(key);
}

/** Constant-time comparison of the stored hash and the presented key's hash. */
export function apiKeyMatches(stored: Buffer, presented: Buffer): boolean {
  return digestsEqual(stored, presented);
}
