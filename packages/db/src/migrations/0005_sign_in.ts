/**
 * Sign-in from apps (authorization code + PKCE, login and consent pages, OpenID Connect):
 * per-client sign-in settings, first-party login sessions (cookie hash only), remembered
 * consent, and authorization codes (hash only). A code keeps the family it started so that a
 * second use of the code can revoke it (RFC 6749 §4.1.2). Device authorizations (RFC 8628)
 * keep both their codes hashed; `status` moves pending → approved | denied → consumed.
 */
export const signInSchema = `
ALTER TABLE clients ADD COLUMN skip_consent boolean NOT NULL DEFAULT false;
ALTER TABLE clients ADD COLUMN refresh_token_policy text NOT NULL DEFAULT 'always';

CREATE TABLE login_sessions (
  id uuid PRIMARY KEY,
  hash bytea NOT NULL UNIQUE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  auth_time timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  ended_at timestamptz,
  -- the user's credentials version the login verified: a password change ends the login
  credentials_version integer NOT NULL
);
CREATE INDEX login_sessions_user ON login_sessions (user_id);

CREATE TABLE consents (
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  client_id text NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
  scope text NOT NULL,
  granted_at timestamptz NOT NULL,
  PRIMARY KEY (user_id, client_id)
);

CREATE TABLE authorization_codes (
  hash bytea PRIMARY KEY,
  client_id text NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  login_session_id uuid REFERENCES login_sessions(id) ON DELETE SET NULL,
  redirect_uri text NOT NULL,
  scope text NOT NULL,
  code_challenge text NOT NULL,
  nonce text,
  auth_time timestamptz NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  consumed_at timestamptz,
  reused_at timestamptz,
  family_id uuid,
  credentials_version integer NOT NULL
);
CREATE INDEX authorization_codes_login_session ON authorization_codes (login_session_id);
CREATE INDEX authorization_codes_expires ON authorization_codes (expires_at);

CREATE TABLE device_codes (
  hash bytea PRIMARY KEY,
  user_code_hash bytea NOT NULL UNIQUE,
  client_id text NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
  scope text NOT NULL,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  poll_interval integer NOT NULL,
  next_poll_at timestamptz NOT NULL,
  status text NOT NULL DEFAULT 'pending',
  user_id uuid REFERENCES users(id) ON DELETE CASCADE,
  login_session_id uuid REFERENCES login_sessions(id) ON DELETE SET NULL,
  auth_time timestamptz,
  family_id uuid,
  credentials_version integer
);
CREATE INDEX device_codes_expires ON device_codes (expires_at);
`;
