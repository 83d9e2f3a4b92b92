import { plan } from "@evergreen/db";
import type { Client } from "./clients.ts";

/**
 * Every SQL statement the issuer runs, in one place (after pg-boss's plans.ts): the whole
 * data access of the issuer reads in one sitting. Each statement is a plan: SQL with `:name`
 * placeholders and the type of its inputs, called with a named object (`plan.ts` in
 * @evergreen/db compiles it to `$n` once). A second argument names a server-side prepared
 * statement; those names are stable (the hot path is parsed and planned once per connection).
 * Time is always a parameter (the injected clock), never now(), so tests can move it.
 */

export const keyQueries = {
  // Serialises key generation and rotation across processes.
  lockKeys: plan("SELECT pg_advisory_xact_lock(1802135929)"),
  countActive: plan("SELECT count(*)::int AS n FROM signing_keys WHERE retired_at IS NULL"),
  listKeys: plan<{ now: Date }>(
    `SELECT kid, alg, public_jwk, private_key, created_at, retired_at, delete_after
       FROM signing_keys WHERE delete_after IS NULL OR delete_after > :now`,
  ),
  retireActive: plan<{ now: Date; delete_after: Date }>(
    "UPDATE signing_keys SET retired_at = :now, delete_after = :delete_after WHERE retired_at IS NULL",
  ),
  insertKey: plan<{ kid: string; alg: string; public_jwk: string; private_key: Buffer; now: Date }>(
    `INSERT INTO signing_keys (kid, alg, public_jwk, private_key, created_at)
     VALUES (:kid, :alg, :public_jwk::jsonb, :private_key, :now)`,
  ),
  deleteExpired: plan<{ now: Date }>(
    "DELETE FROM signing_keys WHERE delete_after IS NOT NULL AND delete_after <= :now",
  ),
};

const USER_COLUMNS = "id, username, email, created_at, updated_at, is_admin, disabled_at";

export const userQueries = {
  insert: plan<{
    id: string;
    username: string;
    email: string | null;
    password_hash: string;
    now: Date;
    is_admin: boolean;
  }>(
    `INSERT INTO users (id, username, email, password_hash, created_at, updated_at, is_admin)
     VALUES (:id, :username, :email, :password_hash, :now, :now, :is_admin) RETURNING ${USER_COLUMNS}`,
  ),
  byUsername: plan<{ username: string }>(
    `SELECT ${USER_COLUMNS}, password_hash FROM users WHERE username = :username`,
    "user_by_username",
  ),
  /**
   * What a password login needs: the hash and the credentials version it verifies. A disabled
   * user is not found, so their login costs and answers what an unknown name does.
   */
  forLogin: plan<{ username: string }>(
    `SELECT id, password_hash, credentials_version FROM users
      WHERE username = :username AND disabled_at IS NULL`,
    "user_for_login",
  ),
  /** Whether a user may hold the admin scope now (checked on every admin API request). */
  adminState: plan<{ id: string }>("SELECT is_admin, disabled_at FROM users WHERE id = :id"),
  byId: plan<{ id: string }>(`SELECT ${USER_COLUMNS} FROM users WHERE id = :id`, "user_by_id"),
  /** A page of users; `q` (null: all) matches part of the username or email, any case. */
  list: plan<{ limit: number; offset: number; q: string | null }>(
    `SELECT ${USER_COLUMNS} FROM users
      WHERE :q::text IS NULL OR strpos(lower(username), lower(:q)) > 0
         OR strpos(lower(COALESCE(email, '')), lower(:q)) > 0
      ORDER BY created_at, username LIMIT :limit OFFSET :offset`,
  ),
  /**
   * Null username / password_hash keep the current one; set_email says whether email (maybe
   * null) replaces it. end_sessions with a new password moves the credentials version in this
   * same statement, so sessions are dead the moment it commits, whatever happens after;
   * disabling a user (`disabled` true, null keeps it) moves it as well. Null `is_admin` keeps it.
   */
  update: plan<{
    id: string;
    username: string | null;
    set_email: boolean;
    email: string | null;
    password_hash: string | null;
    now: Date;
    end_sessions: boolean;
    is_admin: boolean | null;
    disabled: boolean | null;
  }>(
    `UPDATE users SET username = COALESCE(:username, username),
             email = CASE WHEN :set_email::boolean THEN :email ELSE email END,
             password_hash = COALESCE(:password_hash, password_hash), updated_at = :now,
             is_admin = COALESCE(:is_admin::boolean, is_admin),
             disabled_at = CASE WHEN :disabled::boolean IS NULL THEN disabled_at
                                WHEN :disabled::boolean THEN COALESCE(disabled_at, :now) ELSE NULL END,
             credentials_version = credentials_version
               + CASE WHEN (:password_hash::text IS NOT NULL AND :end_sessions::boolean)
                        OR (:disabled::boolean AND disabled_at IS NULL) THEN 1 ELSE 0 END
           WHERE id = :id RETURNING ${USER_COLUMNS}`,
  ),
  delete: plan<{ id: string }>("DELETE FROM users WHERE id = :id RETURNING id"),
};

