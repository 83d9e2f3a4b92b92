/**
 * The broker: upstream providers, the connections it keeps fresh, their audit trail, consumer
 * API keys and webhooks. Tokens and secrets are AES-256-GCM sealed (bytea, key id inside);
 * API keys are stored as SHA-256 only.
 */
export const brokerSchema = `
CREATE TABLE broker_providers (
  name text PRIMARY KEY,
  token_url text NOT NULL,
  client_id text,
  client_secret bytea,
  auth_style text NOT NULL CHECK (auth_style IN ('basic', 'body')),
  body_format text NOT NULL CHECK (body_format IN ('form', 'json')),
  refresh_ahead integer NOT NULL,
  default_ttl integer NOT NULL,
  max_concurrency integer,
  extra_body jsonb NOT NULL DEFAULT '{}',
  extra_headers jsonb NOT NULL DEFAULT '{}',
  response jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE broker_connections (
  id uuid PRIMARY KEY,
  provider text NOT NULL REFERENCES broker_providers (name) ON DELETE RESTRICT,
  status text NOT NULL CHECK (status IN ('active', 'refreshing', 'degraded', 'needs_reauth', 'error')),
  reason text,
  access_token bytea NOT NULL,
  refresh_token bytea,
  token_type text NOT NULL DEFAULT 'Bearer',
  key_id text NOT NULL,
  expires_at timestamptz NOT NULL,
  next_refresh_at timestamptz NOT NULL,
  generation bigint NOT NULL DEFAULT 1,
  failure_count integer NOT NULL DEFAULT 0,
  last_error text,
  last_refreshed_at timestamptz,
  -- The fenced lease: a fresh token per claim; the final write must present it and the generation.
  lease_token uuid,
  lease_owner text,
  lease_expires_at timestamptz,
  -- The refresh intent: committed before the upstream call, cleared by its outcome.
  intent_at timestamptz,
  last_response bytea,
  metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE INDEX broker_connections_due ON broker_connections (next_refresh_at)
  WHERE status IN ('active', 'refreshing', 'degraded');
CREATE INDEX broker_connections_provider ON broker_connections (provider, id);
CREATE INDEX broker_connections_key ON broker_connections (key_id);

CREATE TABLE broker_events (
  id bigserial PRIMARY KEY,
  event_id uuid NOT NULL,
  connection_id uuid NOT NULL,
  type text NOT NULL,
  generation bigint NOT NULL,
  upstream_status integer,
  duration_ms integer,
  error text,
  at timestamptz NOT NULL
);
CREATE INDEX broker_events_connection ON broker_events (connection_id, id);

CREATE TABLE broker_api_keys (
  id uuid PRIMARY KEY,
  name text NOT NULL,
  key_hash bytea NOT NULL UNIQUE,
  key_prefix text NOT NULL,
  connections uuid[] NOT NULL DEFAULT '{}',
  providers text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL
);

CREATE TABLE broker_webhooks (
  id uuid PRIMARY KEY,
  url text NOT NULL,
  secret bytea NOT NULL,
  events text[] NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL
);

CREATE TABLE broker_webhook_deliveries (
  id bigserial PRIMARY KEY,
  webhook_id uuid NOT NULL REFERENCES broker_webhooks (id) ON DELETE CASCADE,
  event_id uuid NOT NULL,
  event_type text NOT NULL,
  payload jsonb NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  lease_expires_at timestamptz,
  last_status integer,
  last_error text,
  created_at timestamptz NOT NULL,
  delivered_at timestamptz
);
CREATE INDEX broker_webhook_deliveries_due ON broker_webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX broker_webhook_deliveries_hook ON broker_webhook_deliveries (webhook_id, id);
`;
