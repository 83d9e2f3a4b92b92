import { BearerTokenError } from "@evergreen/server";
import type { FastifyInstance } from "fastify";
import type { BrokerContext } from "../context.ts";
import { authenticateApiKey, readToken } from "./token.ts";

/** `GET /v1/connections/:id/token?min_validity=60` for backend services, with a broker API key. */
export async function consumerRoutes(app: FastifyInstance, opts: { ctx: BrokerContext }) {
  const { ctx } = opts;
  app.addHook("onSend", async (_req, reply) => {
    reply.header("Cache-Control", "no-store");
    reply.header("Pragma", "no-cache");
  });
  app.get<{ Params: { id: string }; Querystring: { min_validity?: unknown } }>(
    "/v1/connections/:id/token",
    async (req, reply) => {
      const key = await authenticateApiKey(ctx, req.headers.authorization);
      const raw = req.query.min_validity;
      let minValidity = 60;
      if (raw !== undefined) {
        if (typeof raw !== "string" || !/^\d{1,6}$/.test(raw) || Number(raw) > 86_400) {
          throw new BearerTokenError("invalid_request", "min_validity must be whole seconds from 0 to 86400");
        }
        minValidity = Number(raw);
      }
      const answer = await readToken(ctx, key, req.params.id, minValidity);
      switch (answer.kind) {
        case "token":
          return reply.code(200).send(answer.body);
        case "reauth":
          return reply.code(409).send(answer.body);
        case "unavailable":
          return reply.code(503).header("Retry-After", String(answer.retryAfter)).send(answer.body);
        case "not_found":
          return reply.code(404).send({ error: "not_found", error_description: "no such connection" });
      }
    },
  );
}
