import type { FastifyInstance } from "fastify";
import { authenticateClient } from "../client-auth.ts";
import type { IssuerContext } from "../context.ts";
import { looksLikeRefreshToken, sha256, tokenId } from "../crypto/opaque-token.ts";
import { formParams, param, requiredParam } from "../form-body.ts";
import { tokenQueries } from "../queries.ts";

/**
 * POST /revoke (RFC 7009). Revoking a refresh token ends its whole family (the session).
 * Revoking an access token ends the session it belongs to (its `sid`); the access token itself
 * stays valid until its short expiry, as JWTs are verified without a database. Unknown
 * tokens and tokens of other clients get 200 and change nothing (§2.2).
 */
export async function revokeRoutes(app: FastifyInstance, opts: { ctx: IssuerContext }): Promise<void> {
  const { ctx } = opts;
  app.post("/revoke", { config: { endpointBudget: "revoke" } }, async (req, reply) => {
    reply.header("Cache-Control", "no-store");
    const params = formParams(req);
    const token = requiredParam(params, "token");
    // The hint is only a hint (RFC 7009 §2.1): the token's own form tells us what it is.
    param(params, "token_type_hint");
    const client = await authenticateClient(req, params, ctx.clients);
    const now = ctx.clock.now();

    let familyId: string | undefined;
    let tid: string | null = null;
    if (looksLikeRefreshToken(token)) {
      const hash = sha256(token);
      const { rows } = await ctx.db.query<{ family_id: string; client_id: string }>(
        tokenQueries.inspect({ hash }),
      );
      if (rows[0]?.client_id === client.client_id) familyId = rows[0].family_id;
      tid = tokenId(hash);
    } else {
      const payload = await ctx.verifyAccessToken(token).catch(() => undefined);
      if (payload?.client_id === client.client_id && payload.sid) familyId = payload.sid;
    }
    if (familyId) {
      await ctx.db.query(
        tokenQueries.revokeFamily({
          family_id: familyId,
          now,
          reason: "revoked_by_client",
          type: "token_revoked",
          token_id: tid,
          ip: req.ip,
          detail: JSON.stringify({ via: "revocation_endpoint" }),
        }),
      );
    }
    return reply.code(200).send();
  });
}
