/**
 * DPoP (RFC 9449) and refresh-time ID tokens. A family opened by a public client with a DPoP
 * proof keeps the key's thumbprint (`dpop_jkt`): every refresh of it must prove that key. Each
 * refresh token row records the thumbprint its access token was bound to (`at_jkt`), so a
 * grace-window replay reproduces the same token. Families opened by a browser sign-in keep the
 * login session and its `auth_time` for the ID token a refresh returns (OIDC Core §12.2).
 * Clients may require DPoP (`dpop_bound_access_tokens`, RFC 9449 §5.2); an authorization code
 * may be bound to a key at /authorize (`dpop_jkt`, RFC 9449 §10). Pushed authorization requests
 * (RFC 9126) keep the validated query under the hash of their `request_uri` for a minute; a
 * client may be made to use them (`require_pushed_authorization_requests`).
 */
export const dpopSchema = `
ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens boolean NOT NULL DEFAULT false;
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests boolean NOT NULL DEFAULT false;
ALTER TABLE families ADD COLUMN dpop_jkt text;
ALTER TABLE families ADD COLUMN auth_time timestamptz;
ALTER TABLE families ADD COLUMN login_session_id uuid REFERENCES login_sessions(id) ON DELETE SET NULL;
CREATE INDEX families_login_session ON families (login_session_id);
ALTER TABLE refresh_tokens ADD COLUMN at_jkt text;
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt text;

CREATE TABLE pushed_authorization_requests (
  hash bytea PRIMARY KEY,
  client_id text NOT NULL REFERENCES clients(client_id) ON DELETE CASCADE,
  query text NOT NULL,
  expires_at timestamptz NOT NULL
);
CREATE INDEX pushed_authorization_requests_expires ON pushed_authorization_requests (expires_at);
`;
