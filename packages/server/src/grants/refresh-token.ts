import { randomUUID } from "node:crypto";
import { recordAudit } from "../audit.ts";
import type { Client } from "../clients.ts";
import type { IssuerContext } from "../context.ts";
import type { DpopBinding } from "../dpop/token-endpoint.ts";
import {
  REFRESH_TOKEN_PREFIX,
  looksLikeRefreshToken,
  newOpaqueToken,
  sha256,
  tokenId,
} from "../crypto/opaque-token.ts";
import { OAuthError } from "../errors.ts";
import { type FormParams, param, requiredParam } from "../form-body.ts";
import { tokenQueries } from "../queries.ts";
import { formatScope, narrowScope, parseScope } from "../scope.ts";
import { releasedClaims, signIdToken } from "../tokens/id-token.ts";
import { openSuccessor, sealSuccessor } from "../tokens/successor-seal.ts";
import { type TokenResponse, accessTokenFor, tokenResponse } from "../tokens/token-response.ts";

interface RefreshedRow {
  family_id: string;
  user_id: string;
  scope: string;
  expires_at: Date;
  at_expires_at: Date;
  auth_time: Date | null;
  login_session_id: string | null;
  username: string;
  email: string | null;
}

interface InspectedRow {
  family_id: string;
  generation: number;
  expires_at: Date;
  consumed_at: Date | null;
  successor_hash: Buffer | null;
  successor_sealed: Buffer | null;
  replay_until: Date | null;
  user_id: string;
  client_id: string;
  /** The family's scope within the client's current registration. */
  scope: string;
  client_scope: string;
  /** False once the user's password changed after this family's login. */
  credentials_current: boolean;
  revoked_at: Date | null;
  revoked_reason: string | null;
  absolute_expires_at: Date;
  /** The DPoP key the family is bound to, if any. */
  dpop_jkt: string | null;
  auth_time: Date | null;
  login_session_id: string | null;
  username: string | null;
  email: string | null;
  s_created_at: Date | null;
  s_expires_at: Date | null;
  s_at_jti: string | null;
  s_at_kid: string | null;
  s_at_expires_at: Date | null;
  s_at_scope: string | null;
  s_at_jkt: string | null;
}

const INVALID = "the refresh token is invalid, expired or revoked";

/**
 * grant_type=refresh_token (RFC 6749 §6).
 *
 * The common case is one database round trip: a single statement consumes the presented token
 * with a compare-and-set, inserts its successor and writes the audit event. Everything that is
 * not the common case — a concurrent or retried use of the same token, reuse of an old one, an
 * expired or revoked token — makes that statement match no row, and `explain` then reads the
 * token's state to answer precisely.
 *
 * DPoP (RFC 9449 §5): a family bound to a key refreshes only with a proof of that key. A
 * request without it is refused before anything else is looked at: the token is neither
 * consumed nor rotated, and its family is not revoked even when the token is an old one — a
 * thief holding a stolen token but not the key can neither refresh nor end the owner's session
 * (reuse detection still ends it when the right key presents a used token).
 */
export async function refreshTokenGrant(
  ctx: IssuerContext,
  client: Client,
  params: FormParams,
  ip: string,
  dpop?: DpopBinding,
): Promise<TokenResponse> {
  if (!client.grant_types.includes("refresh_token")) {
    throw new OAuthError("unauthorized_client", "this client may not use the refresh_token grant");
  }
  const presented = requiredParam(params, "refresh_token");
  const requested = parseScope(param(params, "scope"));
  // An access token (or anything else) is never a refresh token; no need to ask the database.
  if (!looksLikeRefreshToken(presented)) throw new OAuthError("invalid_grant", INVALID);
  const hash = sha256(presented);

  for (let attempt = 0; ; attempt++) {
    const current = attempt === 0 ? client : await freshClient(ctx, client.client_id);
    const issued = await refreshOnce(ctx, current, presented, hash, requested, ip, dpop);
    if (issued) return issued;
    const outcome = await explain(ctx, current, presented, hash, requested, ip, dpop);
    if (outcome !== "retry") return outcome;
    // The token looked valid but did not match: the client's rotation setting changed under
    // our cache, or a concurrent writer rolled back. Try once more with fresh client settings.
    if (attempt >= 1) throw new OAuthError("invalid_grant", INVALID);
  }
}

async function freshClient(ctx: IssuerContext, clientId: string): Promise<Client> {
  ctx.clients.invalidate(clientId);
  const c = await ctx.clients.get(clientId);
  if (!c) throw new OAuthError("invalid_client", "client authentication failed");
  return c;
}

/**
 * The one-round-trip attempt. Rotating clients get a successor (sealed under the presented
 * token for the grace window); non-rotating clients keep their token, whose idle expiry slides,
 * and get no refresh_token in the response (RFC 6749 §6: the client keeps the one it has).
 * Undefined when the statement matched no row.
 */
