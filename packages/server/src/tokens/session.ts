import { randomUUID } from "node:crypto";
import { scopeForUser } from "../admin/admin-scope.ts";
import type { Client } from "../clients.ts";
import type { DpopBinding } from "../dpop/token-endpoint.ts";
import type { IssuerContext } from "../context.ts";
import { OAuthError } from "../errors.ts";
import { REFRESH_TOKEN_PREFIX, newOpaqueToken, sha256 } from "../crypto/opaque-token.ts";
import { tokenQueries } from "../queries.ts";
import { issuesRefreshToken } from "./refresh-policy.ts";
import { type TokenResponse, accessTokenFor, tokenResponse } from "./token-response.ts";

const addSeconds = (d: Date, s: number) => new Date(d.getTime() + s * 1000);

export interface SessionOptions {
  /** The family id to use, when the caller must know it beforehand (authorization codes). */
  familyId?: string;
  /** The DPoP key the request proved: its access tokens are bound to it, and a public client's refresh token too. */
  dpop?: DpopBinding;
  /** A browser sign-in's time and login session, for the ID tokens of later refreshes. */
  authTime?: Date;
  loginSessionId?: string | null;
}

/**
 * A successful login: a new family (session, `sid`) with its first refresh token when the
 * client's refresh-token policy allows one, and an access token. Enforces the client's cap on live sessions per user.
 * `credentialsVersion` is the user's version the login verified: if the password changed since,
 * no session is created (invalid_grant).
 */
export async function startSession(
  ctx: IssuerContext,
  client: Client,
  userId: string,
  scope: string,
  ip: string,
  credentialsVersion: number,
  options: SessionOptions = {},
): Promise<TokenResponse> {
  scope = await scopeForUser(ctx.db, userId, scope);
  const now = ctx.clock.now();
  const key = ctx.keys.current();
  const jti = randomUUID();
  const accessExpiresAt = addSeconds(now, client.access_token_ttl);
  const atJkt = options.dpop?.jkt ?? null;

  if (!issuesRefreshToken(client, scope)) {
    const at = accessTokenFor(
      ctx,
      {
        sub: userId,
        clientId: client.client_id,
        scope,
        jti,
        issuedAt: now,
        expiresAt: accessExpiresAt,
        jkt: atJkt,
      },
      key,
    );
    return tokenResponse(now, at, accessExpiresAt, scope, undefined, atJkt);
  }
  // RFC 9449 §5: a public client's refresh token is bound to the DPoP key; a confidential
  // client's is already bound to its client authentication and stays unbound.
  const familyJkt = client.token_endpoint_auth_method === "none" ? atJkt : null;

  const familyId = options.familyId ?? randomUUID();
  const refreshToken = newOpaqueToken(REFRESH_TOKEN_PREFIX);
  const absoluteExpiresAt = addSeconds(now, client.refresh_token_absolute_ttl);
  const idleExpiresAt = new Date(
    Math.min(addSeconds(now, client.refresh_token_idle_ttl).getTime(), absoluteExpiresAt.getTime()),
  );
  await ctx.db
    .transaction(async (tx) => {
      // Concurrent logins of one user to one client would not see each other's new family
      // under READ COMMITTED, and the cap would not hold; serialise them.
      await tx.query(tokenQueries.lockUserClient({ user_id: userId, client_id: client.client_id }));
      const created = await tx.query(
        tokenQueries.createFamily({
          family_id: familyId,
          user_id: userId,
          client_id: client.client_id,
          scope,
          now,
          absolute_expires_at: absoluteExpiresAt,
          token_hash: sha256(refreshToken),
          token_expires_at: idleExpiresAt,
          at_jti: jti,
          at_kid: key.kid,
          at_expires_at: accessExpiresAt,
          ip,
          credentials_version: credentialsVersion,
          dpop_jkt: familyJkt,
          at_jkt: atJkt,
          auth_time: options.authTime ?? null,
          login_session_id: options.loginSessionId ?? null,
        }),
      );
      // The password changed between its verification and now: this login is void.
      if (created.rows.length === 0) throw new OAuthError("invalid_grant", "invalid username or password");
      await tx.query(
        tokenQueries.evictBeyondCap({
          user_id: userId,
          client_id: client.client_id,
          cap: client.max_sessions_per_user,
          now,
          family_id: familyId,
        }),
      );
    })
    .catch(async (err) => {
      // A foreign-key violation means the client or the user was deleted after this request
      // looked them up (another process's client cache may be a few seconds stale): answer as
      // if they never existed, never with a 500.
      if ((err as { code?: string } | null)?.code !== "23503") throw err;
      ctx.clients.invalidate(client.client_id);
      if (!(await ctx.clients.get(client.client_id))) {
        throw new OAuthError("invalid_client", "client authentication failed");
      }
      throw new OAuthError("invalid_grant", "invalid username or password");
    });
  const at = accessTokenFor(
    ctx,
    {
      sub: userId,
      clientId: client.client_id,
      scope,
      sid: familyId,
      jti,
      issuedAt: now,
      expiresAt: accessExpiresAt,
      jkt: atJkt,
    },
    key,
  );
  return tokenResponse(now, at, accessExpiresAt, scope, refreshToken, atJkt);
}
