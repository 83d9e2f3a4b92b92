import { statement } from "@evergreen/db";

/**
 * Every SQL statement the issuer runs, in one place (after pg-boss's plans.ts): the whole
 * data access of the issuer reads in one sitting. Time is always a parameter (the injected
 * clock), never now(), so tests can move it.
 */

export const keyQueries = {
  // Serialises key generation and rotation across processes.
  lockKeys: "SELECT pg_advisory_xact_lock(1802135929)",
  countActive: "SELECT count(*)::int AS n FROM signing_keys WHERE retired_at IS NULL",
  listKeys: `SELECT kid, alg, public_jwk, private_key, created_at, retired_at, delete_after
               FROM signing_keys WHERE delete_after IS NULL OR delete_after > $1`,
  retireActive: "UPDATE signing_keys SET retired_at = $1, delete_after = $2 WHERE retired_at IS NULL",
  insertKey: `INSERT INTO signing_keys (kid, alg, public_jwk, private_key, created_at)
              VALUES ($1, $2, $3::jsonb, $4, $5)`,
  deleteExpired: "DELETE FROM signing_keys WHERE delete_after IS NOT NULL AND delete_after <= $1",
};

const USER_COLUMNS = "id, username, email, created_at, updated_at";

export const userQueries = {
  insert: `INSERT INTO users (id, username, email, password_hash, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $5) RETURNING ${USER_COLUMNS}`,
  byUsername: statement(
    "user_by_username",
    `SELECT ${USER_COLUMNS}, password_hash FROM users WHERE username = $1`,
  ),
  /** What a password login needs: the hash and the credentials version it verifies. */
  forLogin: statement(
    "user_for_login",
    "SELECT id, password_hash, credentials_version FROM users WHERE username = $1",
  ),
  byId: statement("user_by_id", `SELECT ${USER_COLUMNS} FROM users WHERE id = $1`),
  list: `SELECT ${USER_COLUMNS} FROM users ORDER BY created_at, username LIMIT $1 OFFSET $2`,
  /**
   * $5 new password hash or null; $7 true: the change ends every session (the credentials
   * version moves in this same statement, so sessions are dead the moment it commits, whatever
   * happens after).
   */
  update: `UPDATE users SET username = COALESCE($2, username), email = CASE WHEN $3::boolean THEN $4 ELSE email END,
             password_hash = COALESCE($5, password_hash), updated_at = $6,
             credentials_version = credentials_version + CASE WHEN $5::text IS NOT NULL AND $7::boolean THEN 1 ELSE 0 END
           WHERE id = $1 RETURNING ${USER_COLUMNS}`,
  delete: "DELETE FROM users WHERE id = $1 RETURNING id",
};

export const CLIENT_COLUMNS = `client_id, client_name, secret_hash, token_endpoint_auth_method, grant_types, redirect_uris,
  scope, access_token_ttl, refresh_token_idle_ttl, refresh_token_absolute_ttl, rotate_refresh_tokens,
  refresh_token_reuse_grace, max_sessions_per_user, created_at, updated_at, skip_consent, refresh_token_policy`;

export const clientQueries = {
  insert: `INSERT INTO clients (client_id, client_name, secret_hash, token_endpoint_auth_method, grant_types,
             redirect_uris, scope, access_token_ttl, refresh_token_idle_ttl, refresh_token_absolute_ttl,
             rotate_refresh_tokens, refresh_token_reuse_grace, max_sessions_per_user, created_at, updated_at,
             skip_consent, refresh_token_policy)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16) RETURNING ${CLIENT_COLUMNS}`,
  byId: statement("client_by_id", `SELECT ${CLIENT_COLUMNS} FROM clients WHERE client_id = $1`),
  list: `SELECT ${CLIENT_COLUMNS} FROM clients ORDER BY created_at, client_id LIMIT $1 OFFSET $2`,
  update: `UPDATE clients SET client_name = $2, secret_hash = $3, token_endpoint_auth_method = $4, grant_types = $5,
             redirect_uris = $6, scope = $7, access_token_ttl = $8, refresh_token_idle_ttl = $9,
             refresh_token_absolute_ttl = $10, rotate_refresh_tokens = $11, refresh_token_reuse_grace = $12,
             max_sessions_per_user = $13, updated_at = $14, skip_consent = $15, refresh_token_policy = $16
           WHERE client_id = $1 RETURNING ${CLIENT_COLUMNS}`,
  delete: "DELETE FROM clients WHERE client_id = $1 RETURNING client_id",
  /** The longest access-token lifetime of any client (signing-key overlap). */
  maxAccessTtl: "SELECT max(access_token_ttl)::int AS ttl FROM clients",
};

