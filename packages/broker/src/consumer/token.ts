import { performance } from "node:perf_hooks";
import { BearerTokenError, isUuid } from "@evergreen/server";
import type { BrokerContext } from "../context.ts";
import { apiKeyHash, apiKeyMatches, looksLikeApiKey } from "../crypto/api-key.ts";
import { openString } from "../crypto/token-seal.ts";
import { type ApiKeyRow, type ConnectionRow, apiKeyQueries, connectionQueries } from "../queries.ts";
import { refreshNow } from "../refresh/on-demand.ts";

/** What the consumer endpoint answers. */
export type TokenAnswer =
  | {
      kind: "token";
      body: { access_token: string; token_type: string; expires_at: string; generation: number };
    }
  | { kind: "reauth"; body: { status: string; reason: string | null } }
  | { kind: "unavailable"; retryAfter: number; body: { status: string; reason: string | null } }
  | { kind: "not_found" };

/** Checks an API key (SHA-256 lookup, constant-time compare); RFC 6750 401 when it is not one. */
export async function authenticateApiKey(
  ctx: BrokerContext,
  authorization: string | undefined,
): Promise<ApiKeyRow> {
  if (!authorization) throw new BearerTokenError(null, "an API key is required");
  const m = /^Bearer ([!-~]+)$/.exec(authorization);
  if (!m) throw new BearerTokenError("invalid_request", "malformed Authorization header");
  const presented = m[1]!;
  if (!looksLikeApiKey(presented)) throw new BearerTokenError("invalid_token", "unknown API key");
  const hash = apiKeyHash(presented);
  const { rows } = await ctx.db.query<ApiKeyRow>(apiKeyQueries.byHash({ key_hash: hash }));
  const key = rows[0];
  if (!key || !apiKeyMatches(key.key_hash, hash))
    throw new BearerTokenError("invalid_token", "unknown API key");
  return key;
}

/** A key with no scopes reaches every connection; otherwise the connection or its provider must be listed. */
function inScope(key: ApiKeyRow, row: ConnectionRow): boolean {
  if (key.connections.length === 0 && key.providers.length === 0) return true;
  return key.connections.includes(row.id) || key.providers.includes(row.provider);
}

/**
 * A token for connection `id` valid for at least `minValidity` seconds: from the database
 * when the stored one is, otherwise after a refresh on demand (ours, or the worker's we wait
 * for). Never a stale token: a connection needing re-authorisation answers `reauth`, and one
 * whose provider is failing answers `unavailable` when its current token is not enough.
 */
export async function readToken(
  ctx: BrokerContext,
  key: ApiKeyRow,
  id: string,
  minValidity: number,
): Promise<TokenAnswer> {
  if (!isUuid(id)) return { kind: "not_found" };
  const deadline = performance.now() + ctx.config.consumerWaitMs;
  let refreshedHere = false;
  for (;;) {
    const { rows } = await ctx.db.query<ConnectionRow>(connectionQueries.byId({ id }));
    const row = rows[0];
    if (!row) return { kind: "not_found" };
    if (!inScope(key, row))
      throw new BearerTokenError("insufficient_scope", "the API key does not cover this connection");
    if (row.status === "needs_reauth" || row.status === "error") {
      ctx.metrics.tokenReads.inc({ outcome: "needs_reauth" });
      return { kind: "reauth", body: { status: row.status, reason: row.reason } };
    }
    const now = ctx.clock.now();
    const left = row.expires_at.getTime() - now.getTime();
    if (left >= minValidity * 1000) {
      ctx.metrics.tokenReads.inc({ outcome: refreshedHere ? "refreshed" : "served" });
      return {
        kind: "token",
        body: {
          access_token: openString(ctx.ring, row.id, "access_token", row.access_token),
          token_type: row.token_type,
          expires_at: row.expires_at.toISOString(),
          generation: row.generation,
        },
      };
    }
    const backingOff = row.status === "degraded" && row.next_refresh_at.getTime() > now.getTime();
    const waitLeft = deadline - performance.now();
    if (backingOff || refreshedHere || waitLeft <= 0) {
      ctx.metrics.tokenReads.inc({ outcome: "unavailable" });
      const retryAfter = backingOff ? Math.ceil((row.next_refresh_at.getTime() - now.getTime()) / 1000) : 1;
      const reason =
        backingOff || row.status === "degraded"
          ? row.reason
          : refreshedHere
            ? "min_validity_unreachable"
            : "refresh_in_progress";
      return {
        kind: "unavailable",
        retryAfter: Math.max(1, retryAfter),
        body: { status: row.status, reason },
      };
    }
    const needBefore = new Date(now.getTime() + minValidity * 1000);
    const outcome = await refreshNow(ctx, row.id, waitLeft, row.lease_expires_at, needBefore);
    if (outcome.claimed) refreshedHere = outcome.result.outcome !== "fenced";
  }
}
