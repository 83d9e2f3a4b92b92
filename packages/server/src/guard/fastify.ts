import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from "fastify";
import { DPOP_ALGORITHMS } from "../dpop/proof.ts";
import { BearerTokenError } from "../errors.ts";
import { type DpopOptions, createRequestAuthenticator } from "./request.ts";
import {
  type AccessTokenPayload,
  type AccessTokenVerifier,
  type TokenVerifier,
  hasScopes,
} from "./verify.ts";

declare module "fastify" {
  interface FastifyRequest {
    accessToken?: AccessTokenPayload;
  }
}

/** Sends an RFC 6750 (or RFC 9449 §7.1) error: status, WWW-Authenticate challenge, JSON body. */
export function sendBearerError(reply: FastifyReply, err: BearerTokenError, realm: string): FastifyReply {
  return reply
    .code(err.status)
    .headers(err.headers)
    .header("WWW-Authenticate", err.challenge(realm))
    .header("Cache-Control", "no-store")
    .send(err.toJSON());
}

export interface GuardOptions {
  scopes?: string[];
  realm?: string;
  /** Accept DPoP-bound access tokens (RFC 9449); see DpopOptions. Bearer tokens still work unless `dpop.required`. */
  dpop?: DpopOptions;
}

/**
 * A Fastify preHandler that requires a valid access token (and optional scopes) and puts its
 * claims on `request.accessToken`. Use it on any route of a resource server. It takes the
 * token from `Authorization: Bearer` (RFC 6750 §2.1), or with `dpop` from `Authorization:
 * DPoP` with its `DPoP` proof (RFC 9449 §7), and hands it to the verifier.
 */
export function requireAccessToken(
  verifier: TokenVerifier | AccessTokenVerifier,
  options: GuardOptions = {},
): preHandlerAsyncHookHandler {
  const realm = options.realm ?? "evergreen";
  const verify = "verifyToken" in verifier ? verifier.verifyToken : verifier;
  const authenticate = createRequestAuthenticator(verify, options.dpop);
  const nonces = options.dpop?.nonces;
  return async function guard(request: FastifyRequest, reply: FastifyReply) {
    // A fresh nonce on every answer saves a client the use_dpop_nonce round trip next time.
    if (nonces) reply.header("DPoP-Nonce", nonces.issue());
    try {
      const { payload, scheme } = await authenticate({
        method: request.method,
        url: request.url,
        authorization: request.headers.authorization,
        rawHeaders: request.raw.rawHeaders,
      });
      if (options.scopes && !hasScopes(payload, options.scopes)) {
        throw new BearerTokenError(
          "insufficient_scope",
          "the access token lacks a required scope",
          options.scopes.join(" "),
          scheme === "DPoP" ? { scheme, algs: options.dpop?.algorithms ?? DPOP_ALGORITHMS } : {},
        );
      }
      request.accessToken = payload;
    } catch (err) {
      if (err instanceof BearerTokenError) return sendBearerError(reply, err, realm);
      throw err;
    }
  };
}
