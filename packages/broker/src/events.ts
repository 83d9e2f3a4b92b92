import { randomUUID } from "node:crypto";
import type { Queryable } from "@evergreen/db";
import { type BrokerEventType, type EventRow, eventQueries, webhookQueries } from "./queries.ts";

/** One audit event of a connection: what happened, never a token. */
export interface BrokerEvent {
  connectionId: string;
  provider: string;
  type: BrokerEventType;
  generation: number;
  status: string;
  reason: string | null;
  upstreamStatus: number | null;
  durationMs: number | null;
  error: string | null;
  at: Date;
}

/**
 * Records the event in the audit trail and queues one webhook delivery per subscribed webhook,
 * in the caller's transaction: an outcome and its events commit together or not at all.
 */
export async function recordEvent(tx: Queryable, e: BrokerEvent): Promise<void> {
  const eventId = randomUUID();
  await tx.query(
    eventQueries.insert({
      event_id: eventId,
      connection_id: e.connectionId,
      type: e.type,
      generation: e.generation,
      upstream_status: e.upstreamStatus,
      duration_ms: e.durationMs,
      error: e.error,
      at: e.at,
    }),
  );
  await tx.query(
    webhookQueries.enqueue({
      event_id: eventId,
      event_type: e.type,
      now: e.at,
      payload: JSON.stringify({
        id: eventId,
        type: e.type,
        connection_id: e.connectionId,
        provider: e.provider,
        generation: e.generation,
        status: e.status,
        reason: e.reason,
        upstream_status: e.upstreamStatus,
        error: e.error,
        at: e.at.toISOString(),
      }),
    }),
  );
}

/** A connection's audit trail, newest first. */
export async function listEvents(db: Queryable, connectionId: string, limit = 100): Promise<EventRow[]> {
  const { rows } = await db.query<EventRow>(eventQueries.list({ connection_id: connectionId, limit }));
  return rows;
}
