import { sign } from "node:crypto";
import type { SigningKey } from "../keys/signing-keys.ts";

/** RFC 9068 claims, in a fixed order so the same inputs give the same bytes. */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  scope?: string;
  sid?: string;
  /** DPoP binding (RFC 9449 §6.1): the thumbprint of the key the token is bound to. */
  cnf?: { jkt: string };
}

const headerCache = new WeakMap<SigningKey, string>();

function b64(json: unknown): string {
  return Buffer.from(JSON.stringify(json)).toString("base64url");
}

/**
 * Signs an RFC 9068 access token (`typ: at+jwt`) with node:crypto and a cached KeyObject.
 * Ed25519 signatures are deterministic: the same claims and key always give the same token,
 * which is what lets a grace-window retry receive byte-for-byte the token first issued.
 */
export function signAccessToken(claims: AccessTokenClaims, key: SigningKey): string {
  let header = headerCache.get(key);
  if (!header) {
    header = b64({ alg: key.alg, typ: "at+jwt", kid: key.kid });
    headerCache.set(key, header);
  }
  const ordered: AccessTokenClaims = {
    iss: claims.iss,
    sub: claims.sub,
    aud: claims.aud,
    exp: claims.exp,
    iat: claims.iat,
    jti: claims.jti,
    client_id: claims.client_id,
    ...(claims.scope ? { scope: claims.scope } : {}),
    ...(claims.sid ? { sid: claims.sid } : {}),
    ...(claims.cnf ? { cnf: { jkt: claims.cnf.jkt } } : {}),
  };
  const input = `${header}.${b64(ordered)}`;
  const signature =
    key.alg === "EdDSA"
      ? sign(null, Buffer.from(input), key.privateKey)
      : sign("sha256", Buffer.from(input), { key: key.privateKey, dsaEncoding: "ieee-p1363" });
  return `${input}.${signature.toString("base64url")}`;
}
