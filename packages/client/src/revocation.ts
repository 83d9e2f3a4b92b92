import { type ClientCredentials, formRequest } from "./client-auth.ts";
import { type FetchLike, send, throwResponseError } from "./token-response.ts";

/** RFC 7009: asks the server to revoke a token. Resolves when the server answered 200. */
export async function revokeToken(
  revocationEndpoint: string,
  client: ClientCredentials,
  token: string,
  options: {
    tokenTypeHint?: "refresh_token" | "access_token" | undefined;
    fetch?: FetchLike | undefined;
    signal?: AbortSignal | undefined;
  } = {},
): Promise<void> {
  const init = formRequest(client, { token, token_type_hint: options.tokenTypeHint });
  const response = await send(options.fetch ?? fetch, revocationEndpoint, {
    ...init,
    signal: options.signal ?? null,
  });
  if (!response.ok) await throwResponseError(response);
  await response.body?.cancel();
}
