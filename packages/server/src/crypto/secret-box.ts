import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";

/**
 * AES-256-GCM sealing for data at rest (signing keys, broker tokens). Each sealed value
 * carries the id of the key that sealed it, so keys can be rotated: the first key of the
 * ring seals, every key opens.
 *
 * Layout: 1-byte key-id length | key id | 12-byte IV | 16-byte tag | ciphertext.
 */
export interface KeyRing {
  current: { id: string; key: Buffer };
  all: Map<string, Buffer>;
  /** True when the ring is the built-in development key. */
  insecureDefault: boolean;
}

const DEV_KEY_SEED = "evergreen-development-key-do-not-use-in-production";

/**
 * Parses EVERGREEN_ENCRYPTION_KEY: `id:base64key[,id:base64key…]` or a single base64 key
 * (32 bytes). Unset gives the development key, which callers must warn about.
 */
export function parseKeyRing(spec: string | undefined): KeyRing {
  if (!spec) {
    const key = createHash("sha256").update(DEV_KEY_SEED).digest();
    return { current: { id: "dev", key }, all: new Map([["dev", key]]), insecureDefault: true };
  }
  const entries = spec.split(",").map((part, i) => {
    const idx = part.indexOf(":");
    const id = idx > 0 ? part.slice(0, idx).trim() : `k${i}`;
    const key = Buffer.from(idx > 0 ? part.slice(idx + 1).trim() : part.trim(), "base64");
    if (key.length !== 32)
      throw new Error(`EVERGREEN_ENCRYPTION_KEY entry ${i + 1} must be 32 bytes of base64`);
    return { id, key };
  });
  const first = entries[0]!;
  return { current: first, all: new Map(entries.map((e) => [e.id, e.key])), insecureDefault: false };
}

export function seal(ring: KeyRing, plaintext: Buffer, aad?: Buffer): Buffer {
  return sealWithKey(ring.current.id, ring.current.key, plaintext, aad);
}

export function open(ring: KeyRing, sealed: Buffer, aad?: Buffer): Buffer {
  const idLen = sealed[0] ?? 0;
  const id = sealed.subarray(1, 1 + idLen).toString("utf8");
  const key = ring.all.get(id);
  if (!key) throw new Error(`sealed with unknown key id "${id}"`);
  return openWithKey(key, sealed, aad);
}

/** Seals under an explicit key (used where the key is derived, not configured). */
export function sealWithKey(id: string, key: Buffer, plaintext: Buffer, aad?: Buffer): Buffer {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  if (aad) cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const idBuf = Buffer.from(id, "utf8");
  return Buffer.concat([Buffer.from([idBuf.length]), idBuf, iv, cipher.getAuthTag(), body]);
}

export function openWithKey(key: Buffer, sealed: Buffer, aad?: Buffer): Buffer {
  const idLen = sealed[0] ?? 0;
  const ivAt = 1 + idLen;
  const iv = sealed.subarray(ivAt, ivAt + 12);
  const tag = sealed.subarray(ivAt + 12, ivAt + 28);
  const decipher = createDecipheriv("aes-256-gcm", key, iv);
  if (aad) decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(sealed.subarray(ivAt + 28)), decipher.final()]);
}
