import type { FastifyInstance } from "fastify";
import type { IssuerContext } from "../context.ts";

/** GET /jwks: the public keys resource servers verify access tokens with. */
export async function jwksRoutes(app: FastifyInstance, opts: { ctx: IssuerContext }): Promise<void> {
  app.get("/jwks", async (_req, reply) => {
    // Short caching: after a rotation, verifiers see the new key within a minute.
    reply.header("Cache-Control", "public, max-age=60").type("application/jwk-set+json");
    return opts.ctx.keys.jwks();
  });
}
