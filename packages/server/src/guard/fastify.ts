import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from "fastify";
import { BearerTokenError } from "../errors.ts";
import {
  type AccessTokenPayload,
  type AccessTokenVerifier,
  type TokenVerifier,
  bearerToken,
  hasScopes,
} from "./verify.ts";

declare module "fastify" {
  interface FastifyRequest {
    accessToken?: AccessTokenPayload;
  }
}

/** Sends an RFC 6750 error: status, WWW-Authenticate challenge, JSON body. */
export function sendBearerError(reply: FastifyReply, err: BearerTokenError, realm: string): FastifyReply {
  return reply
    .code(err.status)
    .header("WWW-Authenticate", err.challenge(realm))
    .header("Cache-Control", "no-store")
    .send(err.toJSON());
}

/**
 * A Fastify preHandler that requires a valid access token (and optional scopes) and puts its
 * claims on `request.accessToken`. Use it on any route of a resource server. It takes the
 * token from `Authorization: Bearer` (RFC 6750 §2.1) and hands it to the verifier.
 */
export function requireAccessToken(
  verifier: TokenVerifier | AccessTokenVerifier,
  options: { scopes?: string[]; realm?: string } = {},
): preHandlerAsyncHookHandler {
  const realm = options.realm ?? "evergreen";
  const verify = "verifyToken" in verifier ? verifier.verifyToken : verifier;
  return async function guard(request: FastifyRequest, reply: FastifyReply) {
    try {
      const payload = await verify(bearerToken(request.headers.authorization));
      if (options.scopes && !hasScopes(payload, options.scopes)) {
        throw new BearerTokenError(
          "insufficient_scope",
          "the access token lacks a required scope",
          options.scopes.join(" "),
        );
      }
      request.accessToken = payload;
    } catch (err) {
      if (err instanceof BearerTokenError) return sendBearerError(reply, err, realm);
      throw err;
    }
  };
}