/**
 * Login: the family (one session, the token's `sid`), its first refresh token and the audit
 * event, in one statement. The family is stamped with the credentials version the login
 * verified, and only created while that version is still the user's: no row means the password
 * changed after it was checked.
 * $1 family id, $2 user id, $3 client id, $4 scope, $5 now, $6 absolute expiry, $7 token hash,
 * $8 token idle expiry, $9 access-token jti, $10 kid, $11 access-token expiry, $12 ip,
 * $13 credentials version verified
 */
const createFamily = statement(
  "create_family",
  `WITH fam AS (
     INSERT INTO families (id, user_id, client_id, scope, created_at, absolute_expires_at, credentials_version)
     SELECT $1, u.id, $3, $4, $5, $6, u.credentials_version FROM users u
      WHERE u.id = $2 AND u.credentials_version = $13
     RETURNING id
   ), tok AS (
     INSERT INTO refresh_tokens (hash, family_id, generation, created_at, expires_at, at_jti, at_kid, at_expires_at)
     SELECT $7, id, 1, $5, $8, $9, $10, $11 FROM fam
   ), ev AS (
     INSERT INTO audit_events (at, type, user_id, client_id, family_id, ip)
     SELECT $5, 'login', $2, $3, id, $12 FROM fam
   )
   SELECT id FROM fam`,
);

/**
 * The family's scope (f) within what its client (c) is registered for now, in the family's
 * order: narrowing a client narrows its live sessions at their next refresh, for good.
 */
const NARROWED_SCOPE = `array_to_string(ARRAY(
    SELECT s FROM unnest(string_to_array(f.scope, ' ')) WITH ORDINALITY AS x(s, i)
     WHERE s = ANY (string_to_array(c.scope, ' ')) ORDER BY i), ' ')`;

/** The family still belongs to the password that opened it (see migration 0002). */
const CREDENTIALS_CURRENT = "f.credentials_version = u.credentials_version";

/**
 * The hot path. One statement, one round trip: consume the presented token (a compare-and-set
 * on consumed_at IS NULL), insert its successor, and write the audit event. Zero rows means
 * "not this simple case" and the caller inspects why (see inspect). The family must still hold the
 * user's current credentials version, and its scope is cut down to what the client may still
 * have (stored back, so widening the client later does not bring old grants back).
 * $1 presented hash, $2 client id, $3 now, $4 successor hash, $5 successor sealed under a key
 * derived from the presented token, $6 access-token jti, $7 kid, $8 requested scope (text[] or
 * null: must be a subset of the family's narrowed scope), $9 access-token scope to record
 * (null = family's), $10 ip
 */
const rotate = statement(
  "rotate_refresh_token",
  `WITH consumed AS (
     UPDATE refresh_tokens t
        SET consumed_at = $3, successor_hash = $4, successor_sealed = $5,
            replay_until = $3 + make_interval(secs => c.refresh_token_reuse_grace)
       FROM families f JOIN clients c ON c.client_id = f.client_id JOIN users u ON u.id = f.user_id
      WHERE t.hash = $1 AND t.consumed_at IS NULL AND t.expires_at > $3
        AND f.id = t.family_id AND f.client_id = $2 AND f.revoked_at IS NULL AND f.absolute_expires_at > $3
        AND c.rotate_refresh_tokens AND ${CREDENTIALS_CURRENT}
        AND ($8::text[] IS NULL OR ($8::text[] <@ string_to_array(f.scope, ' ')
                                    AND $8::text[] <@ string_to_array(c.scope, ' ')))
     RETURNING t.family_id, t.generation, f.user_id, ${NARROWED_SCOPE} AS scope, f.scope AS stored_scope,
               f.absolute_expires_at, c.access_token_ttl, c.refresh_token_idle_ttl
   ), narrowed AS (
     UPDATE families SET scope = consumed.scope
       FROM consumed WHERE families.id = consumed.family_id AND consumed.scope <> consumed.stored_scope
   ), successor AS (
     INSERT INTO refresh_tokens (hash, family_id, generation, created_at, expires_at, at_jti, at_kid, at_expires_at, at_scope)
     SELECT $4, family_id, generation + 1, $3,
            LEAST($3 + make_interval(secs => refresh_token_idle_ttl), absolute_expires_at),
            $6, $7, $3 + make_interval(secs => access_token_ttl), $9
       FROM consumed
     RETURNING expires_at, at_expires_at
   ), ev AS (
     INSERT INTO audit_events (at, type, user_id, client_id, family_id, ip)
     SELECT $3, 'refresh', user_id, $2, family_id, $10 FROM consumed
   )
   SELECT c.family_id, c.user_id, c.scope, s.expires_at, s.at_expires_at
     FROM consumed c, successor s`,
);