async function refreshOnce(
  ctx: IssuerContext,
  client: Client,
  presented: string,
  hash: Buffer,
  requested: string[] | undefined,
  ip: string,
  dpop: DpopBinding | undefined,
): Promise<TokenResponse | undefined> {
  const now = ctx.clock.now();
  const jkt = dpop?.jkt ?? null;
  const key = ctx.keys.current();
  const jti = randomUUID();
  const atScope = requested ? formatScope(requested) : null;
  const successor = client.rotate_refresh_tokens ? newOpaqueToken(REFRESH_TOKEN_PREFIX) : undefined;
  const audit = ctx.config.storage.auditRotations === "all";
  const { rows } = successor
    ? await ctx.db.query<RefreshedRow>(
        tokenQueries.rotate({
          hash,
          client_id: client.client_id,
          now,
          successor_hash: sha256(successor),
          successor_sealed: sealSuccessor(presented, hash, successor),
          at_jti: jti,
          at_kid: key.kid,
          requested: requested ?? null,
          at_scope: atScope,
          ip,
          audit,
          jkt,
        }),
      )
    : await ctx.db.query<RefreshedRow>(
        tokenQueries.slide({
          hash,
          client_id: client.client_id,
          now,
          at_jti: jti,
          at_kid: key.kid,
          requested: requested ?? null,
          at_scope: atScope,
          ip,
          audit,
          jkt,
        }),
      );
  const row = rows[0];
  if (!row) return undefined;
  const scope = atScope ?? row.scope;
  const at = accessTokenFor(
    ctx,
    {
      sub: row.user_id,
      clientId: client.client_id,
      scope,
      sid: row.family_id,
      jti,
      issuedAt: now,
      expiresAt: row.at_expires_at,
      jkt,
    },
    key,
  );
  ctx.metrics.refreshes.inc({ outcome: successor ? "rotated" : "slid" });
  return withIdToken(ctx, client, tokenResponse(now, at, row.at_expires_at, scope, successor, jkt), {
    userId: row.user_id,
    scope,
    authTime: row.auth_time,
    loginSessionId: row.login_session_id,
    user: row,
  });
}

/**
 * OIDC Core §12.2: a refresh of a session that began with an OpenID sign-in (authorization code
 * or device flow) and still holds `openid` returns a new ID token for the same login — same
 * `sid`, the original `auth_time`, no `nonce`. Password-grant sessions never had one.
 */
async function withIdToken(
  ctx: IssuerContext,
  client: Client,
  response: TokenResponse,
  login: {
    userId: string;
    scope: string;
    authTime: Date | null;
    loginSessionId: string | null;
    user: { username: string | null; email: string | null };
  },
): Promise<TokenResponse> {
  if (!login.authTime || !login.scope.split(" ").includes("openid")) return response;
  response.id_token = await signIdToken(ctx, {
    sub: login.userId,
    clientId: client.client_id,
    sid: login.loginSessionId ?? undefined,
    authTime: login.authTime,
    accessToken: response.access_token,
    claims: releasedClaims(login.scope, login.user),
  });
  return response;
}

/** Why did the presented token not simply refresh? Answers, replays, or detects reuse. */
async function explain(
  ctx: IssuerContext,
  client: Client,
  presented: string,
  hash: Buffer,
  requested: string[] | undefined,
  ip: string,
  dpop: DpopBinding | undefined,
): Promise<TokenResponse | "retry"> {
  const now = ctx.clock.now();
  const { rows } = await ctx.db.query<InspectedRow>(tokenQueries.inspect({ hash }));
  const t = rows[0];
  if (!t) throw fail(ctx, "unknown");
  // A token issued to another client is as good as unknown to this one (RFC 6749 §6).
  if (t.client_id !== client.client_id) throw fail(ctx, "wrong_client");
  // Without the family's key the token is worth nothing, and changes nothing (see above).
  if (t.dpop_jkt !== null && t.dpop_jkt !== dpop?.jkt) throw dpopMismatch(ctx, t, ip);
  if (t.revoked_at) throw fail(ctx, "revoked");
  // The password changed after this session's login: the session ended with it, replays too.
  if (!t.credentials_current) throw fail(ctx, "credentials_changed");

  if (t.consumed_at) {
    // A retry inside the window asking for more than the grant must not receive a pair
    // (outside the window this is reuse, detected below whatever the scope).
    if (t.replay_until && t.replay_until > now) checkScope(t.scope, requested);
    const replay = await replayWithinGrace(ctx, client, presented, hash, t, ip, dpop);
    if (replay === "expired") throw fail(ctx, "expired");
    if (replay === "other_key") throw fail(ctx, "dpop_key_mismatch");
    if (replay) return replay;
    await detectReuse(ctx, hash, t, ip);
    throw fail(ctx, "reused");
  }
  if (t.expires_at <= now || t.absolute_expires_at <= now) throw fail(ctx, "expired");
  checkScope(t.scope, requested);
  return "retry";
}

