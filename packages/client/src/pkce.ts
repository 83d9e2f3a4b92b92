/** base64url without padding (RFC 7636 Appendix A). */
function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** 256 random bits, base64url: a PKCE verifier, a `state` or a `nonce`. */
export function randomToken(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** A PKCE pair: keep the verifier, send the S256 challenge (RFC 7636 §4.1-4.2). */
export async function createPkce(): Promise<{ verifier: string; challenge: string; method: "S256" }> {
  const verifier = randomToken();
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: base64url(new Uint8Array(digest)), method: "S256" };
}
