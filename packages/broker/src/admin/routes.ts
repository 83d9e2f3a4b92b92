import { AdminApiError, type IssuerContext, requireAdminToken } from "@evergreen/server";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { createApiKey, deleteApiKey, getApiKey, listApiKeys } from "../api-keys/store.ts";
import {
  createConnection,
  deleteConnection,
  getConnection,
  listConnections,
  reauthConnection,
} from "../connections/store.ts";
import type { BrokerContext } from "../context.ts";
import { listEvents } from "../events.ts";
import {
  createProvider,
  deleteProvider,
  getProvider,
  listProviders,
  updateProvider,
} from "../providers/store.ts";
import { PROVIDER_TEMPLATES } from "../providers/templates.ts";
import { refreshNow } from "../refresh/on-demand.ts";
import { rotateBrokerKeys } from "../rotate-keys.ts";
import { connectionQueries, type ConnectionRow } from "../queries.ts";
import { createWebhook, deleteWebhook, getWebhook, listDeliveries, listWebhooks } from "../webhooks/store.ts";

type Params = { name: string; id: string };

function body(req: FastifyRequest): Record<string, unknown> {
  if (typeof req.body !== "object" || req.body === null || Array.isArray(req.body)) {
    throw new AdminApiError("invalid_request", "the body must be a JSON object");
  }
  return req.body as Record<string, unknown>;
}

function limitParam(value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === "string" && /^\d{1,4}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > 1000)
    throw new AdminApiError("invalid_request", "limit must be 1 to 1000");
  return n;
}

function optionalText(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new AdminApiError("invalid_request", `${name} must be given once`);
  return value;
}

/**
 * The broker's admin API under /admin (same admin token as the issuer's): providers,
 * connections and their audit trail, consumer API keys, webhooks and their delivery logs.
 */
export async function brokerAdminRoutes(
  app: FastifyInstance,
  opts: { ctx: BrokerContext; issuer: IssuerContext; adminToken: string },
) {
  const { ctx } = opts;
  const { db, clock, ring } = ctx;
  requireAdminToken(app, opts.issuer, opts.adminToken);

  app.get("/admin/provider-templates", async () =>
    Object.entries(PROVIDER_TEMPLATES).map(([name, t]) => ({ name, ...t })),
  );
  app.post("/admin/providers", async (req, reply) =>
    reply.code(201).send(await createProvider(db, ring, clock, body(req))),
  );
  app.get("/admin/providers", async () => listProviders(db));
  app.get<{ Params: Params }>("/admin/providers/:name", async (req) => getProvider(db, req.params.name));
  app.patch<{ Params: Params }>("/admin/providers/:name", async (req) =>
    updateProvider(db, ring, clock, req.params.name, body(req)),
  );
  app.delete<{ Params: Params }>("/admin/providers/:name", async (req, reply) => {
    await deleteProvider(db, req.params.name);
    return reply.code(204).send();
  });

  app.post("/admin/connections", async (req, reply) =>
    reply.code(201).send(await createConnection(ctx, body(req))),
  );
  app.get("/admin/connections", async (req) => {
    const q = req.query as Record<string, unknown>;
    return listConnections(db, {
      provider: optionalText(q.provider, "provider"),
      status: optionalText(q.status, "status"),
      cursor: optionalText(q.cursor, "cursor"),
      limit: limitParam(q.limit, 100),
    });
  });
  app.get<{ Params: Params }>("/admin/connections/:id", async (req) => getConnection(db, req.params.id));
  app.delete<{ Params: Params }>("/admin/connections/:id", async (req, reply) => {
    await deleteConnection(db, req.params.id);
    return reply.code(204).send();
  });
  app.post<{ Params: Params }>("/admin/connections/:id/reauth", async (req) =>
    reauthConnection(ctx, req.params.id, body(req)),
  );
  app.post<{ Params: Params }>("/admin/connections/:id/refresh", async (req) => {
    const current = await getConnection(db, req.params.id);
    if (current.status === "needs_reauth" || current.status === "error") {
      throw new AdminApiError("conflict", `the connection is ${current.status}; re-authorise it first`);
    }
    const { rows } = await db.query<ConnectionRow>(connectionQueries.byId({ id: current.id }));
    const outcome = await refreshNow(
      ctx,
      current.id,
      ctx.config.consumerWaitMs,
      rows[0]?.lease_expires_at ?? null,
    );
    const after = await getConnection(db, current.id);
    return { ...after, outcome: outcome.claimed ? outcome.result.outcome : "refreshed_elsewhere" };
  });
  app.get<{ Params: Params }>("/admin/connections/:id/events", async (req) => {
    const connection = await getConnection(db, req.params.id);
    return listEvents(db, connection.id, limitParam((req.query as { limit?: unknown }).limit, 100));
  });

  app.post("/admin/api-keys", async (req, reply) =>
    reply.code(201).send(await createApiKey(db, clock, body(req))),
  );
  app.get("/admin/api-keys", async () => listApiKeys(db));
  app.get<{ Params: Params }>("/admin/api-keys/:id", async (req) => getApiKey(db, req.params.id));
  app.delete<{ Params: Params }>("/admin/api-keys/:id", async (req, reply) => {
    await deleteApiKey(db, req.params.id);
    return reply.code(204).send();
  });

  app.post("/admin/broker/keys/rotate", async () => ({
    key_id: ring.current.id,
    ...(await rotateBrokerKeys(db, ring)),
  }));

  app.post("/admin/webhooks", async (req, reply) =>
    reply.code(201).send(await createWebhook(db, ring, clock, body(req))),
  );
  app.get("/admin/webhooks", async () => listWebhooks(db));
  app.get<{ Params: Params }>("/admin/webhooks/:id", async (req) => getWebhook(db, req.params.id));
  app.delete<{ Params: Params }>("/admin/webhooks/:id", async (req, reply) => {
    await deleteWebhook(db, req.params.id);
    return reply.code(204).send();
  });
  app.get<{ Params: Params }>("/admin/webhooks/:id/deliveries", async (req) =>
    listDeliveries(db, req.params.id, limitParam((req.query as { limit?: unknown }).limit, 100)),
  );
}
