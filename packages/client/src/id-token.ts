import { fromBase64url } from "./base64url.ts";
import { InvalidResponseError } from "./errors.ts";
import { type FetchLike, send } from "./token-response.ts";

export interface IdTokenExpectations {
  issuer: string;
  clientId: string;
  /** The `nonce` sent in the authorization request. */
  nonce?: string | undefined;
  /** The `max_age` sent (seconds): `auth_time` must then be present and no older. */
  maxAge?: number | undefined;
  jwksUri: string;
  /** Seconds of clock skew tolerated on `exp` and `iat`. Default 60. */
  clockTolerance?: number | undefined;
  now?: (() => number) | undefined;
  fetch?: FetchLike | undefined;
}

/** The claims of a validated ID token. */
export type IdTokenClaims = Record<string, unknown> & { iss: string; sub: string; aud: string | string[] };

const decoder = new TextDecoder();

function json(part: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(decoder.decode(fromBase64url(part)));
    if (value && typeof value === "object" && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {}
  throw new InvalidResponseError("the id_token is not a well-formed JWT");
}

// The algorithms Evergreen signs with (EdDSA, ES256), and RS256, which most other issuers use
// by default, as WebCrypto names them.
const ED25519 = { importAs: { name: "Ed25519" }, verifyAs: { name: "Ed25519" } };
const ALGORITHMS: Record<
  string,
  { importAs: Algorithm | EcKeyImportParams | RsaHashedImportParams; verifyAs: Algorithm | EcdsaParams }
> = {
  EdDSA: ED25519,
  Ed25519: ED25519,
  ES256: {
    importAs: { name: "ECDSA", namedCurve: "P-256" } as EcKeyImportParams,
    verifyAs: { name: "ECDSA", hash: "SHA-256" } as EcdsaParams,
  },
  RS256: {
    importAs: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as RsaHashedImportParams,
    verifyAs: { name: "RSASSA-PKCS1-v1_5" },
  },
};

/**
 * Validates an OpenID Connect ID token with WebCrypto (OIDC Core §3.1.3.7): signature by a key
 * of the issuer's JWKS (EdDSA, ES256 or RS256), `iss`, `aud` (and `azp`), `exp`, `nonce`, and
 * `auth_time` when `maxAge` was asked for.
 * Throws InvalidResponseError on any mismatch.
 */
export async function validateIdToken(
  idToken: string,
  expected: IdTokenExpectations,
): Promise<IdTokenClaims> {
  const parts = idToken.split(".");
  if (parts.length !== 3) throw new InvalidResponseError("the id_token is not a JWS");
  const header = json(parts[0]!);
  const claims = json(parts[1]!);
  const alg = header["alg"];
  if (typeof alg !== "string" || !Object.hasOwn(ALGORITHMS, alg))
    throw new InvalidResponseError("the id_token's algorithm is not accepted");
  const response = await send(expected.fetch ?? fetch, expected.jwksUri, {
    headers: { accept: "application/json" },
  });
  if (!response.ok) throw new InvalidResponseError(`the JWKS answered ${response.status}`);
  const jwks = (await response.json()) as { keys?: Record<string, unknown>[] };
  const jwk = jwks.keys?.find(
    (k) => k["kid"] === header["kid"] && (k["alg"] === undefined || k["alg"] === alg),
  );
  if (!jwk) throw new InvalidResponseError("the id_token was signed by an unknown key");
  const { importAs, verifyAs } = ALGORITHMS[alg]!;
  const { alg: _alg, use: _use, key_ops: _ops, ...publicJwk } = jwk;
  const key = await crypto.subtle.importKey("jwk", publicJwk as JsonWebKey, importAs, false, ["verify"]);
  const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
  if (!(await crypto.subtle.verify(verifyAs, key, fromBase64url(parts[2]!), signed))) {
    throw new InvalidResponseError("the id_token's signature is invalid");
  }
  const now = (expected.now ?? Date.now)() / 1000;
  const tolerance = expected.clockTolerance ?? 60;
  const aud = claims["aud"];
  if (claims["iss"] !== expected.issuer) throw new InvalidResponseError("the id_token's iss does not match");
  if (!(aud === expected.clientId || (Array.isArray(aud) && aud.includes(expected.clientId))))
    throw new InvalidResponseError("the id_token's aud does not match");
  if (Array.isArray(aud) && aud.length > 1 && claims["azp"] !== expected.clientId)
    throw new InvalidResponseError("the id_token's azp does not match");
  if (typeof claims["exp"] !== "number" || claims["exp"] + tolerance <= now)
    throw new InvalidResponseError("the id_token has expired");
  if (typeof claims["sub"] !== "string") throw new InvalidResponseError("the id_token has no sub");
  if (expected.nonce !== undefined && claims["nonce"] !== expected.nonce)
    throw new InvalidResponseError("the id_token's nonce does not match");
  if (expected.maxAge !== undefined) {
    const authTime = claims["auth_time"];
    if (typeof authTime !== "number") throw new InvalidResponseError("the id_token has no auth_time");
    if (authTime + expected.maxAge + tolerance < now)
      throw new InvalidResponseError("the id_token's auth_time is older than max_age");
  }
  return claims as IdTokenClaims;
}
