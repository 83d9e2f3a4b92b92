import { createHash, randomUUID } from "node:crypto";
import type { Client } from "../clients.ts";
import type { IssuerContext } from "../context.ts";
import type { DpopBinding } from "../dpop/token-endpoint.ts";
import { digestsEqual, sha256, tokenId } from "../crypto/opaque-token.ts";
import { OAuthError } from "../errors.ts";
import { type FormParams, requiredParam } from "../form-body.ts";
import { codeQueries, tokenQueries, userQueries } from "../queries.ts";
import { releasedClaims, signIdToken } from "../tokens/id-token.ts";
import { startSession } from "../tokens/session.ts";
import type { TokenResponse } from "../tokens/token-response.ts";

interface CodeRow {
  client_id: string;
  user_id: string;
  login_session_id: string | null;
  redirect_uri: string;
  scope: string;
  code_challenge: string;
  nonce: string | null;
  auth_time: Date;
  expires_at: Date;
  credentials_version: number;
  dpop_jkt: string | null;
}

const INVALID = "the authorization code is invalid, expired or already used";
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

/**
 * grant_type=authorization_code (RFC 6749 §4.1.3, RFC 7636 §4.6). A code is redeemed once, by
 * the client it was issued to, with the same redirect URI and the PKCE verifier of its
 * challenge. The first redemption names the family (session) it starts; a second one marks the
 * code and revokes that family, since the code has leaked (RFC 6749 §4.1.2).
 */
export async function authorizationCodeGrant(
  ctx: IssuerContext,
  client: Client,
  params: FormParams,
  ip: string,
  dpop?: DpopBinding,
): Promise<TokenResponse> {
  if (!client.grant_types.includes("authorization_code")) {
    throw new OAuthError("unauthorized_client", "this client may not use the authorization_code grant");
  }
  const code = requiredParam(params, "code");
  const redirectUri = requiredParam(params, "redirect_uri");
  const verifier = requiredParam(params, "code_verifier");
  if (!VERIFIER.test(verifier)) throw new OAuthError("invalid_grant", INVALID);
  const hash = sha256(code);
  const now = ctx.clock.now();
  const familyId = randomUUID();

  const { rows } = await ctx.db.query<CodeRow>(codeQueries.consume({ hash, now, family_id: familyId }));
  const row = rows[0];
  if (!row) {
    await revokeOnReuse(ctx, hash, client, ip);
    throw new OAuthError("invalid_grant", INVALID);
  }
  // Every check after consumption leaves the code used up: one attempt per code.
  const challenge = createHash("sha256").update(verifier).digest();
  if (
    row.client_id !== client.client_id ||
    row.redirect_uri !== redirectUri ||
    row.expires_at <= now ||
    !digestsEqual(challenge, Buffer.from(row.code_challenge, "base64url")) ||
    // A code bound at /authorize (dpop_jkt, RFC 9449 §10) is redeemed only with that key.
    (row.dpop_jkt !== null && row.dpop_jkt !== dpop?.jkt)
  ) {
    throw new OAuthError("invalid_grant", INVALID);
  }

  const response: TokenResponse = await startSession(
    ctx,
    client,
    row.user_id,
    row.scope,
    ip,
    row.credentials_version,
    {
      familyId,
      dpop,
      authTime: row.auth_time,
      loginSessionId: row.login_session_id,
    },
  );
  // A reuse that arrived while the family was being created could not revoke it yet: it left
  // a mark on the code, and the first redemption honours it now.
  const again = await ctx.db.query<{ reused_at: Date | null }>(codeQueries.reusedAt({ hash }));
  if (again.rows[0]?.reused_at) {
    await revokeFamily(ctx, familyId, hash, ip);
    throw new OAuthError("invalid_grant", INVALID);
  }

  if (row.scope.split(" ").includes("openid")) {
    const user = await ctx.db.query<{ username: string; email: string | null }>(
      userQueries.byId({ id: row.user_id }),
    );
    const claims = releasedClaims(row.scope, user.rows[0]);
    response.id_token = await signIdToken(ctx, {
      sub: row.user_id,
      clientId: client.client_id,
      sid: row.login_session_id ?? undefined,
      nonce: row.nonce ?? undefined,
      authTime: row.auth_time,
      accessToken: response.access_token,
      claims,
    });
  }
  return response;
}

async function revokeOnReuse(ctx: IssuerContext, hash: Buffer, client: Client, ip: string): Promise<void> {
  const { rows } = await ctx.db.query<{ family_id: string | null; client_id: string }>(
    codeQueries.markReused({ hash, now: ctx.clock.now(), client_id: client.client_id }),
  );
  const familyId = rows[0]?.family_id;
  if (familyId) await revokeFamily(ctx, familyId, hash, ip);
}

function revokeFamily(ctx: IssuerContext, familyId: string, hash: Buffer, ip: string) {
  return ctx.db.query(
    tokenQueries.revokeFamily({
      family_id: familyId,
      now: ctx.clock.now(),
      reason: "code_reuse",
      type: "authorization_code_reuse",
      token_id: tokenId(hash),
      ip,
      detail: JSON.stringify({ reason: "authorization code used twice" }),
    }),
  );
}
