import { sha256Base64url, toBase64url } from "../base64url.ts";
import { randomToken } from "../pkce.ts";

export interface ProofClaims {
  /** The request's method. */
  htm: string;
  /** The request's URL; its query and fragment are left out (RFC 9449 §4.2). */
  htu: string;
  /** Seconds since the epoch (the server's clock, when known). */
  iat: number;
  /** The server's latest `DPoP-Nonce`. */
  nonce?: string | undefined;
  /** The access token the request carries: its hash goes in `ath`. */
  accessToken?: string | undefined;
}

const encodeJson = (value: unknown) => toBase64url(new TextEncoder().encode(JSON.stringify(value)));

/** The public JWK of a pair: only the members that identify the key (RFC 7638 order). */
export async function publicJwk(
  pair: CryptoKeyPair,
): Promise<{ crv: string; kty: string; x: string; y: string }> {
  const { crv, kty, x, y } = await crypto.subtle.exportKey("jwk", pair.publicKey);
  return { crv: crv as string, kty: kty as string, x: x as string, y: y as string };
}

/** The JWK SHA-256 thumbprint of a pair (RFC 7638): the `jkt` a server binds tokens to. */
export async function jwkThumbprint(pair: CryptoKeyPair): Promise<string> {
  return sha256Base64url(JSON.stringify(await publicJwk(pair)));
}

/** The method as fetch sends it: the six standard names uppercased, any other as given. */
function normalizedMethod(method: string): string {
  const upper = method.toUpperCase();
  return ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"].includes(upper) ? upper : method;
}

/** A DPoP proof JWT (RFC 9449 §4.2), ES256-signed by the pair's private key. */
export async function createDpopProof(pair: CryptoKeyPair, claims: ProofClaims): Promise<string> {
  const url = new URL(claims.htu);
  const header = encodeJson({ typ: "dpop+jwt", alg: "ES256", jwk: await publicJwk(pair) });
  const payload = encodeJson({
    htm: normalizedMethod(claims.htm),
    htu: `${url.protocol}//${url.host}${url.pathname}`,
    iat: claims.iat,
    jti: randomToken(),
    nonce: claims.nonce,
    ath: claims.accessToken === undefined ? undefined : await sha256Base64url(claims.accessToken),
  });
  // WebCrypto's ECDSA signature is r || s, exactly the JWS encoding (RFC 7518 §3.4).
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    pair.privateKey,
    new TextEncoder().encode(`${header}.${payload}`),
  );
  return `${header}.${payload}.${toBase64url(new Uint8Array(signature))}`;
}