export const CLIENT_COLUMNS = `client_id, client_name, secret_hash, token_endpoint_auth_method, grant_types, redirect_uris,
  scope, access_token_ttl, refresh_token_idle_ttl, refresh_token_absolute_ttl, rotate_refresh_tokens,
  refresh_token_reuse_grace, max_sessions_per_user, created_at, updated_at, skip_consent, refresh_token_policy,
  dpop_bound_access_tokens, require_pushed_authorization_requests`;

/** A client's registration as insert and update write it (`now` stamps the change). */
export type ClientRow = Omit<Client, "created_at" | "updated_at"> & { now: Date };

export const clientQueries = {
  insert: plan<ClientRow>(
    `INSERT INTO clients (client_id, client_name, secret_hash, token_endpoint_auth_method, grant_types,
       redirect_uris, scope, access_token_ttl, refresh_token_idle_ttl, refresh_token_absolute_ttl,
       rotate_refresh_tokens, refresh_token_reuse_grace, max_sessions_per_user, created_at, updated_at,
       skip_consent, refresh_token_policy, dpop_bound_access_tokens, require_pushed_authorization_requests)
     VALUES (:client_id, :client_name, :secret_hash, :token_endpoint_auth_method, :grant_types,
       :redirect_uris, :scope, :access_token_ttl, :refresh_token_idle_ttl, :refresh_token_absolute_ttl,
       :rotate_refresh_tokens, :refresh_token_reuse_grace, :max_sessions_per_user, :now, :now,
       :skip_consent, :refresh_token_policy, :dpop_bound_access_tokens,
       :require_pushed_authorization_requests)
     RETURNING ${CLIENT_COLUMNS}`,
  ),
  byId: plan<{ client_id: string }>(
    `SELECT ${CLIENT_COLUMNS} FROM clients WHERE client_id = :client_id`,
    "client_by_id",
  ),
  /** A page of clients; `q` (null: all) matches part of the client id or name, any case. */
  list: plan<{ limit: number; offset: number; q: string | null }>(
    `SELECT ${CLIENT_COLUMNS} FROM clients
      WHERE :q::text IS NULL OR strpos(lower(client_id), lower(:q)) > 0
         OR strpos(lower(COALESCE(client_name, '')), lower(:q)) > 0
      ORDER BY created_at, client_id LIMIT :limit OFFSET :offset`,
  ),
  update: plan<ClientRow>(
    `UPDATE clients SET client_name = :client_name, secret_hash = :secret_hash,
       token_endpoint_auth_method = :token_endpoint_auth_method, grant_types = :grant_types,
       redirect_uris = :redirect_uris, scope = :scope, access_token_ttl = :access_token_ttl,
       refresh_token_idle_ttl = :refresh_token_idle_ttl, refresh_token_absolute_ttl = :refresh_token_absolute_ttl,
       rotate_refresh_tokens = :rotate_refresh_tokens, refresh_token_reuse_grace = :refresh_token_reuse_grace,
       max_sessions_per_user = :max_sessions_per_user, updated_at = :now,
       skip_consent = :skip_consent, refresh_token_policy = :refresh_token_policy,
       dpop_bound_access_tokens = :dpop_bound_access_tokens,
       require_pushed_authorization_requests = :require_pushed_authorization_requests
     WHERE client_id = :client_id RETURNING ${CLIENT_COLUMNS}`,
  ),
  delete: plan<{ client_id: string }>("DELETE FROM clients WHERE client_id = :client_id RETURNING client_id"),
  /** The longest access-token lifetime of any client (signing-key overlap). */
  maxAccessTtl: plan("SELECT max(access_token_ttl)::int AS ttl FROM clients"),
};

/**
 * Login: the family (one session, the token's `sid`), its first refresh token and the audit
 * event, in one statement. The family is stamped with the credentials version the login
 * verified, and only created while that version is still the user's: no row means the password
 * changed after it was checked. `dpop_jkt` binds the family to a DPoP key (migration 0006);
 * `at_jkt` is the key the first access token is bound to; `auth_time` and `login_session_id`
 * (a browser sign-in's, null if it ended since) feed the ID token of later refreshes.
 */
