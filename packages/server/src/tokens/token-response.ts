import type { IssuerContext } from "../context.ts";
import type { SigningKey } from "../keys/signing-keys.ts";
import { type AccessTokenClaims, signAccessToken } from "./access-token.ts";
import { numericDate } from "./numeric-date.ts";

/** RFC 6749 §5.1 successful token response. */
export interface TokenResponse {
  access_token: string;
  /** `DPoP` when the access token is bound to a DPoP key (RFC 9449 §5). */
  token_type: "Bearer" | "DPoP";
  expires_in: number;
  refresh_token?: string;
  /** Omitted when empty (RFC 6749 §5.1 makes it optional). */
  scope?: string;
  /** OpenID Connect ID token (authorization code grant with the `openid` scope). */
  id_token?: string;
}

export interface AccessTokenFacts {
  sub: string;
  clientId: string;
  scope: string;
  sid?: string;
  jti: string;
  issuedAt: Date;
  expiresAt: Date;
  /** The DPoP key thumbprint the token is bound to (`cnf.jkt`), if any. */
  jkt?: string | null;
}

/** Builds the claims from stored facts, so a grace-window replay reproduces the same token. */
export function accessTokenFor(ctx: IssuerContext, facts: AccessTokenFacts, key: SigningKey): string {
  const claims: AccessTokenClaims = {
    iss: ctx.config.issuer,
    sub: facts.sub,
    aud: ctx.config.audience,
    exp: numericDate(facts.expiresAt),
    iat: numericDate(facts.issuedAt),
    jti: facts.jti,
    client_id: facts.clientId,
    scope: facts.scope || undefined,
    sid: facts.sid,
    cnf: facts.jkt ? { jkt: facts.jkt } : undefined,
  };
  return signAccessToken(claims, key);
}

/**
 * `now` is the instant the grant read once and derived `accessExpiresAt` from: reading the
 * clock again here could cross a second boundary and answer `expires_in` one short.
 */
export function tokenResponse(
  now: Date,
  accessToken: string,
  accessExpiresAt: Date,
  scope: string,
  refreshToken?: string,
  dpopJkt?: string | null,
): TokenResponse {
  const res: TokenResponse = {
    access_token: accessToken,
    token_type: dpopJkt ? "DPoP" : "Bearer",
    expires_in: Math.max(numericDate(accessExpiresAt) - numericDate(now), 0),
  };
  if (scope) res.scope = scope;
  if (refreshToken) res.refresh_token = refreshToken;
  return res;
}
