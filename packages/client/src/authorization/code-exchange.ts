import type { ClientCredentials } from "../client-auth.ts";
import type { AuthorizationServerMetadata } from "../discovery.ts";
import { InvalidResponseError } from "../errors.ts";
import { authorizationCodeGrant } from "../grants/authorization-code.ts";
import { validateIdToken } from "../id-token.ts";
import type { FetchLike, TokenResult } from "../token-response.ts";
import type { AuthorizationTransaction } from "./request.ts";

/**
 * Redeems the code of a checked authorization response (PKCE verifier and redirect URI from the
 * transaction) and validates the ID token it brings (signature, `iss`, `aud`, `exp`, `nonce`,
 * `auth_time` against `max_age`) before returning the tokens.
 */
export async function exchangeAuthorizationCode(
  metadata: AuthorizationServerMetadata,
  client: ClientCredentials,
  transaction: AuthorizationTransaction,
  code: string,
  options: {
    fetch?: FetchLike | undefined;
    /** For the token request alone (a DPoP-proving fetch); default `fetch`. */
    tokenFetch?: FetchLike | undefined;
    now?: (() => number) | undefined;
  } = {},
): Promise<TokenResult> {
  const tokens = await authorizationCodeGrant(
    metadata.token_endpoint,
    client,
    { code, redirectUri: transaction.redirectUri, codeVerifier: transaction.codeVerifier },
    { fetch: options.tokenFetch ?? options.fetch },
  );
  if (tokens.idToken) {
    if (typeof metadata.jwks_uri !== "string") throw new InvalidResponseError("the issuer names no jwks_uri");
    await validateIdToken(tokens.idToken, {
      issuer: metadata.issuer,
      clientId: client.clientId,
      nonce: transaction.nonce,
      maxAge: transaction.maxAge,
      jwksUri: metadata.jwks_uri,
      fetch: options.fetch,
      now: options.now,
    });
  }
  return tokens;
}
