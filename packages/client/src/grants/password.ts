import { type ClientCredentials, formRequest } from "../client-auth.ts";
import { type FetchLike, parseTokenResponse, send, type TokenResult } from "../token-response.ts";

export interface PasswordGrantParameters {
  username: string;
  password: string;
  scope?: string | undefined;
}

/** RFC 6749 §4.3: exchanges a username and password for tokens. */
export async function passwordGrant(
  tokenEndpoint: string,
  client: ClientCredentials,
  parameters: PasswordGrantParameters,
  options: { fetch?: FetchLike | undefined; signal?: AbortSignal | undefined } = {},
): Promise<TokenResult> {
  const init = formRequest(client, { grant_type: "password", ...parameters });
  const response = await send(options.fetch ?? fetch, tokenEndpoint, {
    ...init,
    signal: options.signal ?? null,
  });
  return parseTokenResponse(response);
}
