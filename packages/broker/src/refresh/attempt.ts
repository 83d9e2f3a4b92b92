import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { BoundQuery, Queryable } from "@evergreen/db";
import type { BrokerContext } from "../context.ts";
import { openString, sealString } from "../crypto/token-seal.ts";
import { recordEvent } from "../events.ts";
import { type Provider, loadProvider } from "../providers/store.ts";
import {
  type ClaimedRow,
  type ConnectionStatus,
  type Fence,
  connectionQueries,
  eventQueries,
} from "../queries.ts";
import { backoffMs, nextRefreshAt } from "./expiry.ts";
import { type UpstreamOutcome, callTokenEndpoint } from "./upstream.ts";

/** What one attempt on a claimed connection came to. */
export type AttemptResult =
  | { outcome: "refreshed"; generation: number; expiresAt: Date }
  | { outcome: "degraded" | "rate_limited"; retryAt: Date }
  | { outcome: "needs_reauth" | "rotation_lost" | "error"; reason: string }
  /** The lease was lost to another worker before our write: nothing written. */
  | { outcome: "fenced" };

/** Longest Retry-After honoured; a provider asking for more gets asked again after this. */
const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * Refreshes one connection this process has claimed (lease token in `row`): commits the
 * intent, calls the provider, then writes the outcome, its events and webhooks in one
 * transaction that only succeeds while our lease token and the claimed generation still hold.
 *
 * A claimed row whose intent is still set had an attempt without a known outcome (a worker
 * died mid-call, or the call timed out): this attempt is the one retry with the stored refresh
 * token, and `invalid_grant` then means the rotated token was lost — `needs_reauth` with
 * reason `rotation_lost`, never a silent failure.
 */
export async function refreshClaimed(
  ctx: BrokerContext,
  row: ClaimedRow,
  /** A provider slot the caller (the worker) already holds; released once the call ends. */
  heldSlot?: () => void,
): Promise<AttemptResult> {
  const { clock, ring } = ctx;
  if (row.stolen) ctx.metrics.leaseSteals.inc();
  const recovering = row.intent_at !== null;
  const fence: Fence = { id: row.id, lease_token: row.lease_token!, generation: row.generation };

  // A database error here propagates: nothing was sent, the lease lapses, the next claim retries.
  const provider: Provider = await loadProvider(ctx.db, ring, row.provider);
  let refreshToken: string | null;
  try {
    refreshToken = row.refresh_token ? openString(ring, row.id, "refresh_token", row.refresh_token) : null;
  } catch (err) {
    // A key missing from the ring (or a damaged row): only an operator can fix this.
    const reason = "undecryptable";
    ctx.log.error(
      { connection: row.id, err: { message: String((err as Error)?.message) } },
      "broker: cannot open",
    );
    return writeFailure(ctx, row, fence, {
      status: "error",
      reason,
      lastError: "stored secrets cannot be opened with the configured keys",
      nextRefreshAt: clock.now(),
      keepIntent: recovering,
      upstreamStatus: null,
      durationMs: null,
      result: { outcome: "error", reason },
      providerName: row.provider,
    });
  }
  if (!refreshToken) {
    const reason = "no_refresh_token";
    return writeFailure(ctx, row, fence, {
      status: "needs_reauth",
      reason,
      lastError: "the connection has no refresh token",
      nextRefreshAt: clock.now(),
      keepIntent: false,
      upstreamStatus: null,
      durationMs: null,
      result: { outcome: "needs_reauth", reason },
      providerName: provider.name,
    });
  }

  let release: () => void;
  if (heldSlot) {
    // Keeps the limit the worker admits by up to date with the provider as stored now.
    ctx.limits.configure(provider.name, provider.max_concurrency);
    release = heldSlot;
  } else release = await ctx.limits.acquire(provider.name, provider.max_concurrency);
  let outcome: UpstreamOutcome;
  let durationMs: number;
  let sentAt: Date;
  try {
    const markedAt = clock.now();
    const marked = await ctx.db.query(
      connectionQueries.markIntent({
        ...fence,
        now: markedAt,
        lease_until: new Date(markedAt.getTime() + ctx.config.leaseMs),
      }),
    );
    if (marked.rowCount === 0) {
      ctx.metrics.refreshes.inc({ provider: provider.name, outcome: "fenced" });
      return { outcome: "fenced" };
    }
    sentAt = clock.now();
    const started = performance.now();
    outcome = await callTokenEndpoint({
      provider,
      refreshToken,
      sentAt,
      timeoutMs: ctx.config.upstreamTimeoutMs,
      fetch: ctx.fetch,
    });
    durationMs = Math.round(performance.now() - started);
  } finally {
    release();
  }

  const now = clock.now();
  if (outcome.kind === "success") {
    const access = outcome.accessToken;
    const { rows } = await writeWithRetry<{ generation: number; expires_at: Date }>(ctx, () =>
      connectionQueries.writeSuccess({
        ...fence,
        access_token: sealString(ring, row.id, "access_token", access),
        refresh_token: outcome.refreshToken
          ? sealString(ring, row.id, "refresh_token", outcome.refreshToken)
          : null,
        token_type: outcome.tokenType,
        key_id: ring.current.id,
        expires_at: outcome.expiresAt,
        next_refresh_at: nextRefreshAt({
          now,
          expiresAt: outcome.expiresAt,
          refreshAhead: provider.refresh_ahead,
          random: ctx.random,
        }),
        last_response: sealString(ring, row.id, "last_response", JSON.stringify(outcome.sanitized)),
        now,
        at: now.toISOString(),
        event_id: randomUUID(),
        recovered_event_id: randomUUID(),
        recovered: row.failure_count > 0,
        upstream_status: outcome.status,
        duration_ms: durationMs,
      }),
    );
    const written = rows[0];
    if (!written) {
      ctx.metrics.refreshes.inc({ provider: provider.name, outcome: "fenced" });
      ctx.log.warn(
        { connection: row.id, generation: row.generation },
        "broker: late write refused by the fence",
      );
      return { outcome: "fenced" };
    }
    ctx.metrics.refreshes.inc({ provider: provider.name, outcome: "refreshed" });
    ctx.metrics.secondsBeforeExpiry.observe(
      { provider: provider.name },
      (row.expires_at.getTime() - now.getTime()) / 1000,
    );
    return { outcome: "refreshed", generation: written.generation, expiresAt: written.expires_at };
  }

  const common = { upstreamStatus: outcome.status, durationMs, providerName: provider.name };
  if (outcome.kind === "rejected") {
    const reason = recovering && outcome.error === "invalid_grant" ? "rotation_lost" : outcome.error;
    return writeFailure(ctx, row, fence, {
      ...common,
      status: "needs_reauth",
      reason,
      lastError: `upstream ${outcome.status} ${outcome.error}`,
      nextRefreshAt: now,
      keepIntent: false,
      lastResponse: outcome.sanitized,
      result: { outcome: reason === "rotation_lost" ? "rotation_lost" : "needs_reauth", reason },
    });
  }
  const failures = row.failure_count + 1;
  const waitMs =
    outcome.kind === "rate_limited" && outcome.retryAfterMs !== undefined
      ? Math.min(outcome.retryAfterMs, MAX_RETRY_AFTER_MS)
      : backoffMs(failures, ctx.random);
  const retryAt = new Date(now.getTime() + waitMs);
  return writeFailure(ctx, row, fence, {
    ...common,
    status: "degraded",
    reason: outcome.kind === "rate_limited" ? "rate_limited" : "upstream_unavailable",
    lastError: outcome.error,
    nextRefreshAt: retryAt,
    // Still unknown whether the stored refresh token is alive: keep the intent for the next try.
    keepIntent: recovering || (outcome.kind === "transient" && outcome.outcomeUnknown),
    result: { outcome: outcome.kind === "rate_limited" ? "rate_limited" : "degraded", retryAt },
  });
}

