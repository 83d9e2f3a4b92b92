/**
 * Issuer schema: users, clients, signing keys, refresh-token families and their tokens, audit.
 * A family is one login (the access token's `sid`); its tokens form one linear chain, which
 * `refresh_tokens_one_live_per_family` enforces in the database itself.
 */
export const issuerSchema = `
CREATE TABLE users (
  id uuid PRIMARY KEY,
  username text NOT NULL UNIQUE,
  email text,
  password_hash text NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE clients (
  client_id text PRIMARY KEY,
  client_name text,
  secret_hash bytea,
  token_endpoint_auth_method text NOT NULL,
  grant_types text[] NOT NULL,
  redirect_uris text[] NOT NULL DEFAULT '{}',
  scope text NOT NULL DEFAULT '',
  access_token_ttl integer NOT NULL,
  refresh_token_idle_ttl integer NOT NULL,
  refresh_token_absolute_ttl integer NOT NULL,
  rotate_refresh_tokens boolean NOT NULL,
  refresh_token_reuse_grace integer NOT NULL,
  max_sessions_per_user integer NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE signing_keys (
  kid text PRIMARY KEY,
  alg text NOT NULL,
  public_jwk jsonb NOT NULL,
  private_key bytea NOT NULL,
  created_at timestamptz NOT NULL,
  retired_at timestamptz,
  delete_after timestamptz
);

CREATE TABLE families (
  id uuid PRIMARY KEY,
  user_id uuid REFERENCES users(id) ON DELETE CASCADE,
  client_id text NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
  scope text NOT NULL,
  created_at timestamptz NOT NULL,
  absolute_expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoked_reason text
);
CREATE INDEX families_user_client ON families (user_id, client_id, created_at);

CREATE TABLE refresh_tokens (
  hash bytea PRIMARY KEY,
  family_id uuid NOT NULL REFERENCES families(id) ON DELETE CASCADE,
  generation integer NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  last_used_at timestamptz,
  at_jti uuid NOT NULL,
  at_kid text NOT NULL,
  at_expires_at timestamptz NOT NULL,
  at_scope text,
  consumed_at timestamptz,
  successor_hash bytea,
  successor_sealed bytea,
  replay_until timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE UNIQUE INDEX refresh_tokens_one_live_per_family ON refresh_tokens (family_id) WHERE consumed_at IS NULL;
CREATE INDEX refresh_tokens_sealed ON refresh_tokens (replay_until) WHERE successor_sealed IS NOT NULL;

CREATE TABLE audit_events (
  id bigserial PRIMARY KEY,
  at timestamptz NOT NULL,
  type text NOT NULL,
  user_id uuid,
  client_id text,
  family_id uuid,
  token_id text,
  ip text,
  detail jsonb
);
CREATE INDEX audit_events_family ON audit_events (family_id);
CREATE INDEX audit_events_at ON audit_events (at);
`;
