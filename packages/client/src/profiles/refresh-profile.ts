import type { FetchLike, TokenResult } from "../token-response.ts";

/** What a refresh profile gets to make its call. */
export interface RefreshContext {
  fetch: FetchLike;
  clientId: string;
  /** The token endpoint: the explicit `tokenEndpoint` option or the one discovered. */
  tokenEndpoint(): Promise<string>;
  signal?: AbortSignal | undefined;
}

/**
 * How to turn a refresh token into new tokens. Throw `TokenEndpointError` with
 * `error: "invalid_grant"` when the refresh token is dead (the session ends), anything with a
 * status >= 500 / 429 or a `NetworkError` for transient failures (retried), and return a
 * `TokenResult` otherwise. A bare function of this shape is accepted too (the escape hatch).
 */
export interface RefreshProfile {
  refresh(refreshToken: string, context: RefreshContext): Promise<TokenResult>;
}

export type RefreshFunction = RefreshProfile["refresh"];
