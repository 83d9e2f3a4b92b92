import type { Clock } from "@evergreen/db";
import { type JWTPayload, type JWTVerifyGetKey, createRemoteJWKSet, errors, jwtVerify } from "jose";
import { BearerTokenError } from "../errors.ts";

/** The claims of a verified Evergreen access token (RFC 9068). */
export interface AccessTokenPayload extends JWTPayload {
  sub: string;
  client_id: string;
  scope?: string;
  sid?: string;
  /** The key a DPoP-bound token is bound to (RFC 9449 §6): its JWK SHA-256 thumbprint. */
  cnf?: { jkt?: string };
}

export interface VerifierOptions {
  issuer: string;
  audience: string | string[];
  /** Where keys come from: a JWKS URL (resource servers) or a resolver (the issuer itself). */
  jwksUri?: string | URL;
  getKey?: JWTVerifyGetKey;
  clock?: Clock;
  /** Seconds of clock skew tolerated on exp/iat; default 0. */
  clockTolerance?: number;
}

/** Verifies one access token (the bare JWT, not a header). */
export type TokenVerifier = (token: string) => Promise<AccessTokenPayload>;

/**
 * A verifier as createAccessTokenVerifier returns it: called with an `Authorization` header
 * (the form earlier versions offered), and carrying the token verifier it wraps.
 */
export interface AccessTokenVerifier {
  (authorization: string | undefined): Promise<AccessTokenPayload>;
  verifyToken: TokenVerifier;
}

/**
 * Builds a verifier of access tokens. It accepts only JWTs typed `at+jwt`, signed EdDSA or
 * ES256 by a published key, from this issuer, for this audience, not expired. Anything else —
 * a refresh token, `alg: none`, an HMAC signature made with a public key, an unknown `kid` —
 * throws a BearerTokenError (RFC 6750).
 */
export function createTokenVerifier(options: VerifierOptions): TokenVerifier {
  const getKey =
    options.getKey ?? (options.jwksUri ? createRemoteJWKSet(new URL(options.jwksUri)) : undefined);
  if (!getKey) throw new Error("a token verifier needs jwksUri or getKey");
  return async (token) => {
    if (token.startsWith("egr_"))
      throw new BearerTokenError("invalid_token", "a refresh token is not an access token");
    try {
      const { payload } = await jwtVerify(token, getKey, {
        issuer: options.issuer,
        audience: options.audience,
        algorithms: ["EdDSA", "ES256"],
        typ: "at+jwt",
        requiredClaims: ["exp", "iat", "sub", "jti", "client_id"],
        currentDate: options.clock?.now(),
        clockTolerance: options.clockTolerance ?? 0,
      });
      return payload as AccessTokenPayload;
    } catch (err) {
      if (err instanceof errors.JWTExpired)
        throw new BearerTokenError("invalid_token", "the access token expired");
      throw new BearerTokenError("invalid_token", "the access token is invalid");
    }
  };
}

/**
 * The token verifier (createTokenVerifier) behind `Authorization: Bearer` extraction: call it
 * with the header, or hand it to requireAccessToken, which extracts the header itself.
 */
export function createAccessTokenVerifier(options: VerifierOptions): AccessTokenVerifier {
  const verifyToken = createTokenVerifier(options);
  return Object.assign(
    async (authorization: string | undefined) => {
      const payload = await verifyToken(bearerToken(authorization));
      // A DPoP-bound token is worthless without its proof, which a header alone cannot carry.
      if (payload.cnf?.jkt) {
        throw new BearerTokenError(
          "invalid_token",
          "a DPoP-bound access token must be presented with a proof",
        );
      }
      return payload;
    },
    { verifyToken },
  );
}

/** Extracts the token of `Authorization: Bearer <token>` (RFC 6750 §2.1). */
export function bearerToken(authorization: string | undefined): string {
  if (!authorization) throw new BearerTokenError(null, "an access token is required");
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(authorization);
  if (!match) {
    if (/^Bearer\b/i.test(authorization))
      throw new BearerTokenError("invalid_request", "malformed Bearer credentials");
    throw new BearerTokenError(null, "an access token is required");
  }
  return match[1]!;
}

/** True when the token's scope includes every required scope. */
export function hasScopes(payload: AccessTokenPayload, required: readonly string[]): boolean {
  const granted = new Set((payload.scope ?? "").split(" "));
  return required.every((s) => granted.has(s));
}
