import type { FastifyInstance } from "fastify";
import type { IssuerContext } from "../context.ts";
import { registerCors } from "../cors.ts";
import { deviceAuthorizationRoutes } from "./device-authorization.ts";
import { discoveryRoutes } from "./discovery.ts";
import { introspectRoutes } from "./introspect.ts";
import { jwksRoutes } from "./jwks.ts";
import { parRoutes } from "./par.ts";
import { revokeRoutes } from "./revoke.ts";
import { tokenRoutes } from "./token.ts";
import { userinfoRoutes } from "./userinfo.ts";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Name of the per-address budget (EVERGREEN_RATE_LIMIT_ENDPOINT_PER_IP) this route spends. */
    endpointBudget?: string;
  }
}

/**
 * The OAuth endpoints (metadata, JWKS, token, revocation, introspection, userinfo, device
 * authorization) as one
 * encapsulated plugin. Its hooks apply to these routes and no others: CORS (browser apps on
 * other origins call them) and the per-address budget a route names in `config.endpointBudget`,
 * spent after the body is parsed and before the handler or a route's own guard runs. The token
 * endpoint's limits (per address, per client, per username) depend on the request, so
 * routes/token.ts applies them itself.
 */
export async function oauthEndpoints(app: FastifyInstance, opts: { ctx: IssuerContext }): Promise<void> {
  const { ctx } = opts;
  const rl = ctx.config.rateLimit;
  registerCors(app, ctx.config.corsOrigins);
  app.addHook("preHandler", async (req) => {
    const budget = req.routeOptions.config.endpointBudget;
    if (budget) await ctx.limiter.consume(`${budget}:${req.ip}`, rl.endpointPerIp, rl.windowSeconds);
  });
  await app.register(discoveryRoutes, { ctx });
  await app.register(jwksRoutes, { ctx });
  await app.register(tokenRoutes, { ctx });
  await app.register(revokeRoutes, { ctx });
  await app.register(introspectRoutes, { ctx });
  await app.register(userinfoRoutes, { ctx });
  await app.register(deviceAuthorizationRoutes, { ctx });
  await app.register(parRoutes, { ctx });
}
