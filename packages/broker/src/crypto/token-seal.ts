import { type KeyRing, open, seal } from "@evergreen/server";

/**
 * Sealing of the broker's secrets at rest (AES-256-GCM with the key ring's current key; the
 * key id travels inside the sealed value). The owner id and field name are bound in as
 * associated data, so a sealed token copied to another row or column does not open.
 */
export type SealedField =
  | "access_token"
  | "refresh_token"
  | "last_response"
  | "client_secret"
  | "webhook_secret";

export function sealString(ring: KeyRing, owner: string, field: SealedField, value: string): Buffer {
  return seal(ring, Buffer.from(value, "utf8"), aad(owner, field));
}

export function openString(ring: KeyRing, owner: string, field: SealedField, sealed: Buffer): string {
  return open(ring, sealed, aad(owner, field)).toString("utf8");
}

/** The id of the key a value was sealed with (first byte is its length). */
export function sealedKeyId(sealed: Buffer): string {
  const len = sealed[0] ?? 0;
  return sealed.subarray(1, 1 + len).toString("utf8");
}

function aad(owner: string, field: SealedField): Buffer {
  return Buffer.from(`evergreen-broker:${field}:${owner}`, "utf8");
}
