import type { FastifyInstance } from "fastify";
import { pushAuthorizationRequest } from "../authorize/pushed-request.ts";
import { authenticateClient } from "../client-auth.ts";
import type { IssuerContext } from "../context.ts";
import { formParams } from "../form-body.ts";

/** POST /par: pushed authorization requests (RFC 9126). */
export async function parRoutes(app: FastifyInstance, opts: { ctx: IssuerContext }): Promise<void> {
  const { ctx } = opts;
  app.post("/par", { config: { endpointBudget: "par" } }, async (req, reply) => {
    reply.header("Cache-Control", "no-store");
    const params = formParams(req);
    const client = await authenticateClient(req, params, ctx.clients);
    return reply.code(201).send(await pushAuthorizationRequest(ctx, client, params));
  });
}
