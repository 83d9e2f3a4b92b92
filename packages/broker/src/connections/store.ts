import { randomUUID } from "node:crypto";
import type { Queryable } from "@evergreen/db";
import { AdminApiError, isUuid } from "@evergreen/server";
import type { BrokerContext } from "../context.ts";
import { sealString } from "../crypto/token-seal.ts";
import { loadProvider } from "../providers/store.ts";
import { nextRefreshAt, parseExpiresAt, resolveExpiry } from "../refresh/expiry.ts";
import { type ConnectionRow, connectionQueries, eventQueries } from "../queries.ts";

/** A connection as the admin API shows it: state and timing, never a token. */
export interface PublicConnection {
  id: string;
  provider: string;
  status: string;
  reason: string | null;
  expires_at: Date;
  next_refresh_at: Date;
  generation: number;
  failure_count: number;
  last_error: string | null;
  last_refreshed_at: Date | null;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

const STATUSES = new Set(["active", "refreshing", "degraded", "needs_reauth", "error"]);
const MAX_TOKEN_LENGTH = 16 * 1024;

function bad(description: string): AdminApiError {
  return new AdminApiError("invalid_request", description);
}

export function toPublicConnection(row: ConnectionRow): PublicConnection {
  return {
    id: row.id,
    provider: row.provider,
    status: row.status,
    reason: row.reason,
    expires_at: row.expires_at,
    next_refresh_at: row.next_refresh_at,
    generation: row.generation,
    failure_count: row.failure_count,
    last_error: row.last_error,
    last_refreshed_at: row.last_refreshed_at,
    metadata: row.metadata,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

function token(v: unknown, name: string): string {
  if (typeof v !== "string" || v.length === 0 || v.length > MAX_TOKEN_LENGTH || v.includes("\0")) {
    throw bad(`${name} must be a non-empty string of at most ${MAX_TOKEN_LENGTH} characters`);
  }
  return v;
}

/** Tokens and expiry from a create or re-authorise body. */
function tokensFrom(input: Record<string, unknown>, now: Date, defaultTtl: number) {
  const access = token(input.access_token, "access_token");
  const refresh = token(input.refresh_token, "refresh_token");
  if (input.expires_in !== undefined && input.expires_at !== undefined) {
    throw bad("give expires_in or expires_at, not both");
  }
  if (
    input.expires_in !== undefined &&
    (typeof input.expires_in !== "number" ||
      !Number.isInteger(input.expires_in) ||
      input.expires_in < 0 ||
      input.expires_in > 31_536_000 * 10)
  ) {
    throw bad("expires_in must be a non-negative integer of seconds");
  }
  let expiresAt: Date | undefined;
  if (input.expires_at !== undefined) {
    expiresAt = parseExpiresAt(input.expires_at);
    if (!expiresAt) throw bad("expires_at must be an ISO 8601 time or epoch seconds or milliseconds");
  } else {
    expiresAt = resolveExpiry({ sentAt: now, accessToken: access, expiresIn: input.expires_in, defaultTtl });
  }
  if (!expiresAt || Number.isNaN(expiresAt.getTime())) throw bad("unreadable expiry");
  return { access, refresh, expiresAt };
}

/** The stored form of tokens given by hand: sealed under the current key, due ahead of expiry. */
function sealedTokens(
  ctx: BrokerContext,
  id: string,
  t: { access: string; refresh: string; expiresAt: Date },
  refreshAhead: number,
  now: Date,
) {
  return {
    access_token: sealString(ctx.ring, id, "access_token", t.access),
    refresh_token: sealString(ctx.ring, id, "refresh_token", t.refresh),
    key_id: ctx.ring.current.id,
    expires_at: t.expiresAt,
    next_refresh_at: nextRefreshAt({ now, expiresAt: t.expiresAt, refreshAhead, random: ctx.random }),
  };
}

async function loadRow(db: Queryable, id: string): Promise<ConnectionRow> {
  if (!isUuid(id)) throw new AdminApiError("not_found", "no such connection");
  const { rows } = await db.query<ConnectionRow>(connectionQueries.byId({ id }));
  if (!rows[0]) throw new AdminApiError("not_found", "no such connection");
  return rows[0];
}

const CREATE_FIELDS = new Set([
  "provider",
  "access_token",
  "refresh_token",
  "expires_in",
  "expires_at",
  "metadata",
  "token_type",
]);

/** Stores a new connection with its first tokens, sealed; due for refresh ahead of expiry. */
export async function createConnection(
  ctx: BrokerContext,
  input: Record<string, unknown>,
): Promise<PublicConnection> {
  for (const key of Object.keys(input)) if (!CREATE_FIELDS.has(key)) throw bad(`unknown field ${key}`);
  if (typeof input.provider !== "string" || input.provider.length === 0 || input.provider.length > 64) {
    throw bad("provider must name a provider");
  }
  const metadata = input.metadata ?? {};
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata))
    throw bad("metadata must be an object");
  if (JSON.stringify(metadata).length > 16_384) throw bad("metadata must be at most 16 KiB of JSON");
  if (JSON.stringify(metadata).includes("\\u0000")) throw bad("metadata must not contain NUL characters");
  const tokenType = input.token_type ?? "Bearer";
  if (typeof tokenType !== "string" || !/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(tokenType))
    throw bad("token_type is not valid");
  let provider: Awaited<ReturnType<typeof loadProvider>>;
  try {
    provider = await loadProvider(ctx.db, ctx.ring, input.provider);
  } catch (err) {
    if (err instanceof AdminApiError && err.error === "not_found") throw bad("no such provider");
    throw err;
  }
  const now = ctx.clock.now();
  const t = tokensFrom(input, now, provider.default_ttl);
  const id = randomUUID();
  const row = await ctx.db.transaction(async (tx) => {
    const { rows } = await tx.query<ConnectionRow>(
      connectionQueries.insert({
        id,
        provider: provider.name,
        ...sealedTokens(ctx, id, t, provider.refresh_ahead, now),
        token_type: tokenType,
        metadata: JSON.stringify(metadata),
        now,
      }),
    );
    // Wake the workers only for a connection due already; the rest they find on schedule.
    if (rows[0]!.next_refresh_at.getTime() <= now.getTime()) {
      await tx.query(eventQueries.notify({ payload: `due:${id}` }));
    }
    return rows[0]!;
  });
  return toPublicConnection(row);
}

export async function getConnection(db: Queryable, id: string): Promise<PublicConnection> {
  return toPublicConnection(await loadRow(db, id));
}

/** Keyset-paged list (by id); `cursor` is the last id of the previous page. */
export async function listConnections(
  db: Queryable,
  q: { provider?: string; status?: string; limit?: number; cursor?: string },
): Promise<{ connections: PublicConnection[]; next_cursor: string | null }> {
  if (q.status !== undefined && !STATUSES.has(q.status)) throw bad("status must be a connection status");
  if (q.cursor !== undefined && !isUuid(q.cursor)) throw bad("cursor must be a connection id");
  if (
    q.provider !== undefined &&
    (q.provider.length === 0 || q.provider.length > 64 || q.provider.includes("\0"))
  ) {
    throw bad("provider must name a provider");
  }
  const limit = q.limit ?? 100;
  const { rows } = await db.query<ConnectionRow>(
    connectionQueries.list({
      provider: q.provider ?? null,
      status: q.status ?? null,
      after: q.cursor ?? null,
      limit,
    }),
  );
  return {
    connections: rows.map(toPublicConnection),
    next_cursor: rows.length === limit ? rows.at(-1)!.id : null,
  };
}

/** Replaces the tokens by hand after the user re-authorised: back to active, generation + 1. */
export async function reauthConnection(
  ctx: BrokerContext,
  id: string,
  input: Record<string, unknown>,
): Promise<PublicConnection> {
  for (const key of Object.keys(input)) {
    if (!["access_token", "refresh_token", "expires_in", "expires_at"].includes(key))
      throw bad(`unknown field ${key}`);
  }
  const current = await loadRow(ctx.db, id);
  const provider = await loadProvider(ctx.db, ctx.ring, current.provider);
  const now = ctx.clock.now();
  const t = tokensFrom(input, now, provider.default_ttl);
  const row = await ctx.db.transaction(async (tx) => {
    const { rows } = await tx.query<ConnectionRow>(
      connectionQueries.reauth({
        id: current.id,
        ...sealedTokens(ctx, current.id, t, provider.refresh_ahead, now),
        now,
      }),
    );
    if (!rows[0]) throw new AdminApiError("not_found", "no such connection");
    await tx.query(eventQueries.notify({ payload: `changed:${current.id}` }));
    if (rows[0].next_refresh_at.getTime() <= now.getTime()) {
      await tx.query(eventQueries.notify({ payload: `due:${current.id}` }));
    }
    return rows[0];
  });
  return toPublicConnection(row);
}

export async function deleteConnection(db: Queryable, id: string): Promise<void> {
  if (!isUuid(id)) throw new AdminApiError("not_found", "no such connection");
  const { rows } = await db.query(connectionQueries.delete({ id }));
  if (!rows[0]) throw new AdminApiError("not_found", "no such connection");
}
