import { type ClientCredentials, formRequest } from "../client-auth.ts";
import { type FetchLike, parseTokenResponse, send, type TokenResult } from "../token-response.ts";

export interface AuthorizationCodeParameters {
  code: string;
  redirectUri: string;
  /** The PKCE verifier whose S256 challenge was sent to the authorization endpoint. */
  codeVerifier: string;
}

/** RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5): exchanges an authorization code for tokens. */
export async function authorizationCodeGrant(
  tokenEndpoint: string,
  client: ClientCredentials,
  parameters: AuthorizationCodeParameters,
  options: { fetch?: FetchLike | undefined; signal?: AbortSignal | undefined } = {},
): Promise<TokenResult> {
  const init = formRequest(client, {
    grant_type: "authorization_code",
    code: parameters.code,
    redirect_uri: parameters.redirectUri,
    code_verifier: parameters.codeVerifier,
  });
  const response = await send(options.fetch ?? fetch, tokenEndpoint, {
    ...init,
    signal: options.signal ?? null,
  });
  return parseTokenResponse(response);
}
