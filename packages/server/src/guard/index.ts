/**
 * The guard: verification of Evergreen access tokens for resource servers.
 *
 *   const verify = createAccessTokenVerifier({ issuer, audience, jwksUri: `${issuer}/jwks` });
 *   app.get("/api", { preHandler: requireAccessToken(verify) }, handler);
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
export { requireAccessToken, sendBearerError } from "./fastify.ts";
export { BearerTokenError } from "../errors.ts";
