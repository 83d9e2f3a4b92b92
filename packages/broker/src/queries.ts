import type { Queryable, QueryResult } from "@evergreen/db";

/**
 * Every SQL statement the broker runs, in one place (after pg-boss's plans.ts). Each builder
 * takes named values and returns a named statement with its parameters, so no caller lines up
 * `$7` by hand. Time is always a parameter (the injected clock), never now().
 */
export interface Query {
  name: string;
  text: string;
  values: unknown[];
}

/** Runs a built statement (a named prepared statement on PostgreSQL). */
export function run<T = Record<string, unknown>>(db: Queryable, q: Query): Promise<QueryResult<T>> {
  return db.query<T>({ name: q.name, text: q.text }, q.values);
}

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
  extra_body: Record<string, unknown>;
  extra_headers: Record<string, string>;
  response: Record<string, unknown>;
  now: Date;
}

function providerParams(p: ProviderValues): unknown[] {
  return [
    p.name,
    p.token_url,
    p.client_id,
    p.client_secret,
    p.auth_style,
    p.body_format,
    p.refresh_ahead,
    p.default_ttl,
    p.max_concurrency,
    JSON.stringify(p.extra_body),
    JSON.stringify(p.extra_headers),
    JSON.stringify(p.response),
    p.now,
  ];
}

