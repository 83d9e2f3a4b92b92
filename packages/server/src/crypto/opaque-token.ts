import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** Prefix of every Evergreen refresh token: secret scanners and humans recognise it. */
export const REFRESH_TOKEN_PREFIX = "egr_";
/** Prefix of generated client secrets. */
export const CLIENT_SECRET_PREFIX = "egs_";

/** 256 random bits, base64url, behind a recognisable prefix. */
export function newOpaqueToken(prefix: string): string {
  return prefix + randomBytes(32).toString("base64url");
}

/** What we store instead of a token or a generated secret: its SHA-256. */
export function sha256(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/** A short, non-reversible name for a token in audit events and logs. */
export function tokenId(hash: Buffer): string {
  return hash.subarray(0, 8).toString("hex");
}

export function looksLikeRefreshToken(value: string): boolean {
  return value.startsWith(REFRESH_TOKEN_PREFIX) && value.length === REFRESH_TOKEN_PREFIX.length + 43;
}

/** Constant-time equality for digests of equal length. */
export function digestsEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
