import { randomBytes, randomUUID } from "node:crypto";
import type { Clock, Queryable } from "@evergreen/db";
import { AdminApiError, type KeyRing, isUuid } from "@evergreen/server";
import { sealString } from "../crypto/token-seal.ts";
import { type DeliveryRow, type WebhookRow, webhookQueries } from "../queries.ts";

const EVENT_TYPES = new Set(["refreshed", "refresh_failed", "degraded", "recovered", "needs_reauth"]);

export interface PublicWebhook {
  id: string;
  url: string;
  events: string[];
  created_at: Date;
}

function bad(description: string): AdminApiError {
  return new AdminApiError("invalid_request", description);
}

function toPublic(row: WebhookRow): PublicWebhook {
  return { id: row.id, url: row.url, events: row.events, created_at: row.created_at };
}

function webhookUrl(v: unknown): string {
  if (typeof v !== "string" || v.length > 2048) throw bad("url must be an absolute http(s) URL");
  try {
    const u = new URL(v);
    if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error();
    return u.toString();
  } catch {
    throw bad("url must be an absolute http(s) URL");
  }
}

/**
 * Registers a webhook for broker events (all of them when `events` is empty). The signing
 * secret is generated (or given, for the environment-configured hook), returned only here,
 * and kept sealed.
 */
export async function createWebhook(
  db: Queryable,
  ring: KeyRing,
  clock: Clock,
  input: Record<string, unknown>,
  secret = `egw_${randomBytes(32).toString("base64url")}`,
): Promise<PublicWebhook & { secret: string }> {
  for (const k of Object.keys(input)) if (!["url", "events"].includes(k)) throw bad(`unknown field ${k}`);
  const url = webhookUrl(input.url);
  const events = input.events ?? [];
  if (!Array.isArray(events) || !events.every((e) => typeof e === "string" && EVENT_TYPES.has(e))) {
    throw bad(`events must be a list of: ${[...EVENT_TYPES].join(", ")}`);
  }
  const id = randomUUID();
  const { rows } = await db.query<WebhookRow>(
    webhookQueries.insert({
      id,
      url,
      secret: sealString(ring, id, "webhook_secret", secret),
      events,
      now: clock.now(),
    }),
  );
  return { ...toPublic(rows[0]!), secret };
}

/** The webhook of EVERGREEN_BROKER_WEBHOOK_URL/_SECRET: created once, its secret kept current. */
export async function ensureConfiguredWebhook(
  db: Queryable,
  ring: KeyRing,
  clock: Clock,
  url: string,
  secret: string,
): Promise<void> {
  const { rows } = await db.query<WebhookRow>(webhookQueries.byUrl({ url: webhookUrl(url) }));
  if (rows[0]) {
    await db.query(
      webhookQueries.setSecret({
        id: rows[0].id,
        secret: sealString(ring, rows[0].id, "webhook_secret", secret),
      }),
    );
    return;
  }
  await createWebhook(db, ring, clock, { url }, secret);
}

export async function listWebhooks(db: Queryable): Promise<PublicWebhook[]> {
  const { rows } = await db.query<WebhookRow>(webhookQueries.list());
  return rows.map(toPublic);
}

export async function getWebhook(db: Queryable, id: string): Promise<PublicWebhook> {
  if (!isUuid(id)) throw new AdminApiError("not_found", "no such webhook");
  const { rows } = await db.query<WebhookRow>(webhookQueries.byId({ id }));
  if (!rows[0]) throw new AdminApiError("not_found", "no such webhook");
  return toPublic(rows[0]);
}

export async function deleteWebhook(db: Queryable, id: string): Promise<void> {
  if (!isUuid(id)) throw new AdminApiError("not_found", "no such webhook");
  const { rows } = await db.query(webhookQueries.delete({ id }));
  if (!rows[0]) throw new AdminApiError("not_found", "no such webhook");
}

/** A webhook's delivery log, newest first. */
export async function listDeliveries(db: Queryable, id: string, limit = 100): Promise<DeliveryRow[]> {
  await getWebhook(db, id);
  const { rows } = await db.query<DeliveryRow>(webhookQueries.deliveries({ webhook_id: id, limit }));
  return rows;
}
