import { type ClientCredentials, formRequest } from "../client-auth.ts";
import { type FetchLike, parseTokenResponse, send, type TokenResult } from "../token-response.ts";

/**
 * RFC 6749 §6: presents a refresh token for a new access token (and, on a rotating server,
 * a new refresh token; when `refreshToken` is absent from the result the server did not rotate).
 */
export async function refreshTokens(
  tokenEndpoint: string,
  client: ClientCredentials,
  refreshToken: string,
  options: {
    scope?: string | undefined;
    fetch?: FetchLike | undefined;
    signal?: AbortSignal | undefined;
  } = {},
): Promise<TokenResult> {
  const init = formRequest(client, {
    grant_type: "refresh_token",
    refresh_token: refreshToken,
    scope: options.scope,
  });
  const response = await send(options.fetch ?? fetch, tokenEndpoint, {
    ...init,
    signal: options.signal ?? null,
  });
  return parseTokenResponse(response);
}
