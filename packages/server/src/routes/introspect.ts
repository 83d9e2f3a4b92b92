import type { FastifyInstance } from "fastify";
import { authenticateClient } from "../client-auth.ts";
import type { IssuerContext } from "../context.ts";
import { looksLikeRefreshToken, sha256 } from "../crypto/opaque-token.ts";
import { OAuthError } from "../errors.ts";
import { formParams, requiredParam } from "../form-body.ts";
import { sessionQueries, tokenQueries, userQueries } from "../queries.ts";
import { numericDate } from "../tokens/numeric-date.ts";

interface RefreshRow {
  family_id: string;
  client_id: string;
  user_id: string;
  scope: string;
  created_at: Date;
  expires_at: Date;
  consumed_at: Date | null;
  revoked_at: Date | null;
  absolute_expires_at: Date;
  credentials_current: boolean;
}

/**
 * POST /introspect (RFC 7662), for confidential clients (resource servers). Access tokens of
 * any client can be introspected; refresh tokens only by the client they were issued to.
 * An access token whose session was revoked is reported inactive.
 */
export async function introspectRoutes(app: FastifyInstance, opts: { ctx: IssuerContext }): Promise<void> {
  const { ctx } = opts;
  app.post("/introspect", { config: { endpointBudget: "introspect" } }, async (req, reply) => {
    reply.header("Cache-Control", "no-store");
    const params = formParams(req);
    const token = requiredParam(params, "token");
    const client = await authenticateClient(req, params, ctx.clients);
    if (client.token_endpoint_auth_method === "none") {
      throw new OAuthError("invalid_client", "introspection requires a confidential client");
    }
    const now = ctx.clock.now();
    const inactive = { active: false };

    if (looksLikeRefreshToken(token)) {
      const { rows } = await ctx.db.query<RefreshRow>(tokenQueries.inspect({ hash: sha256(token) }));
      const t = rows[0];
      if (!t || t.client_id !== client.client_id || t.consumed_at || t.revoked_at) return inactive;
      if (!t.credentials_current) return inactive;
      if (t.expires_at <= now || t.absolute_expires_at <= now) return inactive;
      const user = await ctx.db.query<{ username: string }>(userQueries.byId({ id: t.user_id }));
      return {
        active: true,
        token_type: "refresh_token",
        scope: t.scope,
        client_id: t.client_id,
        sub: t.user_id,
        username: user.rows[0]?.username,
        iss: ctx.config.issuer,
        iat: numericDate(t.created_at),
        exp: Math.min(numericDate(t.expires_at), numericDate(t.absolute_expires_at)),
        sid: t.family_id,
      };
    }

    const payload = await ctx.verifyAccessToken(token).catch(() => undefined);
    if (!payload) return inactive;
    if (payload.sid) {
      const { rows } = await ctx.db.query<{ revoked_at: Date | null }>(
        sessionQueries.familyState({ sid: payload.sid }),
      );
      if (!rows[0] || rows[0].revoked_at) return inactive;
    }
    // A DPoP-bound token says so, and its `cnf` names the key (RFC 9449 §6.2).
    return { active: true, token_type: payload.cnf?.jkt ? "DPoP" : "Bearer", ...payload };
  });
}