/**
 * Refresh for clients that do not rotate: the same token slides its idle expiry (never past
 * the family's absolute limit) and records the new access token. Credentials version and scope
 * narrowing as in rotate.
 * $1 hash, $2 client id, $3 now, $4 jti, $5 kid, $6 requested scope text[] or null,
 * $7 access-token scope to record, $8 ip
 */
const slide = statement(
  "slide_refresh_token",
  `WITH used AS (
     UPDATE refresh_tokens t
        SET expires_at = LEAST($3 + make_interval(secs => c.refresh_token_idle_ttl), f.absolute_expires_at),
            last_used_at = $3, at_jti = $4, at_kid = $5,
            at_expires_at = $3 + make_interval(secs => c.access_token_ttl), at_scope = $7
       FROM families f JOIN clients c ON c.client_id = f.client_id JOIN users u ON u.id = f.user_id
      WHERE t.hash = $1 AND t.consumed_at IS NULL AND t.expires_at > $3
        AND f.id = t.family_id AND f.client_id = $2 AND f.revoked_at IS NULL AND f.absolute_expires_at > $3
        AND NOT c.rotate_refresh_tokens AND ${CREDENTIALS_CURRENT}
        AND ($6::text[] IS NULL OR ($6::text[] <@ string_to_array(f.scope, ' ')
                                    AND $6::text[] <@ string_to_array(c.scope, ' ')))
     RETURNING t.family_id, f.user_id, ${NARROWED_SCOPE} AS scope, f.scope AS stored_scope,
               t.expires_at, t.at_expires_at
   ), narrowed AS (
     UPDATE families SET scope = used.scope
       FROM used WHERE families.id = used.family_id AND used.scope <> used.stored_scope
   ), ev AS (
     INSERT INTO audit_events (at, type, user_id, client_id, family_id, ip)
     SELECT $3, 'refresh', user_id, $2, family_id, $8 FROM used
   )
   SELECT family_id, user_id, scope, expires_at, at_expires_at FROM used`,
);

/**
 * Everything needed to explain why a presented token did not simply rotate. `scope` is already
 * narrowed to the client's current registration; `credentials_current` is false once the
 * user's password changed after the family's login.
 */
const inspect = statement(
  "inspect_refresh_token",
  `SELECT t.family_id, t.generation, t.created_at, t.expires_at, t.consumed_at, t.successor_hash,
          t.successor_sealed, t.replay_until,
          f.user_id, f.client_id, ${NARROWED_SCOPE} AS scope, f.revoked_at, f.revoked_reason,
          f.absolute_expires_at, COALESCE(${CREDENTIALS_CURRENT}, false) AS credentials_current,
          c.scope AS client_scope,
          s.created_at AS s_created_at, s.expires_at AS s_expires_at, s.at_jti AS s_at_jti,
          s.at_kid AS s_at_kid, s.at_expires_at AS s_at_expires_at, s.at_scope AS s_at_scope
     FROM refresh_tokens t
     JOIN families f ON f.id = t.family_id
     JOIN clients c ON c.client_id = f.client_id
     LEFT JOIN users u ON u.id = f.user_id
     LEFT JOIN refresh_tokens s ON s.hash = t.successor_hash
    WHERE t.hash = $1`,
);

/** $1 family, $2 now, $3 reason (revoked_reason), $4 audit type, $5 token id, $6 ip, $7 detail json */
const revokeFamily = `WITH r AS (
     UPDATE families SET revoked_at = $2, revoked_reason = $3
      WHERE id = $1 AND revoked_at IS NULL RETURNING id, user_id, client_id
   )
   INSERT INTO audit_events (at, type, user_id, client_id, family_id, token_id, ip, detail)
   SELECT $2, $4, user_id, client_id, id, $5, $6, $7::jsonb FROM r RETURNING family_id`;

/**
 * Revokes a user's sessions beyond the client's cap, oldest first. The session just created
 * ($5) always counts as the newest, even when others share its created_at (same instant).
 * $1 user, $2 client, $3 cap, $4 now, $5 the new family id
 */
