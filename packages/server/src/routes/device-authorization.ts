import { isUniqueViolation } from "@evergreen/db";
import type { FastifyInstance } from "fastify";
import { authenticateClient } from "../client-auth.ts";
import { DEVICE_CODE_GRANT } from "../clients.ts";
import type { IssuerContext } from "../context.ts";
import { newOpaqueToken, sha256 } from "../crypto/opaque-token.ts";
import { newUserCode, normalizeUserCode } from "../device/user-code.ts";
import { OAuthError } from "../errors.ts";
import { formParams, param } from "../form-body.ts";
import { deviceQueries } from "../queries.ts";
import { grantScope, parseScope } from "../scope.ts";

/** How long the user has to enter the code (RFC 8628 §3.2 `expires_in`). */
export const DEVICE_CODE_TTL_SECONDS = 600;
/** Seconds between polls (RFC 8628 §3.2 `interval`); each `slow_down` adds 5. */
export const DEVICE_POLL_INTERVAL_SECONDS = 5;

/**
 * POST /device_authorization (RFC 8628 §3.1): a device that cannot show a browser (a TV, a CLI
 * on a server) gets a device code to poll with and a user code for the person to enter at
 * /device on another screen. Both are stored only as hashes.
 */
export async function deviceAuthorizationRoutes(app: FastifyInstance, opts: { ctx: IssuerContext }) {
  const { ctx } = opts;
  const rl = ctx.config.rateLimit;
  app.post("/device_authorization", async (req, reply) => {
    reply.header("Cache-Control", "no-store").header("Pragma", "no-cache");
    await ctx.limiter.consume(`ip:${req.ip}`, rl.perIp, rl.windowSeconds);
    const params = formParams(req);
    const client = await authenticateClient(req, params, ctx.clients);
    if (!client.grant_types.includes(DEVICE_CODE_GRANT)) {
      throw new OAuthError("unauthorized_client", "this client may not use the device authorization grant");
    }
    const scope = grantScope(parseScope(param(params, "scope")), client.scope);
    const now = ctx.clock.now();
    const deviceCode = newOpaqueToken("egd_");
    for (let attempt = 0; ; attempt++) {
      const userCode = newUserCode();
      try {
        await ctx.db.query(
          deviceQueries.insert({
            hash: sha256(deviceCode),
            user_code_hash: sha256(normalizeUserCode(userCode)!),
            client_id: client.client_id,
            scope,
            now,
            expires_at: new Date(now.getTime() + DEVICE_CODE_TTL_SECONDS * 1000),
            poll_interval: DEVICE_POLL_INTERVAL_SECONDS,
          }),
        );
        const verificationUri = `${ctx.config.issuer}/device`;
        return {
          device_code: deviceCode,
          user_code: userCode,
          verification_uri: verificationUri,
          verification_uri_complete: `${verificationUri}?user_code=${userCode}`,
          expires_in: DEVICE_CODE_TTL_SECONDS,
          interval: DEVICE_POLL_INTERVAL_SECONDS,
        };
      } catch (err) {
        // Two live authorizations drew the same user code: draw again.
        if (!isUniqueViolation(err) || attempt >= 3) throw err;
      }
    }
  });
}