/**
 * Runs the final write, retrying a failed attempt (the database restarting, a full connection
 * slot table) with backoff while our lease lasts: the provider has already rotated, and the new
 * tokens exist only in this process until they are written.
 */
async function writeWithRetry<T>(
  ctx: BrokerContext,
  build: () => BoundQuery,
): Promise<{ rows: T[]; rowCount: number }> {
  // The lease was renewed when the call started and the call took at most the timeout.
  const deadline = performance.now() + ctx.config.leaseMs - ctx.config.upstreamTimeoutMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.db.query<T>(build());
    } catch (err) {
      if (performance.now() + 100 * 2 ** attempt > deadline) throw err;
      ctx.log.warn(
        { err: { message: String((err as Error)?.message) }, attempt },
        "broker: write failed, retrying",
      );
      await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
    }
  }
}

async function notifyChanged(tx: Queryable, id: string): Promise<void> {
  await tx.query(eventQueries.notify({ payload: `changed:${id}` }));
}

async function writeFailure(
  ctx: BrokerContext,
  row: ClaimedRow,
  fence: Fence,
  f: {
    status: ConnectionStatus;
    reason: string;
    lastError: string;
    nextRefreshAt: Date;
    keepIntent: boolean;
    upstreamStatus: number | null;
    durationMs: number | null;
    lastResponse?: Record<string, unknown>;
    result: AttemptResult;
    providerName: string;
  },
): Promise<AttemptResult> {
  const now = ctx.clock.now();
  const written = await ctx.db.transaction(async (tx) => {
    const res = await tx.query(
      connectionQueries.writeFailure({
        ...fence,
        status: f.status,
        reason: f.reason,
        last_error: f.lastError,
        next_refresh_at: f.nextRefreshAt,
        keep_intent: f.keepIntent,
        last_response: f.lastResponse
          ? sealString(ctx.ring, row.id, "last_response", JSON.stringify(f.lastResponse))
          : null,
        now,
      }),
    );
    if (res.rowCount === 0) return false;
    const base = {
      connectionId: row.id,
      provider: f.providerName,
      generation: row.generation,
      status: f.status,
      reason: f.reason,
      upstreamStatus: f.upstreamStatus,
      durationMs: f.durationMs,
      error: f.lastError,
      at: now,
    };
    await recordEvent(tx, { ...base, type: "refresh_failed" });
    if (f.status === "needs_reauth" || f.status === "error")
      await recordEvent(tx, { ...base, type: "needs_reauth" });
    else if (row.failure_count === 0) await recordEvent(tx, { ...base, type: "degraded" });
    await notifyChanged(tx, row.id);
    return true;
  });
  if (!written) {
    ctx.metrics.refreshes.inc({ provider: f.providerName, outcome: "fenced" });
    return { outcome: "fenced" };
  }
  const outcome = f.result.outcome;
  ctx.metrics.refreshes.inc({ provider: f.providerName, outcome });
  ctx.log.warn(
    {
      connection: row.id,
      provider: f.providerName,
      outcome,
      upstream_status: f.upstreamStatus,
      error: f.lastError,
    },
    "broker: refresh failed",
  );
  return f.result;
}
