import type { ErrorObject } from "ajv";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { IssuerContext } from "../context.ts";
import { AdminApiError } from "../errors.ts";
import { auditQueries, clientQueries } from "../queries.ts";
import {
  type ClientInput,
  createClient,
  deleteClient,
  getClient,
  listClients,
  updateClient,
} from "./client-store.ts";
import { adminRequestCheck } from "./admin-scope.ts";
import { PAGE } from "./paging.ts";
import {
  adminSchemaError,
  adminValidatorCompiler,
  createClientBody,
  createUserBody,
  updateClientBody,
  updateUserBody,
} from "./schemas.ts";
import {
  getSession,
  listAllSessions,
  listSessions,
  revokeAllSessions,
  revokeSession,
  revokeSessionById,
} from "./sessions.ts";
import { type UserInput, createUser, deleteUser, findUser, listUsers, updateUser } from "./user-store.ts";
import { isUuid } from "../uuid.ts";

type Params = { id: string; sid: string; client_id: string };

/** A non-negative integer query parameter within [min, max], or 400. */
function intParam(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = typeof value === "string" && /^\d{1,9}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new AdminApiError("invalid_request", `${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/** An optional query parameter given at most once, of at most `max` characters. */
function textParam(value: unknown, name: string, max = 200): string | null {
  if (value === undefined || value === "") return null;
  if (typeof value !== "string" || value.length > max || value.includes("\u0000")) {
    throw new AdminApiError("invalid_request", `${name} must be given once, at most ${max} characters`);
  }
  return value;
}

/** An optional query parameter that must be a UUID (a user or session id). */
function uuidParam(value: unknown, name: string): string | null {
  const v = textParam(value, name, 36);
  if (v !== null && !isUuid(v)) throw new AdminApiError("invalid_request", `${name} must be a UUID`);
  return v;
}

/** An optional event-id cursor (`before`). */
function cursorParam(value: unknown): string | null {
  const v = textParam(value, "before", 18);
  if (v !== null && !/^[1-9]\d{0,17}$/.test(v)) {
    throw new AdminApiError("invalid_request", "before must be an event id");
  }
  return v;
}

function paging(req: FastifyRequest): [number, number] {
  const q = req.query as { limit?: unknown; offset?: unknown };
  return [
    intParam(q.limit, "limit", PAGE.defaultLimit, 1, PAGE.maxLimit),
    intParam(q.offset, "offset", 0, 0, PAGE.maxOffset),
  ];
}

/**
 * Guards every route of the plugin `app` with the admin token (compared as SHA-256 digests in
 * constant time) or an admin's access token with the `evergreen:admin` scope, and marks its
 * responses `no-store`. The broker's admin routes use it too.
 */
export function requireAdminToken(app: FastifyInstance, ctx: IssuerContext, adminToken: string): void {
  // Wrong tokens are counted per address: guessing gets 429 long before it gets anywhere.
  app.addHook(
    "onRequest",
    adminRequestCheck(
      ctx,
      adminToken,
      () => new AdminApiError("unauthorized", "a valid admin token is required"),
    ),
  );
  app.addHook("onSend", async (_req, reply) => {
    reply.header("Cache-Control", "no-store");
  });
}

/**
 * The admin API under /admin, authorised by `Authorization: Bearer $EVERGREEN_ADMIN_TOKEN`.
 * Users, clients, a user's sessions, signing keys, the audit trail.
 */
export async function adminRoutes(app: FastifyInstance, opts: { ctx: IssuerContext; adminToken: string }) {
  const { ctx } = opts;
  const { db, clock } = ctx;
  requireAdminToken(app, ctx, opts.adminToken);
  // Bodies are checked by their JSON Schemas (schemas.ts), failures answered as AdminApiError.
  app.setValidatorCompiler(adminValidatorCompiler);
  app.setSchemaErrorFormatter((errors) => adminSchemaError(errors as ErrorObject[]));

  app.post("/admin/users", { schema: { body: createUserBody } }, async (req, reply) =>
    reply.code(201).send(await createUser(db, clock, req.body as UserInput)),
  );
  app.get("/admin/users", async (req) =>
    listUsers(db, ...paging(req), textParam((req.query as { q?: unknown }).q, "q")),
  );
  app.get<{ Params: Params }>("/admin/users/:id", async (req) => findUser(db, req.params.id));
  app.patch<{ Params: Params }>("/admin/users/:id", { schema: { body: updateUserBody } }, async (req) =>
    updateUser(db, clock, req.params.id, req.body as UserInput),
  );
  app.delete<{ Params: Params }>("/admin/users/:id", async (req, reply) => {
    await deleteUser(db, req.params.id);
    return reply.code(204).send();
  });
  app.get<{ Params: Params }>("/admin/users/:id/sessions", async (req) => {
    const user = await findUser(db, req.params.id);
    return listSessions(db, clock, user.id);
  });
  app.delete<{ Params: Params }>("/admin/users/:id/sessions", async (req) => {
    const user = await findUser(db, req.params.id);
    return { revoked: await revokeAllSessions(db, clock, user.id) };
  });
  app.delete<{ Params: Params }>("/admin/users/:id/sessions/:sid", async (req, reply) => {
    const user = await findUser(db, req.params.id);
    await revokeSession(db, clock, user.id, req.params.sid);
    return reply.code(204).send();
  });

  app.get("/admin/sessions", async (req) => {
    const q = req.query as Record<string, unknown>;
    const state = textParam(q.state, "state");
    if (state !== null && state !== "active" && state !== "ended") {
      throw new AdminApiError("invalid_request", "state must be active or ended");
    }
    const filter = {
      user_id: uuidParam(q.user_id, "user_id"),
      client_id: textParam(q.client_id, "client_id"),
      state,
    };
    return listAllSessions(db, clock, filter, ...paging(req));
  });
  app.get<{ Params: Params }>("/admin/sessions/:sid", async (req) => {
    const q = req.query as { before?: unknown; limit?: unknown };
    return getSession(db, clock, req.params.sid, {
      before: cursorParam(q.before),
      limit: intParam(q.limit, "limit", PAGE.defaultLimit, 1, PAGE.maxLimit),
    });
  });
  app.delete<{ Params: Params }>("/admin/sessions/:sid", async (req, reply) => {
    await revokeSessionById(db, clock, req.params.sid);
    return reply.code(204).send();
  });

  // The counters behind /metrics as JSON, for the dashboard's charts (it computes rates).
  app.get("/admin/metrics", async () => ({
    at: clock.now(),
    metrics: (await ctx.metrics.registry.getMetricsAsJSON()).filter((m) => m.name.startsWith("evergreen_")),
  }));

  app.post("/admin/clients", { schema: { body: createClientBody } }, async (req, reply) => {
    const created = await createClient(db, clock, req.body as ClientInput);
    // The registry also caches "no such client": forget it, so the new client works at once.
    ctx.clients.invalidate(created.client_id);
    return reply.code(201).send(created);
  });
  app.get("/admin/clients", async (req) =>
    listClients(db, ...paging(req), textParam((req.query as { q?: unknown }).q, "q")),
  );
  app.get<{ Params: Params }>("/admin/clients/:client_id", async (req) =>
    getClient(db, req.params.client_id),
  );
  app.patch<{ Params: Params }>(
    "/admin/clients/:client_id",
    { schema: { body: updateClientBody } },
    async (req) => {
      const updated = await updateClient(db, clock, req.params.client_id, req.body as ClientInput);
      ctx.clients.invalidate(req.params.client_id);
      return updated;
    },
  );
  app.delete<{ Params: Params }>("/admin/clients/:client_id", async (req, reply) => {
    await deleteClient(db, req.params.client_id);
    ctx.clients.invalidate(req.params.client_id);
    return reply.code(204).send();
  });

  app.get("/admin/keys", async () =>
    ctx.keys.jwks().keys.map((k) => ({ kid: k.kid, alg: k.alg, current: k.kid === ctx.keys.current().kid })),
  );
  app.post("/admin/keys/rotate", async (_req, reply) => {
    const key = await ctx.keys.rotate(await maxAccessTtl(ctx));
    return reply.code(201).send({ kid: key.kid, alg: key.alg });
  });

  app.get("/admin/audit", async (req) => {
    const q = req.query as Record<string, unknown>;
    if (q.type !== undefined && (typeof q.type !== "string" || !/^[a-z_]{1,64}$/.test(q.type))) {
      throw new AdminApiError("invalid_request", "type must be an audit event type");
    }
    if (q.user_id !== undefined && (typeof q.user_id !== "string" || !isUuid(q.user_id))) {
      throw new AdminApiError("invalid_request", "user_id must be a user id");
    }
    const { rows } = await db.query(
      auditQueries.list({
        type: (q.type as string | undefined) ?? null,
        user_id: (q.user_id as string | undefined) ?? null,
        client_id: textParam(q.client_id, "client_id"),
        family_id: uuidParam(q.family_id, "family_id"),
        before: cursorParam(q.before),
        limit: intParam(q.limit, "limit", PAGE.defaultLimit, 1, PAGE.maxLimit),
      }),
    );
    return rows;
  });
}

/** Rotation overlap: the longest access-token lifetime of any client, plus a minute of slack. */
export async function maxAccessTtl(ctx: Pick<IssuerContext, "db">): Promise<number> {
  const { rows } = await ctx.db.query<{ ttl: number | null }>(clientQueries.maxAccessTtl());
  return (rows[0]?.ttl ?? 600) + 60;
}