const createFamily = plan<{
  family_id: string;
  user_id: string;
  client_id: string;
  scope: string;
  now: Date;
  absolute_expires_at: Date;
  token_hash: Buffer;
  token_expires_at: Date;
  at_jti: string;
  at_kid: string;
  at_expires_at: Date;
  ip: string;
  credentials_version: number;
  dpop_jkt: string | null;
  at_jkt: string | null;
  auth_time: Date | null;
  login_session_id: string | null;
}>(
  `WITH fam AS (
     INSERT INTO families (id, user_id, client_id, scope, created_at, absolute_expires_at, credentials_version,
                           dpop_jkt, auth_time, login_session_id)
     SELECT :family_id, u.id, :client_id, :scope, :now, :absolute_expires_at, u.credentials_version,
            :dpop_jkt, :auth_time, (SELECT id FROM login_sessions WHERE id = :login_session_id::uuid)
       FROM users u
      WHERE u.id = :user_id AND u.credentials_version = :credentials_version
     RETURNING id
   ), tok AS (
     INSERT INTO refresh_tokens (hash, family_id, generation, created_at, expires_at, at_jti, at_kid, at_expires_at, at_jkt)
     SELECT :token_hash, id, 1, :now, :token_expires_at, :at_jti, :at_kid, :at_expires_at, :at_jkt FROM fam
   ), ev AS (
     INSERT INTO audit_events (at, type, user_id, client_id, family_id, ip)
     SELECT :now, 'login', :user_id, :client_id, id, :ip FROM fam
   )
   SELECT id FROM fam`,
  "create_family",
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
 * What a refresh (rotate or slide) is given. `requested`: the scope asked for (null = all the
 * family has), which must be a subset of the family's narrowed scope; `at_scope`: the
 * access-token scope to record (null = the family's).
 */
interface RefreshParams {
  hash: Buffer;
  client_id: string;
  now: Date;
  at_jti: string;
  at_kid: string;
  requested: string[] | null;
  at_scope: string | null;
  ip: string;
  /** Write the 'refresh' audit event (EVERGREEN_AUDIT_ROTATIONS). */
  audit: boolean;
  /** The DPoP key the request proved (null: none); a bound family matches only its own key. */
  jkt: string | null;
}

/** A family bound to a DPoP key refreshes only with a proof of that key (RFC 9449 §5). */
const DPOP_KEY_MATCHES = "(f.dpop_jkt IS NULL OR f.dpop_jkt = :jkt::text)";

/** The requested scope, if any, within both the family's scope and the client's. */
const REQUESTED_WITHIN = `(:requested::text[] IS NULL OR (:requested::text[] <@ string_to_array(f.scope, ' ')
                                    AND :requested::text[] <@ string_to_array(c.scope, ' ')))`;

/**
 * The hot path. One statement, one round trip: consume the presented token (a compare-and-set
 * on consumed_at IS NULL), insert its successor, and write the audit event. Zero rows means
 * "not this simple case" and the caller inspects why (see inspect). The family must still hold the
 * user's current credentials version, and its scope is cut down to what the client may still
 * have (stored back, so widening the client later does not bring old grants back).
 * The successor is sealed under a key derived from the presented token (`successor_sealed`).
 */
const rotate = plan<RefreshParams & { successor_hash: Buffer; successor_sealed: Buffer }>(
  `WITH consumed AS (
     UPDATE refresh_tokens t
        SET consumed_at = :now, successor_hash = :successor_hash, successor_sealed = :successor_sealed,
            replay_until = :now + make_interval(secs => c.refresh_token_reuse_grace)
       FROM families f JOIN clients c ON c.client_id = f.client_id JOIN users u ON u.id = f.user_id
      WHERE t.hash = :hash AND t.consumed_at IS NULL AND t.expires_at > :now
        AND f.id = t.family_id AND f.client_id = :client_id AND f.revoked_at IS NULL AND f.absolute_expires_at > :now
        AND c.rotate_refresh_tokens AND ${CREDENTIALS_CURRENT}
        AND ${REQUESTED_WITHIN} AND ${DPOP_KEY_MATCHES}
     RETURNING t.family_id, t.generation, f.user_id, ${NARROWED_SCOPE} AS scope, f.scope AS stored_scope,
               f.absolute_expires_at, c.access_token_ttl, c.refresh_token_idle_ttl, f.auth_time, f.login_session_id,
               u.username, u.email
   ), narrowed AS (
     UPDATE families SET scope = consumed.scope
       FROM consumed WHERE families.id = consumed.family_id AND consumed.scope <> consumed.stored_scope
   ), successor AS (
     INSERT INTO refresh_tokens (hash, family_id, generation, created_at, expires_at, at_jti, at_kid, at_expires_at,
                                 at_scope, at_jkt)
     SELECT :successor_hash, family_id, generation + 1, :now,
            LEAST(:now + make_interval(secs => refresh_token_idle_ttl), absolute_expires_at),
            :at_jti, :at_kid, :now + make_interval(secs => access_token_ttl), :at_scope, :jkt
       FROM consumed
     RETURNING expires_at, at_expires_at
   ), ev AS (
     INSERT INTO audit_events (at, type, user_id, client_id, family_id, ip)
     SELECT :now, 'refresh', user_id, :client_id, family_id, :ip FROM consumed WHERE :audit::boolean
   )
   SELECT c.family_id, c.user_id, c.scope, s.expires_at, s.at_expires_at, c.auth_time, c.login_session_id,
          c.username, c.email
     FROM consumed c, successor s`,
  "rotate_refresh_token",
);

/**
 * Refresh for clients that do not rotate: the same token slides its idle expiry (never past
 * the family's absolute limit) and records the new access token. Credentials version and scope
 * narrowing as in rotate.
 */
const slide = plan<RefreshParams>(
  `WITH used AS (
     UPDATE refresh_tokens t
        SET expires_at = LEAST(:now + make_interval(secs => c.refresh_token_idle_ttl), f.absolute_expires_at),
            last_used_at = :now, at_jti = :at_jti, at_kid = :at_kid,
            at_expires_at = :now + make_interval(secs => c.access_token_ttl), at_scope = :at_scope, at_jkt = :jkt
       FROM families f JOIN clients c ON c.client_id = f.client_id JOIN users u ON u.id = f.user_id
      WHERE t.hash = :hash AND t.consumed_at IS NULL AND t.expires_at > :now
        AND f.id = t.family_id AND f.client_id = :client_id AND f.revoked_at IS NULL AND f.absolute_expires_at > :now
        AND NOT c.rotate_refresh_tokens AND ${CREDENTIALS_CURRENT}
        AND ${REQUESTED_WITHIN} AND ${DPOP_KEY_MATCHES}
     RETURNING t.family_id, f.user_id, ${NARROWED_SCOPE} AS scope, f.scope AS stored_scope,
               t.expires_at, t.at_expires_at, f.auth_time, f.login_session_id, u.username, u.email
   ), narrowed AS (
     UPDATE families SET scope = used.scope
       FROM used WHERE families.id = used.family_id AND used.scope <> used.stored_scope
   ), ev AS (
     INSERT INTO audit_events (at, type, user_id, client_id, family_id, ip)
     SELECT :now, 'refresh', user_id, :client_id, family_id, :ip FROM used WHERE :audit::boolean
   )
   SELECT family_id, user_id, scope, expires_at, at_expires_at, auth_time, login_session_id, username, email
     FROM used`,
  "slide_refresh_token",
);

/**
 * Everything needed to explain why a presented token did not simply rotate. `scope` is already
 * narrowed to the client's current registration; `credentials_current` is false once the
 * user's password changed after the family's login.
 */
const inspect = plan<{ hash: Buffer }>(
  `SELECT t.family_id, t.generation, t.created_at, t.expires_at, t.consumed_at, t.successor_hash,
          t.successor_sealed, t.replay_until,
          f.user_id, f.client_id, ${NARROWED_SCOPE} AS scope, f.revoked_at, f.revoked_reason,
          f.absolute_expires_at, COALESCE(${CREDENTIALS_CURRENT}, false) AS credentials_current,
          c.scope AS client_scope, f.dpop_jkt, f.auth_time, f.login_session_id, u.username, u.email,
          s.created_at AS s_created_at, s.expires_at AS s_expires_at, s.at_jti AS s_at_jti,
          s.at_kid AS s_at_kid, s.at_expires_at AS s_at_expires_at, s.at_scope AS s_at_scope,
          s.at_jkt AS s_at_jkt
     FROM refresh_tokens t
     JOIN families f ON f.id = t.family_id
     JOIN clients c ON c.client_id = f.client_id
     LEFT JOIN users u ON u.id = f.user_id
     LEFT JOIN refresh_tokens s ON s.hash = t.successor_hash
    WHERE t.hash = :hash`,
  "inspect_refresh_token",
);

/**
 * Revokes a family once (no row if it already was) with its audit event. `reason` goes to
 * families.revoked_reason, `type` to the audit event; `token_id` is a token's short hash id,
 * `detail` a JSON text.
 */
const revokeFamily = plan<{
  family_id: string;
  now: Date;
  reason: string;
  type: string;
  token_id: string | null;
  ip: string | null;
  detail: string;
}>(
  `WITH r AS (
     UPDATE families SET revoked_at = :now, revoked_reason = :reason
      WHERE id = :family_id AND revoked_at IS NULL RETURNING id, user_id, client_id
   )
   INSERT INTO audit_events (at, type, user_id, client_id, family_id, token_id, ip, detail)
   SELECT :now, :type, user_id, client_id, id, :token_id, :ip, :detail::jsonb FROM r RETURNING family_id`,
);

/**
 * Revokes a user's sessions beyond the client's cap, oldest first. The session just created
 * (`family_id`) always counts as the newest, even when others share its created_at (same instant).
 */
const evictBeyondCap = plan<{
  user_id: string;
  client_id: string;
  cap: number;
  now: Date;
  family_id: string;
}>(
  `WITH excess AS (
     SELECT id FROM families
      WHERE user_id = :user_id AND client_id = :client_id AND revoked_at IS NULL AND absolute_expires_at > :now
      ORDER BY (id = :family_id::uuid) DESC, created_at DESC, id DESC OFFSET :cap
   ), r AS (
     UPDATE families SET revoked_at = :now, revoked_reason = 'evicted'
      WHERE id IN (SELECT id FROM excess) RETURNING id, user_id, client_id
   )
   INSERT INTO audit_events (at, type, user_id, client_id, family_id, detail)
   SELECT :now, 'session_evicted', user_id, client_id, id, '{"reason":"per-user session cap"}'::jsonb FROM r`,
);

/** Serialises logins of one user to one client (the session cap), for this transaction. */
const lockUserClient = plan<{ user_id: string; client_id: string }>(
  "SELECT pg_advisory_xact_lock(hashtext(:user_id::text || '/' || :client_id::text))",
);

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
  /** Whether a session (family) still stands. */
  familyState: plan<{ sid: string }>("SELECT revoked_at FROM families WHERE id = :sid"),
  /**
   * A user's families with their live token's idle expiry and rotation count (its generation:
   * kept whatever the janitor drops and whether or not rotations are audited).
   */
  listForUser: plan<{ user_id: string; now: Date }>(
    `SELECT f.id AS sid, f.client_id, f.scope, f.created_at, f.absolute_expires_at, f.revoked_at,
            f.revoked_reason, live.expires_at AS idle_expires_at,
            COALESCE(live.last_used_at, live.created_at) AS last_refreshed_at, live.generation - 1 AS rotations,
            (f.revoked_at IS NULL AND f.absolute_expires_at > :now AND live.expires_at > :now) AS active
       FROM families f
       LEFT JOIN refresh_tokens live ON live.family_id = f.id AND live.consumed_at IS NULL
      WHERE f.user_id = :user_id
      ORDER BY f.created_at DESC`,
  ),
  /**
   * A page of every user's sessions, newest first; null filters match all. `state`: 'active'
   * (can still refresh), 'ended' (revoked or expired) or null.
   */
  list: plan<{
    user_id: string | null;
    client_id: string | null;
    state: string | null;
    now: Date;
    limit: number;
    offset: number;
  }>(
    `SELECT * FROM (
       SELECT f.id AS sid, f.user_id, u.username, f.client_id, f.scope, f.created_at, f.absolute_expires_at,
              f.revoked_at, f.revoked_reason, live.expires_at AS idle_expires_at, live.generation,
              COALESCE(live.last_used_at, live.created_at) AS last_refreshed_at,
              (f.revoked_at IS NULL AND f.absolute_expires_at > :now AND live.expires_at > :now
                AND f.credentials_version = u.credentials_version) AS active
         FROM families f
         LEFT JOIN users u ON u.id = f.user_id
         LEFT JOIN refresh_tokens live ON live.family_id = f.id AND live.consumed_at IS NULL
        WHERE (:user_id::uuid IS NULL OR f.user_id = :user_id)
          AND (:client_id::text IS NULL OR f.client_id = :client_id)
     ) s
     WHERE :state::text IS NULL OR (:state = 'active') = COALESCE(s.active, false)
     ORDER BY created_at DESC, sid LIMIT :limit OFFSET :offset`,
  ),
  /** One session with its live token (null once none is live) and its client's lifetimes. */
  byId: plan<{ sid: string; now: Date }>(
    `SELECT f.id AS sid, f.user_id, u.username, f.client_id, f.scope, f.created_at, f.absolute_expires_at,
            f.revoked_at, f.revoked_reason, live.expires_at AS idle_expires_at, live.generation,
            COALESCE(live.last_used_at, live.created_at) AS last_refreshed_at,
            (f.revoked_at IS NULL AND f.absolute_expires_at > :now AND live.expires_at > :now
              AND f.credentials_version = u.credentials_version) AS active,
            c.rotate_refresh_tokens, c.refresh_token_idle_ttl, c.refresh_token_reuse_grace
       FROM families f
       JOIN clients c ON c.client_id = f.client_id
       LEFT JOIN users u ON u.id = f.user_id
       LEFT JOIN refresh_tokens live ON live.family_id = f.id AND live.consumed_at IS NULL
      WHERE f.id = :sid`,
  ),
  /**
   * A session's audit events, newest first, before the event id `before` (null: the newest).
   * Login and rotation events carry the generation of the token they issued: it was inserted
   * by the same statement, so at the same instant (a sliding refresh issues none: null).
   */
  timeline: plan<{ sid: string; before: string | null; limit: number }>(
    `SELECT e.id, e.at, e.type, e.token_id, e.ip, e.detail, t.generation
       FROM audit_events e
       LEFT JOIN LATERAL (
         SELECT max(generation) AS generation FROM refresh_tokens
          WHERE e.type IN ('login', 'refresh') AND family_id = e.family_id AND created_at = e.at
       ) t ON true
      WHERE e.family_id = :sid AND (:before::bigint IS NULL OR e.id < :before::bigint)
      ORDER BY e.id DESC LIMIT :limit`,
  ),
  familyOfUser: plan<{ sid: string; user_id: string }>(
    "SELECT id FROM families WHERE id = :sid AND user_id = :user_id",
  ),
  liveFamiliesOfUser: plan<{ user_id: string }>(
    "SELECT id FROM families WHERE user_id = :user_id AND revoked_at IS NULL",
  ),
};

export const auditQueries = {
  /** `detail` is a JSON text or null. */
  insert: plan<{
    at: Date;
    type: string;
    user_id: string | null;
    client_id: string | null;
    family_id: string | null;
    token_id: string | null;
    ip: string | null;
    detail: string | null;
  }>(
    `INSERT INTO audit_events (at, type, user_id, client_id, family_id, token_id, ip, detail)
     VALUES (:at, :type, :user_id, :client_id, :family_id, :token_id, :ip, :detail::jsonb)`,
  ),
  /** Newest first, before the event id `before` (a cursor); a null filter matches every event. */
  list: plan<{
    type: string | null;
    user_id: string | null;
    client_id: string | null;
    family_id: string | null;
    before: string | null;
    limit: number;
  }>(
    `SELECT id, at, type, user_id, client_id, family_id, token_id, ip, detail FROM audit_events
      WHERE (:type::text IS NULL OR type = :type) AND (:user_id::uuid IS NULL OR user_id = :user_id)
        AND (:client_id::text IS NULL OR client_id = :client_id)
        AND (:family_id::uuid IS NULL OR family_id = :family_id)
        AND (:before::bigint IS NULL OR id < :before::bigint)
      ORDER BY id DESC LIMIT :limit`,
  ),
};

/**
 * The janitor's statements. Each touches at most `batch` rows and takes them with SKIP LOCKED,
 * so a pass holds its locks briefly, never waits on a request, and several processes may run
 * it at once without doing the same work twice.
 */
export const janitorQueries = {
  // A sealed successor is only for the grace window; after it, nothing may decrypt it.
  dropExpiredSeals: plan<{ now: Date; batch: number }>(
    `UPDATE refresh_tokens SET successor_sealed = NULL
      WHERE hash IN (SELECT hash FROM refresh_tokens
                      WHERE successor_sealed IS NOT NULL AND replay_until <= :now
                      LIMIT :batch FOR UPDATE SKIP LOCKED)`,
  ),
  /**
   * Rotated tokens once their own idle expiry is `retention` behind (`before` = now −
   * retention) and their grace window is over: unrotated they would have been refused as
   * expired for that long already. Until then a reuse still revokes the family; after it the
   * token is simply unknown (invalid_grant). The live token (consumed_at IS NULL) is never
   * touched. Uses refresh_tokens_consumed_expiry (migration 0007).
   */
  pruneConsumed: plan<{ before: Date; now: Date; batch: number }>(
    `DELETE FROM refresh_tokens WHERE hash IN (
       SELECT hash FROM refresh_tokens
        WHERE consumed_at IS NOT NULL AND expires_at <= :before
          AND (replay_until IS NULL OR replay_until <= :now)
        LIMIT :batch FOR UPDATE SKIP LOCKED)`,
  ),
  /**
   * Families that can never refresh again (revoked, past absolute expiry, or idle-expired)
   * are deleted with their tokens once the retention period has passed (`before` = now −
   * retention), so reuse of their tokens is still recognised and reported for a while.
   * One batch of families after `after` (keyset order, so a pass reads each family once);
   * `last` is where the next batch starts (null: the pass is done).
   */
  deleteDeadFamilies: plan<{ before: Date; after: string; batch: number }>(
    `WITH page AS (
       SELECT id FROM families WHERE id > :after::uuid ORDER BY id LIMIT :batch
     ), dead AS (
       SELECT f.id FROM families f
        WHERE f.id IN (SELECT id FROM page)
          AND (f.revoked_at <= :before
               OR f.absolute_expires_at <= :before
               OR NOT EXISTS (SELECT 1 FROM refresh_tokens t
                               WHERE t.family_id = f.id AND t.consumed_at IS NULL AND t.expires_at > :before))
        FOR UPDATE OF f SKIP LOCKED
     ), gone AS (
       DELETE FROM families WHERE id IN (SELECT id FROM dead) RETURNING id
     )
     SELECT (SELECT id FROM page ORDER BY id DESC LIMIT 1) AS last, (SELECT count(*) FROM gone)::int AS deleted`,
  ),
};

/** Serialises partition maintenance of audit_events across processes (try-lock: one does it). */
const AUDIT_PARTITION_LOCK = 0x65766170;

/** The only partition names the janitor will put into DDL (day partitions are UTC days). */
const PARTITION_NAME = /^audit_events_(p\d{8}|legacy|default)$/;

function partitionName(name: string): string {
  if (!PARTITION_NAME.test(name)) throw new Error(`not an audit_events partition: ${name}`);
  return name;
}

/** A timestamptz literal for partition bounds, which DDL cannot take as a parameter. */
function boundLiteral(at: Date): string {
  return `'${at.toISOString()}'`;
}

/**
 * audit_events is partitioned by day (migration 0007). Partition DDL takes strong locks on
 * the parent for an instant; lock_timeout keeps a janitor that cannot get them from queueing
 * every audit insert behind it (it gives up and tries again next run).
 */
export const auditPartitionQueries = {
  tryLock: plan(`SELECT pg_try_advisory_xact_lock(${AUDIT_PARTITION_LOCK}) AS locked`),
  lockTimeout: plan("SET LOCAL lock_timeout = '1s'"),
  /** Every partition with its bounds (null: unbounded or the default), from the catalog. */
  list: plan(
    `SELECT c.relname AS name, b = 'DEFAULT' AS is_default,
            (regexp_match(b, 'FROM \\(''([^'']+)''\\)'))[1]::timestamptz AS from_at,
            (regexp_match(b, 'TO \\(''([^'']+)''\\)'))[1]::timestamptz AS to_at
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      CROSS JOIN LATERAL pg_get_expr(c.relpartbound, c.oid) AS b
      WHERE i.inhparent = 'audit_events'::regclass`,
  ),
  /** Holds writes to the default partition while rows move out of it. */
  lockDefault: plan("LOCK TABLE audit_events_default IN EXCLUSIVE MODE"),
  create: (name: string) =>
    plan(`CREATE TABLE ${partitionName(name)} (LIKE audit_events INCLUDING DEFAULTS)`)(),
  /** Rows that landed in the default partition before their day's partition existed. */
  adoptFromDefault: (name: string, from: Date, to: Date) =>
    plan<{ from: Date; to: Date }>(
      `WITH moved AS (DELETE FROM audit_events_default WHERE at >= :from AND at < :to RETURNING *)
       INSERT INTO ${partitionName(name)} SELECT * FROM moved`,
    )({ from, to }),
  attach: (name: string, from: Date, to: Date) =>
    plan(
      `ALTER TABLE audit_events ATTACH PARTITION ${partitionName(name)}
         FOR VALUES FROM (${boundLiteral(from)}) TO (${boundLiteral(to)})`,
    )(),
  drop: (name: string) => plan(`DROP TABLE ${partitionName(name)}`)(),
  /**
   * Expired rows of a partition that is not one whole day (the default, the legacy one), in
   * batches: a day partition goes whole instead.
   */
  deleteExpiredRows: (name: string, before: Date, batch: number) =>
    plan<{ before: Date; batch: number }>(
      `DELETE FROM ${partitionName(name)} WHERE ctid = ANY (ARRAY(
         SELECT ctid FROM ${partitionName(name)} WHERE at < :before LIMIT :batch FOR UPDATE SKIP LOCKED))`,
    )({ before, batch }),
};

export const readinessQueries = {
  /** The applied schema version: cheap, and proves the database answers and migrations ran. */
  schemaVersion: plan("SELECT max(version) AS version FROM evergreen_migrations", "readiness_schema_version"),
};

// ---------------------------------------------------------------------------------------------
// Sign-in from apps: login sessions, consent, authorization codes (migration 0005).

export const loginSessionQueries = {
  insert: plan<{
    id: string;
    hash: Buffer;
    user_id: string;
    auth_time: Date;
    expires_at: Date;
    /** The credentials version the login verified. */
    credentials_version: number;
  }>(
    `INSERT INTO login_sessions (id, hash, user_id, auth_time, expires_at, credentials_version)
     VALUES (:id, :hash, :user_id, :auth_time, :expires_at, :credentials_version)`,
  ),
  /** The live session a cookie names, with its user; a password change since the login ends it. */
  byHash: plan<{ hash: Buffer; now: Date }>(
    `SELECT s.id, s.user_id, s.auth_time, s.credentials_version, u.username
       FROM login_sessions s JOIN users u ON u.id = s.user_id
      WHERE s.hash = :hash AND s.ended_at IS NULL AND s.expires_at > :now
        AND s.credentials_version = u.credentials_version`,
  ),
  end: plan<{ id: string; now: Date }>(
    "UPDATE login_sessions SET ended_at = :now WHERE id = :id AND ended_at IS NULL RETURNING id",
  ),
  /** Sessions ended or expired before the cutoff. */
  deleteDead: plan<{ before: Date }>(
    "DELETE FROM login_sessions WHERE ended_at < :before OR expires_at < :before",
  ),
  /** The live families that codes of this login session started. */
  familiesOf: plan<{ id: string }>(
    `SELECT DISTINCT c.family_id AS id FROM authorization_codes c
       JOIN families f ON f.id = c.family_id
      WHERE c.login_session_id = :id AND f.revoked_at IS NULL`,
  ),
};

export const consentQueries = {
  get: plan<{ user_id: string; client_id: string }>(
    "SELECT scope FROM consents WHERE user_id = :user_id AND client_id = :client_id",
  ),
  /** Remembers the union of what was granted before and now. */
  grant: plan<{ user_id: string; client_id: string; scope: string; now: Date }>(
    `INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES (:user_id, :client_id, :scope, :now)
     ON CONFLICT (user_id, client_id) DO UPDATE
       SET scope = array_to_string(ARRAY(
             SELECT DISTINCT s FROM unnest(string_to_array(consents.scope || ' ' || EXCLUDED.scope, ' ')) s
              WHERE s <> '' ORDER BY s), ' '),
           granted_at = EXCLUDED.granted_at`,
  ),
};

export const codeQueries = {
  insert: plan<{
    hash: Buffer;
    client_id: string;
    user_id: string;
    login_session_id: string;
    redirect_uri: string;
    scope: string;
    code_challenge: string;
    nonce: string | null;
    auth_time: Date;
    now: Date;
    expires_at: Date;
    /** The login's credentials version: a password change before redemption voids the code. */
    credentials_version: number;
    /** The DPoP key the code is bound to (RFC 9449 §10), or null. */
    dpop_jkt: string | null;
  }>(
    `INSERT INTO authorization_codes (hash, client_id, user_id, login_session_id, redirect_uri, scope,
       code_challenge, nonce, auth_time, created_at, expires_at, credentials_version, dpop_jkt)
     VALUES (:hash, :client_id, :user_id, :login_session_id, :redirect_uri, :scope,
       :code_challenge, :nonce, :auth_time, :now, :expires_at, :credentials_version, :dpop_jkt)`,
  ),
  /**
   * Single use: the compare-and-set on consumed_at lets exactly one request redeem a code, and
   * names the family it will start so a later reuse can revoke it.
   */
  consume: plan<{ hash: Buffer; now: Date; family_id: string }>(
    `UPDATE authorization_codes SET consumed_at = :now, family_id = :family_id
      WHERE hash = :hash AND consumed_at IS NULL
     RETURNING client_id, user_id, login_session_id, redirect_uri, scope, code_challenge, nonce,
               auth_time, expires_at, credentials_version, dpop_jkt`,
  ),
  /**
   * A second use by the client the code was issued to: mark it and return the family the first
   * use started. Another client's attempt changes nothing.
   */
  markReused: plan<{ hash: Buffer; now: Date; client_id: string }>(
    `UPDATE authorization_codes SET reused_at = COALESCE(reused_at, :now)
      WHERE hash = :hash AND consumed_at IS NOT NULL AND client_id = :client_id
     RETURNING family_id, client_id`,
  ),
  /** Whether a reuse was seen while the first use was still issuing. */
  reusedAt: plan<{ hash: Buffer }>("SELECT reused_at FROM authorization_codes WHERE hash = :hash"),
  /** Codes are worthless once expired; they are kept for the retention period (reuse detection). */
  deleteOld: plan<{ before: Date }>("DELETE FROM authorization_codes WHERE expires_at < :before"),
};

export const pushedRequestQueries = {
  insert: plan<{ hash: Buffer; client_id: string; query: string; expires_at: Date }>(
    `INSERT INTO pushed_authorization_requests (hash, client_id, query, expires_at)
     VALUES (:hash, :client_id, :query, :expires_at)`,
  ),
  /** A pushed request of this client, while it lives. */
  get: plan<{ hash: Buffer; client_id: string; now: Date }>(
    `SELECT query FROM pushed_authorization_requests
      WHERE hash = :hash AND client_id = :client_id AND expires_at > :now`,
  ),
  deleteExpired: plan<{ now: Date }>("DELETE FROM pushed_authorization_requests WHERE expires_at <= :now"),
};

export const deviceQueries = {
  insert: plan<{
    hash: Buffer;
    user_code_hash: Buffer;
    client_id: string;
    scope: string;
    now: Date;
    expires_at: Date;
    poll_interval: number;
  }>(
    `INSERT INTO device_codes (hash, user_code_hash, client_id, scope, created_at, expires_at, poll_interval, next_poll_at)
     VALUES (:hash, :user_code_hash, :client_id, :scope, :now, :expires_at, :poll_interval, :now)`,
  ),
  /** A pending, unexpired authorization by its user code. */
  pendingByUserCode: plan<{ user_code_hash: Buffer; now: Date }>(
    `SELECT d.client_id, d.scope FROM device_codes d
      WHERE d.user_code_hash = :user_code_hash AND d.status = 'pending' AND d.expires_at > :now`,
  ),
  /** The user's decision, with the login's credentials version. */
  decide: plan<{
    user_code_hash: Buffer;
    now: Date;
    status: "approved" | "denied";
    user_id: string;
    login_session_id: string;
    auth_time: Date;
    credentials_version: number;
  }>(
    `UPDATE device_codes SET status = :status, user_id = :user_id, login_session_id = :login_session_id,
            auth_time = :auth_time, credentials_version = :credentials_version
      WHERE user_code_hash = :user_code_hash AND status = 'pending' AND expires_at > :now
     RETURNING client_id`,
  ),
  /** The polled row, locked so concurrent polls are answered one at a time. */
  lockForPoll: plan<{ hash: Buffer }>(
    `SELECT client_id, scope, expires_at, poll_interval, next_poll_at, status, user_id,
            login_session_id, auth_time, credentials_version
       FROM device_codes WHERE hash = :hash FOR UPDATE`,
  ),
  pollAgain: plan<{ hash: Buffer; poll_interval: number; next_poll_at: Date }>(
    "UPDATE device_codes SET poll_interval = :poll_interval, next_poll_at = :next_poll_at WHERE hash = :hash",
  ),
  consume: plan<{ hash: Buffer; family_id: string }>(
    "UPDATE device_codes SET status = 'consumed', family_id = :family_id WHERE hash = :hash AND status = 'approved'",
  ),
  deleteOld: plan<{ before: Date }>("DELETE FROM device_codes WHERE expires_at < :before"),
};
