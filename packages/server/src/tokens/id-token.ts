import { createHash } from "node:crypto";
import { SignJWT } from "jose";
import type { IssuerContext } from "../context.ts";
import type { SigningKey } from "../keys/signing-keys.ts";

export interface IdTokenFacts {
  sub: string;
  clientId: string;
  /** The login session at the issuer (OpenID Connect `sid`), not the refresh-token family. */
  sid?: string;
  nonce?: string;
  authTime: Date;
  accessToken: string;
  /** Claims released by scope (`preferred_username`, `email`). */
  claims?: Record<string, string>;
}

/** How long an ID token is valid: it only proves the login to the app, right now. */
export const ID_TOKEN_TTL_SECONDS = 600;

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/**
 * `at_hash` (OpenID Connect Core §3.1.3.6): the left half of the access token's hash, with the
 * hash of the signing algorithm — SHA-256 for ES256, SHA-512 for EdDSA over Ed25519.
 */
export function accessTokenHash(accessToken: string, alg: SigningKey["alg"]): string {
  const digest = createHash(alg === "EdDSA" ? "sha512" : "sha256")
    .update(accessToken)
    .digest();
  return digest.subarray(0, digest.length / 2).toString("base64url");
}

/** The user claims an ID token releases for a granted scope (`profile`, `email`). */
export function releasedClaims(
  scope: string,
  user: { username: string | null; email: string | null } | undefined,
): Record<string, string> {
  const scopes = scope.split(" ");
  const claims: Record<string, string> = {};
  if (scopes.includes("profile") && user?.username) claims.preferred_username = user.username;
  if (scopes.includes("email") && user?.email) claims.email = user.email;
  return claims;
}

/** Signs an OpenID Connect ID token with the issuer's current signing key. */
export async function signIdToken(ctx: IssuerContext, facts: IdTokenFacts): Promise<string> {
  const key = ctx.keys.current();
  const now = ctx.clock.now();
  return new SignJWT({
    ...facts.claims,
    auth_time: seconds(facts.authTime),
    ...(facts.nonce ? { nonce: facts.nonce } : {}),
    at_hash: accessTokenHash(facts.accessToken, key.alg),
    ...(facts.sid ? { sid: facts.sid } : {}),
    azp: facts.clientId,
  })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
    .setIssuer(ctx.config.issuer)
    .setSubject(facts.sub)
    .setAudience(facts.clientId)
    .setIssuedAt(seconds(now))
    .setExpirationTime(seconds(now) + ID_TOKEN_TTL_SECONDS)
    .sign(key.privateKey);
}
