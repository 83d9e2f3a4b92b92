import type { FastifyInstance } from "fastify";
import type { IssuerContext } from "../context.ts";
import { BearerTokenError } from "../errors.ts";
import { requireAccessToken, sendBearerError } from "../guard/fastify.ts";
import { userQueries } from "../queries.ts";
import { isUuid } from "../uuid.ts";

/**
 * GET /userinfo: a protected resource, guarded exactly as any resource server would guard it.
 * The token must carry `openid` (OIDC Core §5.3.1): others get 403 insufficient_scope.
 * Requests count against a per-address budget before the token is even looked at. DPoP-bound
 * tokens come as `Authorization: DPoP` with a proof for this URL (RFC 9449 §7); as Bearer they
 * are refused.
 */
export async function userinfoRoutes(app: FastifyInstance, opts: { ctx: IssuerContext }): Promise<void> {
  const { ctx } = opts;
  const guard = requireAccessToken(ctx.verifyAccessToken, {
    scopes: ["openid"],
    dpop: {
      publicUrl: ctx.config.issuer,
      replayStore: ctx.dpop.replay,
      nonces: ctx.dpop.nonces,
      requireNonce: ctx.config.dpop.requireNonce,
      skewSeconds: ctx.config.dpop.windowSeconds,
      clock: ctx.clock,
    },
  });
  app.get("/userinfo", { config: { endpointBudget: "userinfo" }, preHandler: guard }, async (req, reply) => {
    const sub = req.accessToken!.sub;
    // A client_credentials token speaks for a client (sub = client_id), never for a user.
    const isUserToken = sub !== req.accessToken!.client_id && isUuid(sub);
    const { rows } = await ctx.db.query<{ id: string; username: string; email: string | null }>(
      userQueries.byId({ id: isUserToken ? sub : "00000000-0000-0000-0000-000000000000" }),
    );
    const user = rows[0];
    if (!user)
      return sendBearerError(
        reply,
        new BearerTokenError("invalid_token", "the token's subject is not a user"),
        "evergreen",
      );
    reply.header("Cache-Control", "no-store");
    return { sub: user.id, preferred_username: user.username, email: user.email ?? undefined };
  });
}
