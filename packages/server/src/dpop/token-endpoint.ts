import type { Client } from "../clients.ts";
import type { IssuerContext } from "../context.ts";
import { DpopProofError, OAuthError } from "../errors.ts";
import { singleDpopHeader, verifyDpopProof } from "./proof.ts";

/** What a valid DPoP proof at the token endpoint binds the issued tokens to. */
export interface DpopBinding {
  /** JWK SHA-256 thumbprint (RFC 7638) of the proof's key. */
  jkt: string;
}

/**
 * Checks the DPoP proof of a token request (RFC 9449 §5): none is fine unless the client is
 * registered with `dpop_bound_access_tokens`; a present one must pass every check of §4.3
 * against this issuer's public token endpoint URL, or the request fails with
 * `invalid_dpop_proof` (or `use_dpop_nonce`, carrying a fresh `DPoP-Nonce`).
 */
export async function tokenRequestProof(
  ctx: IssuerContext,
  rawHeaders: readonly string[],
  client: Client,
): Promise<DpopBinding | undefined> {
  try {
    const proof = singleDpopHeader(rawHeaders);
    if (!proof) {
      if (client.dpop_bound_access_tokens) {
        throw new OAuthError("invalid_dpop_proof", "this client must send a DPoP proof");
      }
      return undefined;
    }
    const verified = await verifyDpopProof({
      proof,
      method: "POST",
      url: `${ctx.config.issuer}/token`,
      now: ctx.clock.now(),
      skewSeconds: ctx.config.dpop.windowSeconds,
      replay: ctx.dpop.replay,
      nonces: ctx.dpop.nonces,
      requireNonce: ctx.config.dpop.requireNonce,
    });
    return { jkt: verified.jkt };
  } catch (err) {
    if (!(err instanceof DpopProofError)) throw err;
    const headers: Record<string, string> =
      err.error === "use_dpop_nonce" ? { "DPoP-Nonce": ctx.dpop.nonces.issue() } : {};
    throw new OAuthError(err.error, err.description, headers);
  }
}

/** True when the request carries any DPoP header (the response then offers a fresh nonce). */
export function hasDpopHeader(rawHeaders: readonly string[]): boolean {
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === "dpop") return true;
  return false;
}