function checkScope(granted: string, requested: string[] | undefined): void {
  if (!requested) return;
  const allowed = granted.split(" ");
  const outside = requested.filter((s) => !allowed.includes(s));
  if (outside.length)
    throw new OAuthError("invalid_scope", `scope exceeds the original grant: ${outside.join(" ")}`);
}

/**
 * Inside the grace window, the same client presenting the token it just rotated gets the
 * same successor and a byte-identical access token (deterministic EdDSA over stored claims).
 * Nothing new is minted, so the family keeps exactly one live refresh token.
 */
async function replayWithinGrace(
  ctx: IssuerContext,
  client: Client,
  presented: string,
  hash: Buffer,
  t: InspectedRow,
  ip: string,
  dpop: DpopBinding | undefined,
): Promise<TokenResponse | "expired" | "other_key" | undefined> {
  const now = ctx.clock.now();
  if (!t.replay_until || t.replay_until <= now || !t.successor_sealed || !t.successor_hash) return undefined;
  // The replayed access token is bound to the key of the first request; another key (or none)
  // would receive a token it cannot use. Refused, but inside the window it is no reuse.
  if ((t.s_at_jkt ?? null) !== (dpop?.jkt ?? null)) return "other_key";
  // A successor that can no longer refresh is worth nothing: past the family's absolute limit
  // (or the successor's own idle expiry) the answer is invalid_grant, not a dead pair.
  if (t.absolute_expires_at <= now || !t.s_expires_at || t.s_expires_at <= now) return "expired";
  if (!t.s_at_jti || !t.s_at_kid || !t.s_at_expires_at || !t.s_created_at) return undefined;
  const successor = openSuccessor(presented, hash, t.successor_sealed);
  if (!successor || !sha256(successor).equals(t.successor_hash)) return undefined;
  // Byte-identical unless the client lost a scope since: a replay never repeats a lost scope.
  const scope = narrowScope(t.s_at_scope ?? t.scope, t.client_scope);
  const key = (await ctx.keys.byKid(t.s_at_kid)) ?? ctx.keys.current();
  const at = accessTokenFor(
    ctx,
    {
      sub: t.user_id,
      clientId: client.client_id,
      scope,
      sid: t.family_id,
      jti: t.s_at_jti,
      issuedAt: t.s_created_at,
      expiresAt: t.s_at_expires_at,
      jkt: t.s_at_jkt,
    },
    key,
  );
  await recordAudit(ctx.db, {
    at: now,
    type: "refresh_replayed",
    userId: t.user_id,
    clientId: client.client_id,
    familyId: t.family_id,
    tokenId: tokenId(hash),
    ip,
    detail: { generation: t.generation, consumed_at: t.consumed_at },
  });
  ctx.metrics.refreshes.inc({ outcome: "replayed" });
  return withIdToken(ctx, client, tokenResponse(now, at, t.s_at_expires_at, scope, successor, t.s_at_jkt), {
    userId: t.user_id,
    scope,
    authTime: t.auth_time,
    loginSessionId: t.login_session_id,
    user: t,
  });
}

/** A consumed token presented after its grace window: the family is compromised; end it. */
async function detectReuse(ctx: IssuerContext, hash: Buffer, t: InspectedRow, ip: string): Promise<void> {
  const now = ctx.clock.now();
  const detail = {
    reason: "a refresh token that was already rotated was presented again after the grace window",
    generation: t.generation,
    consumed_at: t.consumed_at,
    grace_ended_at: t.replay_until,
  };
  const { rows } = await ctx.db.query(
    tokenQueries.revokeFamily({
      family_id: t.family_id,
      now,
      reason: "refresh_token_reuse",
      type: "refresh_token_reuse",
      token_id: tokenId(hash),
      ip,
      detail: JSON.stringify(detail),
    }),
  );
  if (rows.length > 0) {
    ctx.metrics.reuseDetected.inc();
    ctx.log.warn(
      {
        event: "refresh_token_reuse",
        family_id: t.family_id,
        token_id: tokenId(hash),
        generation: t.generation,
      },
      "refresh token reuse detected; family revoked",
    );
  }
}

/** A bound family's token presented without its key: logged, nothing changes. */
function dpopMismatch(ctx: IssuerContext, t: InspectedRow, ip: string): OAuthError {
  ctx.log.warn(
    { event: "dpop_key_mismatch", family_id: t.family_id, ip },
    "a DPoP-bound refresh token was presented without its key",
  );
  return fail(ctx, "dpop_key_mismatch");
}

function fail(ctx: IssuerContext, reason: string): OAuthError {
  ctx.metrics.refreshes.inc({ outcome: reason });
  return new OAuthError("invalid_grant", INVALID);
}
