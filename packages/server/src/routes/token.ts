import { unavailableReason } from "@evergreen/db";
import type { FastifyInstance } from "fastify";
import { authenticateClient } from "../client-auth.ts";
import type { IssuerContext } from "../context.ts";
import { hasDpopHeader, tokenRequestProof } from "../dpop/token-endpoint.ts";
import { OAuthError } from "../errors.ts";
import { formParams, param } from "../form-body.ts";
import { authorizationCodeGrant } from "../grants/authorization-code.ts";
import { clientCredentialsGrant } from "../grants/client-credentials.ts";
import { deviceCodeGrant } from "../grants/device-code.ts";
import { passwordGrant } from "../grants/password.ts";
import { refreshTokenGrant } from "../grants/refresh-token.ts";
import { rateLimitHeaders } from "../rate-limit/limiter.ts";

const GRANTS = {
  password: passwordGrant,
  refresh_token: refreshTokenGrant,
  client_credentials: clientCredentialsGrant,
  authorization_code: authorizationCodeGrant,
  "urn:ietf:params:oauth:grant-type:device_code": deviceCodeGrant,
} as const;

/** POST /token (RFC 6749 §3.2). */
export async function tokenRoutes(app: FastifyInstance, opts: { ctx: IssuerContext }): Promise<void> {
  const { ctx } = opts;
  const rl = ctx.config.rateLimit;
  app.post("/token", async (req, reply) => {
    const started = performance.now();
    let grantType = "unknown";
    reply.header("Cache-Control", "no-store").header("Pragma", "no-cache");
    // A client using DPoP gets a fresh nonce on every answer, error or not (RFC 9449 §8.2).
    if (hasDpopHeader(req.raw.rawHeaders)) reply.header("DPoP-Nonce", ctx.dpop.nonces.issue());
    try {
      const ipLimit = await ctx.limiter.consume(`ip:${req.ip}`, rl.perIp, rl.windowSeconds);
      const params = formParams(req);
      const requestedGrant = param(params, "grant_type");
      if (!requestedGrant) throw new OAuthError("invalid_request", 'missing required parameter "grant_type"');
      const grant = GRANTS[requestedGrant as keyof typeof GRANTS];
      if (!Object.hasOwn(GRANTS, requestedGrant) || !grant) {
        throw new OAuthError("unsupported_grant_type", "this grant type is not supported");
      }
      grantType = requestedGrant;
      const client = await authenticateClient(req, params, ctx.clients);
      // A public client's id is no secret: a budget shared by all its users would let anyone
      // exhaust it. Confidential clients are limited as a whole (only once authenticated);
      // public clients per client and IP.
      const clientKey =
        client.token_endpoint_auth_method === "none"
          ? `client:${client.client_id}:${req.ip}`
          : `client:${client.client_id}`;
      const clientLimit = await ctx.limiter.consume(clientKey, rl.perClient, rl.windowSeconds);
      const tighter = [ipLimit, clientLimit]
        .filter((d) => d !== undefined)
        .sort((a, b) => a.remaining - b.remaining)[0];
      if (tighter) reply.headers(rateLimitHeaders(tighter, false));
      const dpop = await tokenRequestProof(ctx, req.raw.rawHeaders, client);
      const body = await grant(ctx, client, params, req.ip, dpop);
      ctx.metrics.tokenRequests.inc({ grant_type: grantType, status: 200 });
      return body;
    } catch (err) {
      const status = err instanceof OAuthError ? err.status : unavailableReason(err) ? 503 : 500;
      ctx.metrics.tokenRequests.inc({ grant_type: grantType, status });
      throw err;
    } finally {
      ctx.metrics.tokenDuration.observe({ grant_type: grantType }, (performance.now() - started) / 1000);
    }
  });
}
