import { sha256Base64url, toBase64url } from "./base64url.ts";

/** 256 random bits, base64url: a PKCE verifier, a `state` or a `nonce`. */
export function randomToken(): string {
  return toBase64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** A PKCE pair: keep the verifier, send the S256 challenge (RFC 7636 §4.1-4.2). */
export async function createPkce(): Promise<{ verifier: string; challenge: string; method: "S256" }> {
  const verifier = randomToken();
  return { verifier, challenge: await sha256Base64url(verifier), method: "S256" };
}
