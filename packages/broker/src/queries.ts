import { plan } from "@evergreen/db";

/**
 * Every SQL statement the broker runs, in one place (after pg-boss's plans.ts). Each statement
 * is a plan (`plan.ts` in @evergreen/db): SQL with `:name` placeholders and the type of its
 * inputs, called with a named object, so no caller lines up `$7` by hand. Every statement is a
 * named prepared statement and those names are stable (the claim and the fenced writes are the
 * hot path). JSON columns take JSON text, as in the issuer's queries. Time is always a parameter
 * (the injected clock), never now().
 */

/** The channel every broker notification travels on; payloads are `kind:id`. */
export const BROKER_CHANNEL = "evergreen_broker";

// ---------------------------------------------------------------------------------------------
// Providers

export interface ProviderRow {
  name: string;
  token_url: string;
  client_id: string | null;
  client_secret: Buffer | null;
  auth_style: "basic" | "body";
  body_format: "form" | "json";
  refresh_ahead: number;
  default_ttl: number;
  max_concurrency: number | null;
  extra_body: Record<string, unknown>;
  extra_headers: Record<string, string>;
  response: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

const PROVIDER_COLUMNS = `name, token_url, client_id, client_secret, auth_style, body_format, refresh_ahead,
  default_ttl, max_concurrency, extra_body, extra_headers, response, created_at, updated_at`;

/** What a provider insert, upsert or update writes (the secret sealed, the JSON columns as text). */
export interface ProviderValues {
  name: string;
  token_url: string;
  client_id: string | null;
  client_secret: Buffer | null;
  auth_style: string;
  body_format: string;
  refresh_ahead: number;
  default_ttl: number;
  max_concurrency: number | null;
  extra_body: string;
  extra_headers: string;
  response: string;
  now: Date;
}

const PROVIDER_VALUES = `:name, :token_url, :client_id, :client_secret, :auth_style, :body_format, :refresh_ahead,
  :default_ttl, :max_concurrency, :extra_body::jsonb, :extra_headers::jsonb, :response::jsonb, :now, :now`;

export const providerQueries = {
  insert: plan<ProviderValues>(
    `INSERT INTO broker_providers (${PROVIDER_COLUMNS}) VALUES (${PROVIDER_VALUES})
     RETURNING ${PROVIDER_COLUMNS}`,
    "broker_provider_insert",
  ),
  /** Insert or replace by name (the providers file); keeps created_at. */
  upsert: plan<ProviderValues>(
    `INSERT INTO broker_providers (${PROVIDER_COLUMNS}) VALUES (${PROVIDER_VALUES})
     ON CONFLICT (name) DO UPDATE SET token_url = EXCLUDED.token_url, client_id = EXCLUDED.client_id,
       client_secret = EXCLUDED.client_secret, auth_style = EXCLUDED.auth_style,
       body_format = EXCLUDED.body_format, refresh_ahead = EXCLUDED.refresh_ahead,
       default_ttl = EXCLUDED.default_ttl, max_concurrency = EXCLUDED.max_concurrency,
       extra_body = EXCLUDED.extra_body, extra_headers = EXCLUDED.extra_headers,
       response = EXCLUDED.response, updated_at = EXCLUDED.updated_at
     RETURNING ${PROVIDER_COLUMNS}`,
    "broker_provider_upsert",
  ),
  update: plan<ProviderValues>(
    `UPDATE broker_providers SET token_url = :token_url, client_id = :client_id, client_secret = :client_secret,
       auth_style = :auth_style, body_format = :body_format, refresh_ahead = :refresh_ahead,
       default_ttl = :default_ttl, max_concurrency = :max_concurrency, extra_body = :extra_body::jsonb,
       extra_headers = :extra_headers::jsonb, response = :response::jsonb, updated_at = :now
     WHERE name = :name RETURNING ${PROVIDER_COLUMNS}`,
    "broker_provider_update",
  ),
  byName: plan<{ name: string }>(
    `SELECT ${PROVIDER_COLUMNS} FROM broker_providers WHERE name = :name`,
    "broker_provider_by_name",
  ),
  list: plan(`SELECT ${PROVIDER_COLUMNS} FROM broker_providers ORDER BY name`, "broker_provider_list"),
  delete: plan<{ name: string }>(
    "DELETE FROM broker_providers WHERE name = :name RETURNING name",
    "broker_provider_delete",
  ),
  countConnections: plan<{ name: string }>(
    "SELECT count(*)::int AS n FROM broker_connections WHERE provider = :name",
    "broker_provider_count_connections",
  ),
  /** Secrets sealed under another key than `key_id` (key rotation). */
  sealedWithOtherKey: plan<{ key_id: string }>(
    `SELECT name, client_secret FROM broker_providers
     WHERE client_secret IS NOT NULL
       AND convert_from(substring(client_secret from 2 for get_byte(client_secret, 0)), 'UTF8') <> :key_id`,
    "broker_provider_other_key",
  ),
  setSecret: plan<{ name: string; client_secret: Buffer }>(
    "UPDATE broker_providers SET client_secret = :client_secret WHERE name = :name",
    "broker_provider_set_secret",
  ),
};

// ---------------------------------------------------------------------------------------------
// Connections

export type ConnectionStatus = "active" | "refreshing" | "degraded" | "needs_reauth" | "error";

export interface ConnectionRow {
  id: string;
  provider: string;
  status: ConnectionStatus;
  reason: string | null;
  access_token: Buffer;
  refresh_token: Buffer | null;
  token_type: string;
  key_id: string;
  expires_at: Date;
  next_refresh_at: Date;
  generation: number;
  failure_count: number;
  last_error: string | null;
  last_refreshed_at: Date | null;
  lease_token: string | null;
  lease_owner: string | null;
  lease_expires_at: Date | null;
  intent_at: Date | null;
  last_response: Buffer | null;
  metadata: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

const CONNECTION_COLUMNS = `id, provider, status, reason, access_token, refresh_token, token_type, key_id, expires_at,
  next_refresh_at, generation, failure_count, last_error, last_refreshed_at, lease_token, lease_owner,
  lease_expires_at, intent_at, last_response, metadata, created_at, updated_at`;
const C_COLUMNS = CONNECTION_COLUMNS.split(",")
  .map((c) => `c.${c.trim()}`)
  .join(", ");

/** A claimed connection: the row as claimed, plus whether a lapsed lease was taken over. */
export interface ClaimedRow extends ConnectionRow {
  stolen: boolean;
}

/** What a fenced write checks: the lease this process was given and the generation it claimed. */
export interface Fence {
  id: string;
  lease_token: string;
  generation: number;
}

export const connectionQueries = {
  insert: plan<{
    id: string;
    provider: string;
    access_token: Buffer;
    refresh_token: Buffer | null;
    token_type: string;
    key_id: string;
    expires_at: Date;
    next_refresh_at: Date;
    /** JSON text. */
    metadata: string;
    now: Date;
  }>(
    `INSERT INTO broker_connections (id, provider, status, access_token, refresh_token, token_type, key_id,
       expires_at, next_refresh_at, metadata, created_at, updated_at)
     VALUES (:id, :provider, 'active', :access_token, :refresh_token, :token_type, :key_id, :expires_at,
       :next_refresh_at, :metadata::jsonb, :now, :now) RETURNING ${CONNECTION_COLUMNS}`,
    "broker_connection_insert",
  ),
  byId: plan<{ id: string }>(
    `SELECT ${CONNECTION_COLUMNS} FROM broker_connections WHERE id = :id`,
    "broker_connection_by_id",
  ),
  /** Keyset paging by id; `provider` and `status` filter when not null. */
  list: plan<{ provider: string | null; status: string | null; after: string | null; limit: number }>(
    `SELECT ${CONNECTION_COLUMNS} FROM broker_connections
     WHERE (:provider::text IS NULL OR provider = :provider) AND (:status::text IS NULL OR status = :status)
       AND (:after::uuid IS NULL OR id > :after)
     ORDER BY id LIMIT :limit`,
    "broker_connection_list",
  ),
  delete: plan<{ id: string }>(
    "DELETE FROM broker_connections WHERE id = :id RETURNING id",
    "broker_connection_delete",
  ),
  /** Replaces the tokens by hand (re-authorisation): back to active, any lease and intent voided. */
  reauth: plan<{
    id: string;
    access_token: Buffer;
    refresh_token: Buffer | null;
    key_id: string;
    expires_at: Date;
    next_refresh_at: Date;
    now: Date;
  }>(
    `UPDATE broker_connections SET status = 'active', reason = NULL, access_token = :access_token,
       refresh_token = :refresh_token, key_id = :key_id, expires_at = :expires_at,
       next_refresh_at = :next_refresh_at, generation = generation + 1, failure_count = 0, last_error = NULL,
       lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, intent_at = NULL, updated_at = :now
     WHERE id = :id RETURNING ${CONNECTION_COLUMNS}`,
    "broker_connection_reauth",
  ),
  /** Makes a connection due now (admin "refresh now"); a needs_reauth connection stays as it is. */
  makeDue: plan<{ id: string; now: Date }>(
    `UPDATE broker_connections SET next_refresh_at = :now, updated_at = :now
     WHERE id = :id AND status IN ('active', 'degraded', 'refreshing') RETURNING id`,
    "broker_connection_make_due",
  ),
  /**
   * The worker's claim: due connections whose lease is free or lapsed, locked with SKIP LOCKED
   * so concurrent workers take disjoint sets, each given a fresh lease token.
   * `exclude_providers` are the providers whose per-process call limit is saturated here: their
   * connections stay for other workers.
   */
  claimDue: plan<{
    now: Date;
    lease_until: Date;
    owner: string;
    limit: number;
    exclude_providers: string[];
  }>(
    `WITH due AS (
       SELECT id, lease_token AS old_lease FROM broker_connections
       WHERE status IN ('active', 'degraded', 'refreshing') AND next_refresh_at <= :now
         AND (lease_expires_at IS NULL OR lease_expires_at <= :now)
         AND NOT (provider = ANY(:exclude_providers::text[]))
       ORDER BY next_refresh_at LIMIT :limit FOR UPDATE SKIP LOCKED)
     UPDATE broker_connections c SET lease_token = gen_random_uuid(), lease_owner = :owner,
       lease_expires_at = :lease_until, status = 'refreshing', updated_at = :now
     FROM due WHERE c.id = due.id
     RETURNING ${C_COLUMNS}, due.old_lease IS NOT NULL AS stolen`,
    "broker_connection_claim_due",
  ),
  /**
   * Hands a claimed connection back untouched (no intent was marked, nothing was sent), fenced
   * by its lease: it is due again at once for any worker, and keeps its intent if it had one.
   * It stays `refreshing` (a refresh is still owed), as after a lapsed lease.
   */
  releaseClaim: plan<Fence & { now: Date }>(
    `UPDATE broker_connections SET lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL,
       updated_at = :now
     WHERE id = :id AND lease_token = :lease_token AND generation = :generation RETURNING id`,
    "broker_connection_release_claim",
  ),
  /**
   * The same claim for one connection, due or not (a consumer's or an admin's refresh now),
   * only while its token still expires before `need_before`: a consumer that read the row just
   * before another refresh landed does not refresh a second time.
   */
  claimOne: plan<{ id: string; now: Date; lease_until: Date; owner: string; need_before: Date }>(
    `WITH one AS (
       SELECT id, lease_token AS old_lease FROM broker_connections
       WHERE id = :id AND status IN ('active', 'degraded', 'refreshing')
         AND (lease_expires_at IS NULL OR lease_expires_at <= :now) AND expires_at < :need_before
       FOR UPDATE SKIP LOCKED)
     UPDATE broker_connections c SET lease_token = gen_random_uuid(), lease_owner = :owner,
       lease_expires_at = :lease_until, status = 'refreshing', updated_at = :now
     FROM one WHERE c.id = one.id
     RETURNING ${C_COLUMNS}, one.old_lease IS NOT NULL AS stolen`,
    "broker_connection_claim_one",
  ),
  /**
   * Commits the refresh intent right before the upstream call, fenced like the final write, and
   * renews the lease from now: the call (bounded by a timeout shorter than the lease) then
   * always ends before the lease can lapse, however long the claim waited for a slot.
   */
  markIntent: plan<Fence & { now: Date; lease_until: Date }>(
    `UPDATE broker_connections SET intent_at = :now, lease_expires_at = :lease_until
     WHERE id = :id AND lease_token = :lease_token AND generation = :generation RETURNING id`,
    "broker_connection_mark_intent",
  ),
  /**
   * The fenced success write: only the holder of this lease, on the generation it claimed, may
   * store new tokens. A missing refresh token (`refresh_token` null) keeps the stored one. One
   * statement (atomic on its own) also records the `refreshed` event (and `recovered` after
   * failures), queues their webhook deliveries and notifies waiting consumers: one round trip
   * per refresh. No row comes back when the fence refused the write, and then nothing happened.
   */
  writeSuccess: plan<
    Fence & {
      access_token: Buffer;
      refresh_token: Buffer | null;
      token_type: string;
      key_id: string;
      expires_at: Date;
      next_refresh_at: Date;
      last_response: Buffer | null;
      now: Date;
      /** `now` as ISO 8601 text (`toISOString`): the webhook payload's `at`, as `recordEvent` writes it. */
      at: string;
      event_id: string;
      recovered_event_id: string;
      recovered: boolean;
      upstream_status: number;
      duration_ms: number;
    }
  >(
    `WITH w AS (UPDATE broker_connections SET status = 'active', reason = NULL, access_token = :access_token,
       refresh_token = COALESCE(:refresh_token, refresh_token), token_type = :token_type, key_id = :key_id,
       expires_at = :expires_at, next_refresh_at = :next_refresh_at, last_response = :last_response,
       generation = generation + 1, failure_count = 0, last_error = NULL, last_refreshed_at = :now,
       lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, intent_at = NULL, updated_at = :now
     WHERE id = :id AND lease_token = :lease_token AND generation = :generation
     RETURNING id, provider, generation, expires_at),
   ev AS (
     SELECT * FROM (VALUES (:event_id::uuid, 'refreshed'), (:recovered_event_id::uuid, 'recovered')) AS t (event_id, type)
     WHERE t.type = 'refreshed' OR :recovered::boolean),
   e AS (
     INSERT INTO broker_events (event_id, connection_id, type, generation, upstream_status, duration_ms, error, at)
     SELECT ev.event_id, w.id, ev.type, w.generation, :upstream_status::int, :duration_ms::int, NULL, :now FROM w, ev),
   d AS (
     INSERT INTO broker_webhook_deliveries (webhook_id, event_id, event_type, payload, status, next_attempt_at,
       created_at)
     SELECT h.id, ev.event_id, ev.type,
       jsonb_build_object('id', ev.event_id, 'type', ev.type, 'connection_id', w.id, 'provider', w.provider,
         'generation', w.generation, 'status', 'active', 'reason', NULL, 'upstream_status', :upstream_status::int,
         'error', NULL, 'at', :at::text),
       'pending', :now, :now
     FROM w, ev, broker_webhooks h WHERE cardinality(h.events) = 0 OR ev.type = ANY (h.events)),
   n AS (SELECT pg_notify('${BROKER_CHANNEL}', 'changed:' || w.id) FROM w)
 SELECT w.generation, w.expires_at, (SELECT count(*) FROM n) AS notified FROM w`,
    "broker_connection_write_success",
  ),
  /**
   * The fenced failure write. `keep_intent` leaves the intent unresolved when the provider may
   * have acted without our seeing the answer (timeout, network error), so the next attempt
   * knows a rotation may have been lost.
   */
  writeFailure: plan<
    Fence & {
      status: ConnectionStatus;
      reason: string | null;
      last_error: string;
      next_refresh_at: Date;
      keep_intent: boolean;
      last_response: Buffer | null;
      now: Date;
    }
  >(
    `UPDATE broker_connections SET status = :status, reason = :reason, last_error = :last_error,
       next_refresh_at = :next_refresh_at, failure_count = failure_count + 1, lease_token = NULL,
       lease_owner = NULL, lease_expires_at = NULL,
       intent_at = CASE WHEN :keep_intent::boolean THEN intent_at ELSE NULL END,
       last_response = COALESCE(:last_response, last_response), updated_at = :now
     WHERE id = :id AND lease_token = :lease_token AND generation = :generation
     RETURNING failure_count`,
    "broker_connection_write_failure",
  ),
  /** Connections due now and not leased (the backlog gauge). */
  dueCount: plan<{ now: Date }>(
    `SELECT count(*)::int AS n FROM broker_connections
     WHERE status IN ('active', 'degraded', 'refreshing') AND next_refresh_at <= :now
       AND (lease_expires_at IS NULL OR lease_expires_at <= :now)`,
    "broker_connection_due_count",
  ),
  /** The earliest scheduled refresh (the worker sleeps until then when it is sooner than a poll). */
  nextDue: plan(
    "SELECT min(next_refresh_at) AS at FROM broker_connections WHERE status IN ('active', 'degraded', 'refreshing')",
    "broker_connection_next_due",
  ),
  /** A batch of connections sealed under another key than `key_id` (key rotation). */
  sealedWithOtherKey: plan<{ key_id: string; limit: number }>(
    `SELECT id, access_token, refresh_token, last_response, key_id FROM broker_connections
     WHERE key_id <> :key_id ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED`,
    "broker_connection_other_key",
  ),
  /** Re-sealed tokens (only while still sealed under `from_key_id`); values and generation unchanged. */
  reseal: plan<{
    id: string;
    from_key_id: string;
    access_token: Buffer;
    refresh_token: Buffer | null;
    last_response: Buffer | null;
    key_id: string;
  }>(
    `UPDATE broker_connections SET access_token = :access_token, refresh_token = :refresh_token,
       last_response = :last_response, key_id = :key_id
     WHERE id = :id AND key_id = :from_key_id`,
    "broker_connection_reseal",
  ),
};

// ---------------------------------------------------------------------------------------------
// Events

export type BrokerEventType = "refreshed" | "refresh_failed" | "degraded" | "recovered" | "needs_reauth";

export interface EventRow {
  id: number;
  event_id: string;
  connection_id: string;
  type: BrokerEventType;
  generation: number;
  upstream_status: number | null;
  duration_ms: number | null;
  error: string | null;
  at: Date;
}

export const eventQueries = {
  insert: plan<{
    event_id: string;
    connection_id: string;
    type: BrokerEventType;
    generation: number;
    upstream_status: number | null;
    duration_ms: number | null;
    error: string | null;
    at: Date;
  }>(
    `INSERT INTO broker_events (event_id, connection_id, type, generation, upstream_status, duration_ms, error, at)
     VALUES (:event_id, :connection_id, :type, :generation, :upstream_status, :duration_ms, :error, :at)`,
    "broker_event_insert",
  ),
  list: plan<{ connection_id: string; limit: number }>(
    `SELECT id, event_id, connection_id, type, generation, upstream_status, duration_ms, error, at
     FROM broker_events WHERE connection_id = :connection_id ORDER BY id DESC LIMIT :limit`,
    "broker_event_list",
  ),
  notify: plan<{ payload: string }>(`SELECT pg_notify('${BROKER_CHANNEL}', :payload)`, "broker_notify"),
};

// ---------------------------------------------------------------------------------------------
// API keys

export interface ApiKeyRow {
  id: string;
  name: string;
  key_hash: Buffer;
  key_prefix: string;
  connections: string[];
  providers: string[];
  created_at: Date;
}

const API_KEY_COLUMNS = "id, name, key_hash, key_prefix, connections, providers, created_at";

export const apiKeyQueries = {
  insert: plan<{
    id: string;
    name: string;
    key_hash: Buffer;
    key_prefix: string;
    connections: string[];
    providers: string[];
    now: Date;
  }>(
    `INSERT INTO broker_api_keys (${API_KEY_COLUMNS})
     VALUES (:id, :name, :key_hash, :key_prefix, :connections::uuid[], :providers::text[], :now)
     RETURNING ${API_KEY_COLUMNS}`,
    "broker_api_key_insert",
  ),
  byHash: plan<{ key_hash: Buffer }>(
    `SELECT ${API_KEY_COLUMNS} FROM broker_api_keys WHERE key_hash = :key_hash`,
    "broker_api_key_by_hash",
  ),
  byId: plan<{ id: string }>(
    `SELECT ${API_KEY_COLUMNS} FROM broker_api_keys WHERE id = :id`,
    "broker_api_key_by_id",
  ),
  list: plan(`SELECT ${API_KEY_COLUMNS} FROM broker_api_keys ORDER BY created_at, id`, "broker_api_key_list"),
  delete: plan<{ id: string }>(
    "DELETE FROM broker_api_keys WHERE id = :id RETURNING id",
    "broker_api_key_delete",
  ),
};

// ---------------------------------------------------------------------------------------------
// Webhooks

export interface WebhookRow {
  id: string;
  url: string;
  secret: Buffer;
  events: string[];
  created_at: Date;
}

export interface DeliveryRow {
  id: number;
  webhook_id: string;
  event_id: string;
  event_type: string;
  payload: Record<string, unknown>;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  next_attempt_at: Date;
  last_status: number | null;
  last_error: string | null;
  created_at: Date;
  delivered_at: Date | null;
}

const DELIVERY_COLUMNS = `id, webhook_id, event_id, event_type, payload, status, attempts, next_attempt_at,
  last_status, last_error, created_at, delivered_at`;

const WEBHOOK_COLUMNS = "id, url, secret, events, created_at";

export const webhookQueries = {
  insert: plan<{ id: string; url: string; secret: Buffer; events: string[]; now: Date }>(
    `INSERT INTO broker_webhooks (${WEBHOOK_COLUMNS}) VALUES (:id, :url, :secret, :events::text[], :now)
     RETURNING ${WEBHOOK_COLUMNS}`,
    "broker_webhook_insert",
  ),
  byId: plan<{ id: string }>(
    `SELECT ${WEBHOOK_COLUMNS} FROM broker_webhooks WHERE id = :id`,
    "broker_webhook_by_id",
  ),
  byUrl: plan<{ url: string }>(
    `SELECT ${WEBHOOK_COLUMNS} FROM broker_webhooks WHERE url = :url ORDER BY created_at`,
    "broker_webhook_by_url",
  ),
  setSecret: plan<{ id: string; secret: Buffer }>(
    "UPDATE broker_webhooks SET secret = :secret WHERE id = :id",
    "broker_webhook_set_secret",
  ),
  list: plan(`SELECT ${WEBHOOK_COLUMNS} FROM broker_webhooks ORDER BY created_at, id`, "broker_webhook_list"),
  delete: plan<{ id: string }>(
    "DELETE FROM broker_webhooks WHERE id = :id RETURNING id",
    "broker_webhook_delete",
  ),
  /** One pending delivery per webhook subscribed to this event type (an outbox row, same transaction as the event). */
  enqueue: plan<{ event_id: string; event_type: string /** JSON text. */; payload: string; now: Date }>(
    `INSERT INTO broker_webhook_deliveries (webhook_id, event_id, event_type, payload, status, next_attempt_at, created_at)
     SELECT id, :event_id, :event_type, :payload::jsonb, 'pending', :now, :now FROM broker_webhooks
     WHERE cardinality(events) = 0 OR :event_type = ANY(events)`,
    "broker_delivery_enqueue",
  ),
  /** Due deliveries, leased so concurrent dispatchers take disjoint sets. */
  claimDeliveries: plan<{ now: Date; lease_until: Date; limit: number }>(
    `WITH due AS (
       SELECT id FROM broker_webhook_deliveries
       WHERE status = 'pending' AND next_attempt_at <= :now AND (lease_expires_at IS NULL OR lease_expires_at <= :now)
       ORDER BY next_attempt_at LIMIT :limit FOR UPDATE SKIP LOCKED)
     UPDATE broker_webhook_deliveries d SET lease_expires_at = :lease_until, attempts = d.attempts + 1
     FROM due WHERE d.id = due.id
     RETURNING d.id, d.webhook_id, d.event_id, d.event_type, d.payload, d.attempts`,
    "broker_delivery_claim",
  ),
  markDelivered: plan<{ id: number; last_status: number; now: Date }>(
    `UPDATE broker_webhook_deliveries SET status = 'delivered', last_status = :last_status, last_error = NULL,
       delivered_at = :now, lease_expires_at = NULL WHERE id = :id`,
    "broker_delivery_delivered",
  ),
  markRetry: plan<{
    id: number;
    last_status: number | null;
    last_error: string;
    next_attempt_at: Date;
    failed: boolean;
  }>(
    `UPDATE broker_webhook_deliveries SET status = CASE WHEN :failed::boolean THEN 'failed' ELSE 'pending' END,
       last_status = :last_status, last_error = :last_error, next_attempt_at = :next_attempt_at, lease_expires_at = NULL
     WHERE id = :id`,
    "broker_delivery_retry",
  ),
  deliveries: plan<{ webhook_id: string; limit: number }>(
    `SELECT ${DELIVERY_COLUMNS} FROM broker_webhook_deliveries WHERE webhook_id = :webhook_id ORDER BY id DESC LIMIT :limit`,
    "broker_delivery_list",
  ),
};