const evictBeyondCap = `WITH excess AS (
     SELECT id FROM families
      WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL AND absolute_expires_at > $4
      ORDER BY (id = $5::uuid) DESC, created_at DESC, id DESC OFFSET $3
   ), r AS (
     UPDATE families SET revoked_at = $4, revoked_reason = 'evicted'
      WHERE id IN (SELECT id FROM excess) RETURNING id, user_id, client_id
   )
   INSERT INTO audit_events (at, type, user_id, client_id, family_id, detail)
   SELECT $4, 'session_evicted', user_id, client_id, id, '{"reason":"per-user session cap"}'::jsonb FROM r`;

/** Serialises logins of one user to one client (the session cap), for this transaction. */
const lockUserClient = "SELECT pg_advisory_xact_lock(hashtext($1::text || '/' || $2::text))";

export const tokenQueries = {
  lockUserClient,
  createFamily,
  rotate,
  slide,
  inspect,
  revokeFamily,
  evictBeyondCap,
};

export const sessionQueries = {
  /** Whether a session (family) still stands; $1 sid */
  familyState: "SELECT revoked_at FROM families WHERE id = $1",
  /** A user's families with their live token's idle expiry; $1 user, $2 now */
  listForUser: `SELECT f.id AS sid, f.client_id, f.scope, f.created_at, f.absolute_expires_at, f.revoked_at,
            f.revoked_reason, live.expires_at AS idle_expires_at,
            COALESCE(live.last_used_at, live.created_at) AS last_refreshed_at,
            (f.revoked_at IS NULL AND f.absolute_expires_at > $2 AND live.expires_at > $2) AS active
       FROM families f
       LEFT JOIN refresh_tokens live ON live.family_id = f.id AND live.consumed_at IS NULL
      WHERE f.user_id = $1
      ORDER BY f.created_at DESC`,
  familyOfUser: "SELECT id FROM families WHERE id = $1 AND user_id = $2",
  liveFamiliesOfUser: "SELECT id FROM families WHERE user_id = $1 AND revoked_at IS NULL",
};

export const auditQueries = {
  insert: `INSERT INTO audit_events (at, type, user_id, client_id, family_id, token_id, ip, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)`,
  list: `SELECT id, at, type, user_id, client_id, family_id, token_id, ip, detail FROM audit_events
          WHERE ($1::text IS NULL OR type = $1) AND ($2::uuid IS NULL OR user_id = $2)
          ORDER BY id DESC LIMIT $3`,
};

export const janitorQueries = {
  // A sealed successor is only for the grace window; after it, nothing may decrypt it.
  dropExpiredSeals: `UPDATE refresh_tokens SET successor_sealed = NULL
                      WHERE successor_sealed IS NOT NULL AND replay_until <= $1`,
  /**
   * Families that can never refresh again (revoked, past absolute expiry, or idle-expired)
   * are deleted with their tokens once the retention period has passed (`$1` = now − retention), so reuse of their tokens
   * is still recognised and reported for a while.
   */
  deleteDeadFamilies: `DELETE FROM families f
      WHERE f.revoked_at <= $1
         OR f.absolute_expires_at <= $1
         OR NOT EXISTS (SELECT 1 FROM refresh_tokens t
                         WHERE t.family_id = f.id AND t.consumed_at IS NULL AND t.expires_at > $1)`,
  deleteOldAudit: "DELETE FROM audit_events WHERE at < $1",
};

export const readinessQueries = {
  /** The applied schema version: cheap, and proves the database answers and migrations ran. */
  schemaVersion: statement(
    "readiness_schema_version",
    "SELECT max(version) AS version FROM evergreen_migrations",
  ),
};

// ---------------------------------------------------------------------------------------------
// Sign-in from apps: login sessions, consent, authorization codes (migration 0005).

export const loginSessionQueries = {
  /** $1 id, $2 cookie hash, $3 user, $4 auth_time, $5 expires_at, $6 credentials version verified */
  insert: `INSERT INTO login_sessions (id, hash, user_id, auth_time, expires_at, credentials_version)
           VALUES ($1, $2, $3, $4, $5, $6)`,
  /**
   * The live session a cookie names, with its user; a password change since the login ends it.
   * $1 cookie hash, $2 now
   */
  byHash: `SELECT s.id, s.user_id, s.auth_time, s.credentials_version, u.username
             FROM login_sessions s JOIN users u ON u.id = s.user_id
            WHERE s.hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2
              AND s.credentials_version = u.credentials_version`,
  byId: "SELECT id, user_id, ended_at FROM login_sessions WHERE id = $1",
  /** $1 id, $2 now */
  end: "UPDATE login_sessions SET ended_at = $2 WHERE id = $1 AND ended_at IS NULL RETURNING id",
  /** Sessions ended or expired before the cutoff; $1 cutoff */
  deleteDead: "DELETE FROM login_sessions WHERE ended_at < $1 OR expires_at < $1",
  /** The live families that codes of this login session started; $1 login session id */
  familiesOf: `SELECT DISTINCT c.family_id AS id FROM authorization_codes c
                 JOIN families f ON f.id = c.family_id
                WHERE c.login_session_id = $1 AND f.revoked_at IS NULL`,
};

