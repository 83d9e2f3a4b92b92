/**
 * The guard: verification of Evergreen access tokens for resource servers.
 *
 *   const verify = createAccessTokenVerifier({ issuer, audience, jwksUri: `${issuer}/jwks` });
 *   app.get("/api", { preHandler: requireAccessToken(verify) }, handler);
 *
 * DPoP-bound tokens (RFC 9449) are accepted with `requireAccessToken(verify, { dpop: { publicUrl } })`.
 */
export {
  type AccessTokenPayload,
  type AccessTokenVerifier,
  type TokenVerifier,
  type VerifierOptions,
  bearerToken,
  createAccessTokenVerifier,
  createTokenVerifier,
  hasScopes,
} from "./verify.ts";
export { type GuardOptions, requireAccessToken, sendBearerError } from "./fastify.ts";
export {
  type AuthenticatedRequest,
  type DpopOptions,
  type ResourceRequest,
  createRequestAuthenticator,
} from "./request.ts";
export { DPOP_ALGORITHMS, accessTokenHashForDpop } from "../dpop/proof.ts";
export { DpopNonces, DPOP_NONCE_PERIOD_SECONDS } from "../dpop/nonce.ts";
// The Redis-backed store is exported by "@evergreen/server" (it loads ioredis).
export { type DpopReplayStore, MemoryDpopReplayStore } from "../dpop/replay-store.ts";
export { BearerTokenError, type ChallengeOptions } from "../errors.ts";