export const providerQueries = {
  insert: (p: ProviderValues): Query => ({
    name: "broker_provider_insert",
    text: `INSERT INTO broker_providers (${PROVIDER_COLUMNS})
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12::jsonb, $13, $13)
           RETURNING ${PROVIDER_COLUMNS}`,
    values: providerParams(p),
  }),
  /** Insert or replace by name (the providers file); keeps created_at. */
  upsert: (p: ProviderValues): Query => ({
    name: "broker_provider_upsert",
    text: `INSERT INTO broker_providers (${PROVIDER_COLUMNS})
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb, $12::jsonb, $13, $13)
           ON CONFLICT (name) DO UPDATE SET token_url = EXCLUDED.token_url, client_id = EXCLUDED.client_id,
             client_secret = EXCLUDED.client_secret, auth_style = EXCLUDED.auth_style,
             body_format = EXCLUDED.body_format, refresh_ahead = EXCLUDED.refresh_ahead,
             default_ttl = EXCLUDED.default_ttl, max_concurrency = EXCLUDED.max_concurrency,
             extra_body = EXCLUDED.extra_body, extra_headers = EXCLUDED.extra_headers,
             response = EXCLUDED.response, updated_at = EXCLUDED.updated_at
           RETURNING ${PROVIDER_COLUMNS}`,
    values: providerParams(p),
  }),
  update: (p: ProviderValues): Query => ({
    name: "broker_provider_update",
    text: `UPDATE broker_providers SET token_url = $2, client_id = $3, client_secret = $4, auth_style = $5,
             body_format = $6, refresh_ahead = $7, default_ttl = $8, max_concurrency = $9,
             extra_body = $10::jsonb, extra_headers = $11::jsonb, response = $12::jsonb, updated_at = $13
           WHERE name = $1 RETURNING ${PROVIDER_COLUMNS}`,
    values: providerParams(p),
  }),
  byName: ({ name }: { name: string }): Query => ({
    name: "broker_provider_by_name",
    text: `SELECT ${PROVIDER_COLUMNS} FROM broker_providers WHERE name = $1`,
    values: [name],
  }),
  list: (): Query => ({
    name: "broker_provider_list",
    text: `SELECT ${PROVIDER_COLUMNS} FROM broker_providers ORDER BY name`,
    values: [],
  }),
  delete: ({ name }: { name: string }): Query => ({
    name: "broker_provider_delete",
    text: "DELETE FROM broker_providers WHERE name = $1 RETURNING name",
    values: [name],
  }),
  countConnections: ({ name }: { name: string }): Query => ({
    name: "broker_provider_count_connections",
    text: "SELECT count(*)::int AS n FROM broker_connections WHERE provider = $1",
    values: [name],
  }),
  /** Secrets sealed under another key than `keyId` (key rotation). */
  sealedWithOtherKey: ({ keyId }: { keyId: string }): Query => ({
    name: "broker_provider_other_key",
    text: `SELECT name, client_secret FROM broker_providers
           WHERE client_secret IS NOT NULL
             AND convert_from(substring(client_secret from 2 for get_byte(client_secret, 0)), 'UTF8') <> $1`,
    values: [keyId],
  }),
  setSecret: ({ name, secret }: { name: string; secret: Buffer }): Query => ({
    name: "broker_provider_set_secret",
    text: "UPDATE broker_providers SET client_secret = $2 WHERE name = $1",
    values: [name, secret],
  }),
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

export const connectionQueries = {
  insert: (c: {
    id: string;
    provider: string;
    access: Buffer;
    refresh: Buffer | null;
    tokenType: string;
    keyId: string;
    expiresAt: Date;
    nextRefreshAt: Date;
    metadata: Record<string, unknown>;
    now: Date;
  }): Query => ({
    name: "broker_connection_insert",
    text: `INSERT INTO broker_connections (id, provider, status, access_token, refresh_token, token_type, key_id,
             expires_at, next_refresh_at, metadata, created_at, updated_at)
           VALUES ($1, $2, 'active', $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $10) RETURNING ${CONNECTION_COLUMNS}`,
    values: [
      c.id,
      c.provider,
      c.access,
      c.refresh,
      c.tokenType,
      c.keyId,
      c.expiresAt,
      c.nextRefreshAt,
      JSON.stringify(c.metadata),
      c.now,
    ],
  }),
  byId: ({ id }: { id: string }): Query => ({
    name: "broker_connection_by_id",
    text: `SELECT ${CONNECTION_COLUMNS} FROM broker_connections WHERE id = $1`,
    values: [id],
  }),
  /** Keyset paging by id; `provider` and `status` filter when not null. */
  list: (q: {
    provider: string | null;
    status: string | null;
    after: string | null;
    limit: number;
  }): Query => ({
    name: "broker_connection_list",
    text: `SELECT ${CONNECTION_COLUMNS} FROM broker_connections
           WHERE ($1::text IS NULL OR provider = $1) AND ($2::text IS NULL OR status = $2)
             AND ($3::uuid IS NULL OR id > $3)
           ORDER BY id LIMIT $4`,
    values: [q.provider, q.status, q.after, q.limit],
  }),
  delete: ({ id }: { id: string }): Query => ({
    name: "broker_connection_delete",
    text: "DELETE FROM broker_connections WHERE id = $1 RETURNING id",
    values: [id],
  }),
  /** Replaces the tokens by hand (re-authorisation): back to active, any lease and intent voided. */
  reauth: (c: {
    id: string;
    access: Buffer;
    refresh: Buffer | null;
    keyId: string;
    expiresAt: Date;
    nextRefreshAt: Date;
    now: Date;
  }): Query => ({
    name: "broker_connection_reauth",
    text: `UPDATE broker_connections SET status = 'active', reason = NULL, access_token = $2, refresh_token = $3,
             key_id = $4, expires_at = $5, next_refresh_at = $6, generation = generation + 1, failure_count = 0,
             last_error = NULL, lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL, intent_at = NULL,
             updated_at = $7
           WHERE id = $1 RETURNING ${CONNECTION_COLUMNS}`,
    values: [c.id, c.access, c.refresh, c.keyId, c.expiresAt, c.nextRefreshAt, c.now],
  }),
  /** Makes a connection due now (admin "refresh now"); a needs_reauth connection stays as it is. */
  makeDue: ({ id, now }: { id: string; now: Date }): Query => ({
    name: "broker_connection_make_due",
    text: `UPDATE broker_connections SET next_refresh_at = $2, updated_at = $2
           WHERE id = $1 AND status IN ('active', 'degraded', 'refreshing') RETURNING id`,
    values: [id, now],
  }),
  /**
   * The worker's claim: due connections whose lease is free or lapsed, locked with SKIP LOCKED
   * so concurrent workers take disjoint sets, each given a fresh lease token.
   */
  claimDue: (c: {
    now: Date;
    leaseUntil: Date;
    owner: string;
    limit: number;
    /** Providers whose per-process call limit is saturated here: their connections stay for others. */
    excludeProviders?: string[];
  }): Query => ({
    name: "broker_connection_claim_due",
    text: `WITH due AS (
             SELECT id, lease_token AS old_lease FROM broker_connections
             WHERE status IN ('active', 'degraded', 'refreshing') AND next_refresh_at <= $1
               AND (lease_expires_at IS NULL OR lease_expires_at <= $1)
               AND NOT (provider = ANY($5::text[]))
             ORDER BY next_refresh_at LIMIT $4 FOR UPDATE SKIP LOCKED)
           UPDATE broker_connections c SET lease_token = gen_random_uuid(), lease_owner = $3,
             lease_expires_at = $2, status = 'refreshing', updated_at = $1
           FROM due WHERE c.id = due.id
           RETURNING ${C_COLUMNS}, due.old_lease IS NOT NULL AS stolen`,
    values: [c.now, c.leaseUntil, c.owner, c.limit, c.excludeProviders ?? []],
  }),
  /**
   * Hands a claimed connection back untouched (no intent was marked, nothing was sent), fenced
   * by its lease: it is due again at once for any worker, and keeps its intent if it had one.
   * It stays `refreshing` (a refresh is still owed), as after a lapsed lease.
   */
  releaseClaim: (c: { id: string; leaseToken: string; generation: number; now: Date }): Query => ({
    name: "broker_connection_release_claim",
    text: `UPDATE broker_connections SET lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL,
             updated_at = $4
           WHERE id = $1 AND lease_token = $2 AND generation = $3 RETURNING id`,
    values: [c.id, c.leaseToken, c.generation, c.now],
  }),
  /**
   * The same claim for one connection, due or not (a consumer's or an admin's refresh now),
   * only while its token still expires before `needBefore`: a consumer that read the row just
   * before another refresh landed does not refresh a second time.
   */
  claimOne: (c: { id: string; now: Date; leaseUntil: Date; owner: string; needBefore: Date }): Query => ({
    name: "broker_connection_claim_one",
    text: `WITH one AS (
             SELECT id, lease_token AS old_lease FROM broker_connections
             WHERE id = $1 AND status IN ('active', 'degraded', 'refreshing')
               AND (lease_expires_at IS NULL OR lease_expires_at <= $2) AND expires_at < $5
             FOR UPDATE SKIP LOCKED)
           UPDATE broker_connections c SET lease_token = gen_random_uuid(), lease_owner = $4,
             lease_expires_at = $3, status = 'refreshing', updated_at = $2
           FROM one WHERE c.id = one.id
           RETURNING ${C_COLUMNS}, one.old_lease IS NOT NULL AS stolen`,
    values: [c.id, c.now, c.leaseUntil, c.owner, c.needBefore],
  }),
  /**
   * Commits the refresh intent right before the upstream call, fenced like the final write, and
   * renews the lease from now: the call (bounded by a timeout shorter than the lease) then
   * always ends before the lease can lapse, however long the claim waited for a slot.
   */
  markIntent: (c: {
    id: string;
    leaseToken: string;
    generation: number;
    now: Date;
    leaseUntil: Date;
  }): Query => ({
    name: "broker_connection_mark_intent",
    text: `UPDATE broker_connections SET intent_at = $4, lease_expires_at = $5
           WHERE id = $1 AND lease_token = $2 AND generation = $3 RETURNING id`,
    values: [c.id, c.leaseToken, c.generation, c.now, c.leaseUntil],
  }),
  /**
   * The fenced success write: only the holder of this lease, on the generation it claimed, may
   * store new tokens. A missing refresh token (`refresh` null) keeps the stored one. One
   * statement (atomic on its own) also records the `refreshed` event (and `recovered` after
   * failures), queues their webhook deliveries and notifies waiting consumers: one round trip
   * per refresh. No row comes back when the fence refused the write, and then nothing happened.
   */
  writeSuccess: (c: {
    id: string;
    leaseToken: string;
    generation: number;
    access: Buffer;
    refresh: Buffer | null;
    tokenType: string;
    keyId: string;
    expiresAt: Date;
    nextRefreshAt: Date;
    lastResponse: Buffer | null;
    now: Date;
    eventId: string;
    recoveredEventId: string;
    recovered: boolean;
    upstreamStatus: number;
    durationMs: number;
  }): Query => ({
    name: "broker_connection_write_success",
    text: `WITH w AS (UPDATE broker_connections SET status = 'active', reason = NULL, access_token = $4,
             refresh_token = COALESCE($5, refresh_token), token_type = $6, key_id = $7, expires_at = $8,
             next_refresh_at = $9, last_response = $10, generation = generation + 1, failure_count = 0,
             last_error = NULL, last_refreshed_at = $11, lease_token = NULL, lease_owner = NULL,
             lease_expires_at = NULL, intent_at = NULL, updated_at = $11
           WHERE id = $1 AND lease_token = $2 AND generation = $3
           RETURNING id, provider, generation, expires_at),
         ev AS (
           SELECT * FROM (VALUES ($12::uuid, 'refreshed'), ($13::uuid, 'recovered')) AS t (event_id, type)
           WHERE t.type = 'refreshed' OR $14::boolean),
         e AS (
           INSERT INTO broker_events (event_id, connection_id, type, generation, upstream_status, duration_ms, error, at)
           SELECT ev.event_id, w.id, ev.type, w.generation, $15::int, $16::int, NULL, $11 FROM w, ev),
         d AS (
           INSERT INTO broker_webhook_deliveries (webhook_id, event_id, event_type, payload, status, next_attempt_at,
             created_at)
           SELECT h.id, ev.event_id, ev.type,
             jsonb_build_object('id', ev.event_id, 'type', ev.type, 'connection_id', w.id, 'provider', w.provider,
               'generation', w.generation, 'status', 'active', 'reason', NULL, 'upstream_status', $15::int,
               'error', NULL, 'at', $17::text),
             'pending', $11, $11
           FROM w, ev, broker_webhooks h WHERE cardinality(h.events) = 0 OR ev.type = ANY (h.events)),
         n AS (SELECT pg_notify('${BROKER_CHANNEL}', 'changed:' || w.id) FROM w)
       SELECT w.generation, w.expires_at, (SELECT count(*) FROM n) AS notified FROM w`,
    values: [
      c.id,
      c.leaseToken,
      c.generation,
      c.access,
      c.refresh,
      c.tokenType,
      c.keyId,
      c.expiresAt,
      c.nextRefreshAt,
      c.lastResponse,
      c.now,
      c.eventId,
      c.recoveredEventId,
      c.recovered,
      c.upstreamStatus,
      c.durationMs,
      c.now.toISOString(),
    ],
  }),
  /**
   * The fenced failure write. `keepIntent` leaves the intent unresolved when the provider may
   * have acted without our seeing the answer (timeout, network error), so the next attempt
   * knows a rotation may have been lost.
   */
  writeFailure: (c: {
    id: string;
    leaseToken: string;
    generation: number;
    status: ConnectionStatus;
    reason: string | null;
    lastError: string;
    nextRefreshAt: Date;
    keepIntent: boolean;
    lastResponse: Buffer | null;
    now: Date;
  }): Query => ({
    name: "broker_connection_write_failure",
    text: `UPDATE broker_connections SET status = $4, reason = $5, last_error = $6, next_refresh_at = $7,
             failure_count = failure_count + 1, lease_token = NULL, lease_owner = NULL, lease_expires_at = NULL,
             intent_at = CASE WHEN $8::boolean THEN intent_at ELSE NULL END,
             last_response = COALESCE($9, last_response), updated_at = $10
           WHERE id = $1 AND lease_token = $2 AND generation = $3
           RETURNING failure_count`,
    values: [
      c.id,
      c.leaseToken,
      c.generation,
      c.status,
      c.reason,
      c.lastError,
      c.nextRefreshAt,
      c.keepIntent,
      c.lastResponse,
      c.now,
    ],
  }),
  /** Connections due now and not leased (the backlog gauge). */
  dueCount: ({ now }: { now: Date }): Query => ({
    name: "broker_connection_due_count",
    text: `SELECT count(*)::int AS n FROM broker_connections
           WHERE status IN ('active', 'degraded', 'refreshing') AND next_refresh_at <= $1
             AND (lease_expires_at IS NULL OR lease_expires_at <= $1)`,
    values: [now],
  }),
  /** The earliest scheduled refresh (the worker sleeps until then when it is sooner than a poll). */
  nextDue: (): Query => ({
    name: "broker_connection_next_due",
    text: `SELECT min(next_refresh_at) AS at FROM broker_connections WHERE status IN ('active', 'degraded', 'refreshing')`,
    values: [],
  }),
  /** A batch of connections sealed under another key than `keyId` (key rotation). */
  sealedWithOtherKey: ({ keyId, limit }: { keyId: string; limit: number }): Query => ({
    name: "broker_connection_other_key",
    text: `SELECT id, access_token, refresh_token, last_response, key_id FROM broker_connections
           WHERE key_id <> $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`,
    values: [keyId, limit],
  }),
  /** Re-sealed tokens; the token values and the generation are unchanged. */
  reseal: (c: {
    id: string;
    fromKeyId: string;
    access: Buffer;
    refresh: Buffer | null;
    lastResponse: Buffer | null;
    keyId: string;
  }): Query => ({
    name: "broker_connection_reseal",
    text: `UPDATE broker_connections SET access_token = $3, refresh_token = $4, last_response = $5, key_id = $6
           WHERE id = $1 AND key_id = $2`,
    values: [c.id, c.fromKeyId, c.access, c.refresh, c.lastResponse, c.keyId],
  }),
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
  insert: (e: {
    eventId: string;
    connectionId: string;
    type: BrokerEventType;
    generation: number;
    upstreamStatus: number | null;
    durationMs: number | null;
    error: string | null;
    at: Date;
  }): Query => ({
    name: "broker_event_insert",
    text: `INSERT INTO broker_events (event_id, connection_id, type, generation, upstream_status, duration_ms, error, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    values: [e.eventId, e.connectionId, e.type, e.generation, e.upstreamStatus, e.durationMs, e.error, e.at],
  }),
  list: ({ connectionId, limit }: { connectionId: string; limit: number }): Query => ({
    name: "broker_event_list",
    text: `SELECT id, event_id, connection_id, type, generation, upstream_status, duration_ms, error, at
           FROM broker_events WHERE connection_id = $1 ORDER BY id DESC LIMIT $2`,
    values: [connectionId, limit],
  }),
  notify: ({ payload }: { payload: string }): Query => ({
    name: "broker_notify",
    text: "SELECT pg_notify($1, $2)",
    values: [BROKER_CHANNEL, payload],
  }),
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
  insert: (k: {
    id: string;
    name: string;
    hash: Buffer;
    prefix: string;
    connections: string[];
    providers: string[];
    now: Date;
  }): Query => ({
    name: "broker_api_key_insert",
    text: `INSERT INTO broker_api_keys (${API_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5::uuid[], $6::text[], $7)
           RETURNING ${API_KEY_COLUMNS}`,
    values: [k.id, k.name, k.hash, k.prefix, k.connections, k.providers, k.now],
  }),
  byHash: ({ hash }: { hash: Buffer }): Query => ({
    name: "broker_api_key_by_hash",
    text: `SELECT ${API_KEY_COLUMNS} FROM broker_api_keys WHERE key_hash = $1`,
    values: [hash],
  }),
  byId: ({ id }: { id: string }): Query => ({
    name: "broker_api_key_by_id",
    text: `SELECT ${API_KEY_COLUMNS} FROM broker_api_keys WHERE id = $1`,
    values: [id],
  }),
  list: (): Query => ({
    name: "broker_api_key_list",
    text: `SELECT ${API_KEY_COLUMNS} FROM broker_api_keys ORDER BY created_at, id`,
    values: [],
  }),
  delete: ({ id }: { id: string }): Query => ({
    name: "broker_api_key_delete",
    text: "DELETE FROM broker_api_keys WHERE id = $1 RETURNING id",
    values: [id],
  }),
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

export const webhookQueries = {
  insert: (w: { id: string; url: string; secret: Buffer; events: string[]; now: Date }): Query => ({
    name: "broker_webhook_insert",
    text: `INSERT INTO broker_webhooks (id, url, secret, events, created_at) VALUES ($1, $2, $3, $4::text[], $5)
           RETURNING id, url, secret, events, created_at`,
    values: [w.id, w.url, w.secret, w.events, w.now],
  }),
  byId: ({ id }: { id: string }): Query => ({
    name: "broker_webhook_by_id",
    text: "SELECT id, url, secret, events, created_at FROM broker_webhooks WHERE id = $1",
    values: [id],
  }),
  byUrl: ({ url }: { url: string }): Query => ({
    name: "broker_webhook_by_url",
    text: "SELECT id, url, secret, events, created_at FROM broker_webhooks WHERE url = $1 ORDER BY created_at",
    values: [url],
  }),
  setSecret: ({ id, secret }: { id: string; secret: Buffer }): Query => ({
    name: "broker_webhook_set_secret",
    text: "UPDATE broker_webhooks SET secret = $2 WHERE id = $1",
    values: [id, secret],
  }),
  list: (): Query => ({
    name: "broker_webhook_list",
    text: "SELECT id, url, secret, events, created_at FROM broker_webhooks ORDER BY created_at, id",
    values: [],
  }),
  delete: ({ id }: { id: string }): Query => ({
    name: "broker_webhook_delete",
    text: "DELETE FROM broker_webhooks WHERE id = $1 RETURNING id",
    values: [id],
  }),
  /** One pending delivery per webhook subscribed to this event type (an outbox row, same transaction as the event). */
  enqueue: (d: { eventId: string; type: string; payload: Record<string, unknown>; now: Date }): Query => ({
    name: "broker_delivery_enqueue",
    text: `INSERT INTO broker_webhook_deliveries (webhook_id, event_id, event_type, payload, status, next_attempt_at, created_at)
           SELECT id, $1, $2, $3::jsonb, 'pending', $4, $4 FROM broker_webhooks
           WHERE cardinality(events) = 0 OR $2 = ANY(events)`,
    values: [d.eventId, d.type, JSON.stringify(d.payload), d.now],
  }),
  /** Due deliveries, leased so concurrent dispatchers take disjoint sets. */
  claimDeliveries: (d: { now: Date; leaseUntil: Date; limit: number }): Query => ({
    name: "broker_delivery_claim",
    text: `WITH due AS (
             SELECT id FROM broker_webhook_deliveries
             WHERE status = 'pending' AND next_attempt_at <= $1 AND (lease_expires_at IS NULL OR lease_expires_at <= $1)
             ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
           UPDATE broker_webhook_deliveries d SET lease_expires_at = $2, attempts = d.attempts + 1
           FROM due WHERE d.id = due.id
           RETURNING d.id, d.webhook_id, d.event_id, d.event_type, d.payload, d.attempts`,
    values: [d.now, d.leaseUntil, d.limit],
  }),
  markDelivered: (d: { id: number; status: number; now: Date }): Query => ({
    name: "broker_delivery_delivered",
    text: `UPDATE broker_webhook_deliveries SET status = 'delivered', last_status = $2, last_error = NULL,
             delivered_at = $3, lease_expires_at = NULL WHERE id = $1`,
    values: [d.id, d.status, d.now],
  }),
  markRetry: (d: {
    id: number;
    status: number | null;
    error: string;
    nextAttemptAt: Date;
    failed: boolean;
  }): Query => ({
    name: "broker_delivery_retry",
    text: `UPDATE broker_webhook_deliveries SET status = CASE WHEN $5::boolean THEN 'failed' ELSE 'pending' END,
             last_status = $2, last_error = $3, next_attempt_at = $4, lease_expires_at = NULL WHERE id = $1`,
    values: [d.id, d.status, d.error, d.nextAttemptAt, d.failed],
  }),
  deliveries: ({ webhookId, limit }: { webhookId: string; limit: number }): Query => ({
    name: "broker_delivery_list",
    text: `SELECT ${DELIVERY_COLUMNS} FROM broker_webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2`,
    values: [webhookId, limit],
  }),
};