export const consentQueries = {
  /** $1 user, $2 client */
  get: "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2",
  /** Remembers the union of what was granted before and now; $1 user, $2 client, $3 scope, $4 now */
  grant: `INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4)
          ON CONFLICT (user_id, client_id) DO UPDATE
            SET scope = array_to_string(ARRAY(
                  SELECT DISTINCT s FROM unnest(string_to_array(consents.scope || ' ' || EXCLUDED.scope, ' ')) s
                   WHERE s <> '' ORDER BY s), ' '),
                granted_at = EXCLUDED.granted_at`,
};

export const codeQueries = {
  /**
   * $1 hash, $2 client, $3 user, $4 login session, $5 redirect uri, $6 scope, $7 challenge,
   * $8 nonce, $9 auth_time, $10 now, $11 expires_at, $12 the login's credentials version
   */
  insert: `INSERT INTO authorization_codes (hash, client_id, user_id, login_session_id, redirect_uri, scope,
             code_challenge, nonce, auth_time, created_at, expires_at, credentials_version)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
  /**
   * Single use: the compare-and-set on consumed_at lets exactly one request redeem a code, and
   * names the family it will start ($3) so a later reuse can revoke it. $1 hash, $2 now, $3 family
   */
  consume: `UPDATE authorization_codes SET consumed_at = $2, family_id = $3
             WHERE hash = $1 AND consumed_at IS NULL
            RETURNING client_id, user_id, login_session_id, redirect_uri, scope, code_challenge, nonce,
                      auth_time, expires_at, credentials_version`,
  /**
   * A second use by the client the code was issued to: mark it and return the family the first
   * use started. Another client's attempt changes nothing. $1 hash, $2 now, $3 client
   */
  markReused: `UPDATE authorization_codes SET reused_at = COALESCE(reused_at, $2)
                WHERE hash = $1 AND consumed_at IS NOT NULL AND client_id = $3 RETURNING family_id, client_id`,
  /** Whether a reuse was seen while the first use was still issuing; $1 hash */
  reusedAt: "SELECT reused_at FROM authorization_codes WHERE hash = $1",
  /** Codes are worthless once expired; they are kept for the retention period (reuse detection). $1 cutoff */
  deleteOld: "DELETE FROM authorization_codes WHERE expires_at < $1",
};

export const deviceQueries = {
  /** $1 device code hash, $2 user code hash, $3 client, $4 scope, $5 now, $6 expires_at, $7 interval */
  insert: `INSERT INTO device_codes (hash, user_code_hash, client_id, scope, created_at, expires_at, poll_interval, next_poll_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $5)`,
  /** A pending, unexpired authorization by its user code; $1 user code hash, $2 now */
  pendingByUserCode: `SELECT d.client_id, d.scope FROM device_codes d
                       WHERE d.user_code_hash = $1 AND d.status = 'pending' AND d.expires_at > $2`,
  /**
   * The user's decision; $1 user code hash, $2 now, $3 status, $4 user, $5 login session,
   * $6 auth_time, $7 the login's credentials version
   */
  decide: `UPDATE device_codes SET status = $3, user_id = $4, login_session_id = $5, auth_time = $6,
                                   credentials_version = $7
            WHERE user_code_hash = $1 AND status = 'pending' AND expires_at > $2 RETURNING client_id`,
  /** The polled row, locked so concurrent polls are answered one at a time; $1 hash */
  lockForPoll: `SELECT client_id, scope, expires_at, poll_interval, next_poll_at, status, user_id,
                       login_session_id, auth_time, credentials_version
                  FROM device_codes WHERE hash = $1 FOR UPDATE`,
  /** $1 hash, $2 interval, $3 next poll */
  pollAgain: "UPDATE device_codes SET poll_interval = $2, next_poll_at = $3 WHERE hash = $1",
  /** $1 hash, $2 family */
  consume:
    "UPDATE device_codes SET status = 'consumed', family_id = $2 WHERE hash = $1 AND status = 'approved'",
  /** $1 cutoff */
  deleteOld: "DELETE FROM device_codes WHERE expires_at < $1",
};
