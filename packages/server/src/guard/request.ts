import type { Clock } from "@evergreen/db";
import { DPOP_ALGORITHMS, singleDpopHeader, verifyDpopProof } from "../dpop/proof.ts";
import type { DpopNonces } from "../dpop/nonce.ts";
import { type DpopReplayStore, MemoryDpopReplayStore } from "../dpop/replay-store.ts";
import { BearerTokenError, DpopProofError } from "../errors.ts";
import type { AccessTokenPayload, TokenVerifier } from "./verify.ts";

/** DPoP (RFC 9449) at a protected resource. */
export interface DpopOptions {
  /**
   * This resource server's public URL as clients address it (`https://api.example.com`), plus
   * the path prefix a proxy in front of it strips, if any. The request's path is appended to
   * it to check a proof's `htu`; the Host header is never trusted for that.
   */
  publicUrl: string;
  /** Where proof `jti`s are remembered; default one process's memory. Share one across processes (RedisDpopReplayStore). */
  replayStore?: DpopReplayStore;
  /** How far a proof's `iat` may be from now, seconds; default 60. */
  skewSeconds?: number;
  /** Accepted proof algorithms; default ES256, ES384, Ed25519/EdDSA, RS256, PS256. */
  algorithms?: readonly string[];
  /** Server nonces (`createDpopNonces`): offered on every response, checked when a proof carries one. */
  nonces?: DpopNonces;
  /** Refuse proofs without a current nonce (`use_dpop_nonce` with a `DPoP-Nonce` header). */
  requireNonce?: boolean;
  /** Refuse plain Bearer tokens: only DPoP-bound tokens are accepted. */
  required?: boolean;
  clock?: Clock;
}

/** What the guard needs of an HTTP request, whatever the framework. */
export interface ResourceRequest {
  method: string;
  /** The request target as received: path and query (`/api/items?x=1`). */
  url: string;
  authorization: string | undefined;
  /** Node's raw header list (name, value, name, value…), where repeated headers stay separate. */
  rawHeaders: readonly string[];
}

export interface AuthenticatedRequest {
  payload: AccessTokenPayload;
  /** How the token was presented, and so the scheme of any later challenge. */
  scheme: "Bearer" | "DPoP";
}

const CREDENTIALS = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)\s*$/i;

/**
 * Authenticates a request to a protected resource: `Authorization: Bearer <at>` (RFC 6750) or,
 * with `dpop` set, `Authorization: DPoP <at>` with a `DPoP` proof of the key the token is bound
 * to (RFC 9449 §7: signature, `ath`, `htm`/`htu` against this request, `iat` window, `jti`
 * replay, `cnf.jkt`, nonce). A DPoP-bound token presented as Bearer is refused (§7.2) whether
 * or not DPoP is enabled: holding such a token proves nothing without the key.
 */
export function createRequestAuthenticator(
  verify: TokenVerifier,
  dpop?: DpopOptions,
): (req: ResourceRequest) => Promise<AuthenticatedRequest> {
  const algs = dpop?.algorithms ?? DPOP_ALGORITHMS;
  const replay = dpop ? (dpop.replayStore ?? new MemoryDpopReplayStore()) : undefined;
  // No runtime import of @evergreen/db here: a resource server loads the guard alone.
  const clock = dpop?.clock ?? { now: () => new Date() };
  const base = dpop?.publicUrl.replace(/\/+$/, "");
  const dpopError = (error: BearerTokenError["error"], description: string, nonce = false) =>
    new BearerTokenError(error, description, undefined, {
      scheme: "DPoP",
      algs,
      headers: nonce && dpop?.nonces ? { "DPoP-Nonce": dpop.nonces.issue() } : {},
    });

  return async (req) => {
    const match = req.authorization ? CREDENTIALS.exec(req.authorization) : null;
    const scheme = match?.[1]?.toLowerCase() === "dpop" ? "DPoP" : "Bearer";
    if (!match || (scheme === "DPoP" && !dpop)) {
      if (req.authorization && /^Bearer\b/i.test(req.authorization))
        throw new BearerTokenError("invalid_request", "malformed Bearer credentials");
      if (dpop && req.authorization && /^DPoP\b/i.test(req.authorization))
        throw dpopError("invalid_request", "malformed DPoP credentials");
      throw new BearerTokenError(null, "an access token is required");
    }
    const token = match[2]!;

    if (scheme === "Bearer") {
      if (dpop?.required)
        throw dpopError("invalid_token", "this resource requires a DPoP-bound access token");
      const payload = await verify(token);
      if (payload.cnf?.jkt) {
        throw new BearerTokenError(
          "invalid_token",
          "a DPoP-bound access token must be presented with the DPoP scheme and a proof",
          undefined,
          dpop ? { scheme: "DPoP", algs } : {},
        );
      }
      return { payload, scheme };
    }

    const d = dpop!;
    let proof: string | undefined;
    try {
      proof = singleDpopHeader(req.rawHeaders);
    } catch (err) {
      if (err instanceof DpopProofError) throw dpopError("invalid_dpop_proof", err.description);
      throw err;
    }
    if (!proof) throw dpopError("invalid_dpop_proof", "a DPoP proof is required");
    let payload: AccessTokenPayload;
    try {
      payload = await verify(token);
    } catch (err) {
      if (err instanceof BearerTokenError) throw dpopError(err.error, err.description);
      throw err;
    }
    if (!payload.cnf?.jkt) throw dpopError("invalid_token", "the access token is not DPoP-bound");
    const path = req.url.split("?")[0]!.split("#")[0]!;
    try {
      const verified = await verifyDpopProof({
        proof,
        method: req.method,
        url: `${base}${path}`,
        accessToken: token,
        now: clock.now(),
        skewSeconds: d.skewSeconds,
        algorithms: algs,
        replay: replay!,
        nonces: d.nonces,
        requireNonce: d.requireNonce,
      });
      if (verified.jkt !== payload.cnf.jkt) {
        throw new DpopProofError(
          "invalid_dpop_proof",
          "the DPoP proof's key is not the one the token is bound to",
        );
      }
    } catch (err) {
      if (err instanceof DpopProofError)
        throw dpopError(err.error, err.description, err.error === "use_dpop_nonce");
      throw err;
    }
    return { payload, scheme };
  };
}
