/**
 * Administrators and disabled accounts. `is_admin` lets a user be granted the
 * `evergreen:admin` scope (the dashboard's sign-in through the issuer); `disabled_at` keeps a
 * user from logging in (the statement that sets it also ends their sessions, through the
 * credentials version of migration 0002). The audit index serves the per-client filter.
 */
export const adminUsersSchema = `
ALTER TABLE users ADD COLUMN is_admin boolean NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN disabled_at timestamptz;
CREATE INDEX audit_events_client ON audit_events (client_id, id);
`;
