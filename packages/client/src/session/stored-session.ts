import type { TokenResult } from "../token-response.ts";

/** The tokens a session holds. Times are epoch milliseconds on the issuer's clock. */
export interface TokenSet {
  accessToken: string;
  tokenType: string;
  refreshToken?: string;
  /** When the access token expires; absent when the server gave no hint (then only a 401 refreshes). */
  expiresAt?: number;
  /** When the tokens were obtained. */
  receivedAt: number;
  scope?: string;
  idToken?: string;
}

/** The record kept in storage, one per session key. */
export interface StoredSession {
  version: 1;
  tokens: TokenSet;
  /**
   * In-flight marker: set (to the server time the refresh started) before a refresh request is
   * sent, removed when its result is stored. Found set by a later reader, it means a refresh was
   * cut off (app killed, response lost): the reader refreshes at once, while the issuer's reuse
   * grace window still hands out the same successor.
   */
  refreshingSince?: number;
  /**
   * Grows with every new token set (login or refresh) stored under this key, so a reader can
   * tell an older record from a newer one: a stale read of storage, or a write that would put
   * older tokens over newer ones. Absent in records written before it existed (counts as 0).
   */
  generation?: number;
}

/** A record's generation; 0 for none. */
export const generationOf = (session: StoredSession | null | undefined) => session?.generation ?? 0;

/** Reads `exp` from a JWT's payload, without verifying it (the SDK only needs a hint of expiry). */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split(".")[1];
  if (!payload || token.split(".").length !== 3) return undefined;
  try {
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Turns a token response into the tokens to keep.
 *
 * Refresh-token retention policy: when a response carries no `refresh_token` (a server that
 * does not rotate), the refresh token we already had is kept and used again. When it carries
 * one, the new one replaces the old, which is never used again.
 *
 * Expiry: `expires_in` counted from when the request was sent (on the server's clock, so a
 * skewed device clock does not matter), else an absolute `expiresAt`, else the JWT's `exp`;
 * for tokens `justIssued` by the endpoint, one at or before `sentAt` is not believed (then the
 * JWT's `exp` if later, else unknown). Tokens handed to `setTokens` may really have expired.
 */
export function tokenSetFrom(
  result: TokenResult,
  sentAt: number,
  previous?: TokenSet,
  justIssued = true,
): TokenSet {
  const jwtExp = jwtExpiry(result.accessToken);
  let expiresAt =
    result.expiresIn !== undefined ? sentAt + result.expiresIn * 1000 : (result.expiresAt ?? jwtExp);
  // A JWT's whole-second `exp` can come up to a second before sentAt + expires_in: take the
  // earlier of the two, but only when `exp` is plausible (a wrong server-time estimate — no
  // readable Date header on a skewed device — would otherwise mark every token as expired).
  if (
    result.expiresIn !== undefined &&
    jwtExp !== undefined &&
    jwtExp >= sentAt &&
    jwtExp < (expiresAt ?? 0)
  ) {
    expiresAt = jwtExp;
  }
  // An expiry at or before receipt (`expires_in: 0`; an absolute time on a device clock that is
  // ahead, with no readable Date header) says nothing usable: every refresh would bring tokens
  // already due. Fall back to a JWT `exp` still ahead, else to unknown (a 401 then refreshes).
  if (justIssued && expiresAt !== undefined && expiresAt <= sentAt) {
    expiresAt = jwtExp !== undefined && jwtExp > sentAt ? jwtExp : undefined;
  }
  const tokens: TokenSet = {
    accessToken: result.accessToken,
    tokenType: result.tokenType,
    receivedAt: sentAt,
  };
  const refreshToken = result.refreshToken ?? previous?.refreshToken;
  if (refreshToken !== undefined) tokens.refreshToken = refreshToken;
  if (expiresAt !== undefined) tokens.expiresAt = expiresAt;
  const scope = result.scope ?? previous?.scope;
  if (scope !== undefined) tokens.scope = scope;
  const idToken = result.idToken ?? previous?.idToken;
  if (idToken !== undefined) tokens.idToken = idToken;
  return tokens;
}

export function decodeStoredSession(value: string | null): StoredSession | null {
  if (!value) return null;
  try {
    const parsed = JSON.parse(value) as StoredSession;
    return parsed?.version === 1 && typeof parsed.tokens?.accessToken === "string" ? parsed : null;
  } catch {
    return null;
  }
}
