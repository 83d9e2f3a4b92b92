import { randomUUID } from "node:crypto";
import type { Clock, Database } from "@evergreen/db";
import { isUuid } from "@evergreen/server";
import { type AccessTokenVerifier, requireAccessToken, type TokenVerifier } from "@evergreen/server/guard";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import * as q from "./queries.ts";

/** The scope a token needs for the todo API. */
export const TODO_SCOPE = "todo";

export interface TodoApiOptions {
  db: Database;
  clock: Clock;
  /** Verifies access tokens: the issuer's JWKS, issuer and audience. */
  verifier: TokenVerifier | AccessTokenVerifier;
}

const name = { type: "string", minLength: 1, maxLength: 200, pattern: "\\S" };
const text = { type: "string", minLength: 1, maxLength: 1000, pattern: "\\S" };
const listBody = { type: "object", required: ["name"], additionalProperties: false, properties: { name } };
const newItemBody = { type: "object", required: ["text"], additionalProperties: false, properties: { text } };
const itemPatch = {
  type: "object",
  minProperties: 1,
  additionalProperties: false,
  properties: { text, done: { type: "boolean" } },
};

type ListParams = { Params: { listId: string } };
type ItemParams = { Params: { listId: string; itemId: string } };

/** A JSON error the web app can show; the same shape as the issuer's (RFC 6749 §5.2). */
function fail(reply: FastifyReply, status: number, error: string, description: string) {
  return reply.code(status).send({ error, error_description: description });
}

const notFound = (reply: FastifyReply, what: string) => fail(reply, 404, "not_found", `no such ${what}`);

/** The signed-in user: the verified token's subject. */
const owner = (req: FastifyRequest) => req.accessToken!.sub;

/**
 * Lists and their items, per user, under `/api`. Every route sits behind the guard: no token,
 * an expired one, a refresh token or a token without the `todo` scope gets RFC 6750's 401/403.
 * Another user's list answers 404, exactly like a list that does not exist.
 */
export async function todoApi(app: FastifyInstance, options: TodoApiOptions): Promise<void> {
  const { db, clock } = options;
  // onRequest, not preHandler: a request without a valid token is refused before its body is
  // even parsed, so it learns nothing from validation errors.
  const guard = requireAccessToken(options.verifier, { scopes: [TODO_SCOPE], realm: "todo" });
  app.addHook("onRequest", (req, reply) => guard.call(app, req, reply));
  app.addHook("onSend", async (_req, reply) => {
    reply.header("Cache-Control", "no-store");
  });
  app.setErrorHandler((err: { statusCode?: number; validation?: unknown; message?: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (err.validation || (status >= 400 && status < 500)) {
      // Fastify's own 4xx (a body too large, an unsupported media type) keep their status.
      return fail(reply, err.validation ? 400 : status, "invalid_request", err.message ?? "bad request");
    }
    req.log.error({ err: { message: err.message } }, "todo api failed");
    return fail(reply, 500, "server_error", "the todo API failed; try again");
  });

  app.get("/lists", async (req) => {
    const { rows } = await db.query<q.ListRow>(q.listLists({ owner: owner(req), limit: q.MAX_ROWS }));
    return { lists: rows };
  });

  app.post("/lists", { schema: { body: listBody } }, async (req, reply) => {
    const { name } = req.body as { name: string };
    const { rows } = await db.query<q.ListRow>(
      q.insertList({ id: randomUUID(), owner: owner(req), name: name.trim(), now: clock.now() }),
    );
    return reply.code(201).send(rows[0]);
  });

  app.get<ListParams>("/lists/:listId", async (req, reply) => {
    const id = req.params.listId;
    if (!isUuid(id)) return notFound(reply, "list");
    const { rows } = await db.query<q.ListRow>(q.findList({ owner: owner(req), id }));
    if (!rows[0]) return notFound(reply, "list");
    const items = await db.query<q.ItemRow>(
      q.listItems({ owner: owner(req), list_id: id, limit: q.MAX_ROWS }),
    );
    return { ...rows[0], items: items.rows };
  });

  app.patch<ListParams>("/lists/:listId", { schema: { body: listBody } }, async (req, reply) => {
    const id = req.params.listId;
    if (!isUuid(id)) return notFound(reply, "list");
    const { name } = req.body as { name: string };
    const renamed = await db.query(
      q.renameList({ owner: owner(req), id, name: name.trim(), now: clock.now() }),
    );
    if (!renamed.rows[0]) return notFound(reply, "list");
    const { rows } = await db.query<q.ListRow>(q.findList({ owner: owner(req), id }));
    return rows[0];
  });

  app.delete<ListParams>("/lists/:listId", async (req, reply) => {
    const id = req.params.listId;
    if (!isUuid(id)) return notFound(reply, "list");
    const { rows } = await db.query(q.deleteList({ owner: owner(req), id }));
    if (!rows[0]) return notFound(reply, "list");
    return reply.code(204).send();
  });

  app.post<ListParams>("/lists/:listId/items", { schema: { body: newItemBody } }, async (req, reply) => {
    const listId = req.params.listId;
    if (!isUuid(listId)) return notFound(reply, "list");
    const { text } = req.body as { text: string };
    const { rows } = await db.query<q.ItemRow>(
      q.insertItem({
        id: randomUUID(),
        owner: owner(req),
        list_id: listId,
        text: text.trim(),
        now: clock.now(),
      }),
    );
    if (!rows[0]) return notFound(reply, "list");
    return reply.code(201).send(rows[0]);
  });

  app.patch<ItemParams>(
    "/lists/:listId/items/:itemId",
    { schema: { body: itemPatch } },
    async (req, reply) => {
      const { listId, itemId } = req.params;
      if (!isUuid(listId) || !isUuid(itemId)) return notFound(reply, "item");
      const body = req.body as { text?: string; done?: boolean };
      const { rows } = await db.query<q.ItemRow>(
        q.updateItem({
          owner: owner(req),
          list_id: listId,
          id: itemId,
          text: body.text?.trim() ?? null,
          done: body.done ?? null,
          now: clock.now(),
        }),
      );
      if (!rows[0]) return notFound(reply, "item");
      return rows[0];
    },
  );

  app.delete<ItemParams>("/lists/:listId/items/:itemId", async (req, reply) => {
    const { listId, itemId } = req.params;
    if (!isUuid(listId) || !isUuid(itemId)) return notFound(reply, "item");
    const { rows } = await db.query(q.deleteItem({ owner: owner(req), list_id: listId, id: itemId }));
    if (!rows[0]) return notFound(reply, "item");
    return reply.code(204).send();
  });
}
