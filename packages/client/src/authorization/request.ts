import type { AuthorizationServerMetadata } from "../discovery.ts";
import { InvalidResponseError } from "../errors.ts";
import { createPkce, randomToken } from "../pkce.ts";

/** What an authorization request asks for (RFC 6749 §4.1.1, OIDC Core §3.1.2.1). */
export interface AuthorizationParameters {
  clientId: string;
  redirectUri: string;
  /**
   * Default `openid offline_access` (the app lives on the refresh token). A scope you give is sent
   * as it is: include `offline_access` where the issuer grants refresh tokens only for it.
   */
  scope?: string | undefined;
  /** `login`, `consent`, `none`, `select_account` (space-separated for several). */
  prompt?: string | undefined;
  loginHint?: string | undefined;
  /** Seconds since the user last signed in beyond which the issuer must ask again; checked on the ID token's `auth_time`. */
  maxAge?: number | undefined;
  /** Further parameters (`resource`, `ui_locales`, `acr_values`, …). */
  extra?: Record<string, string> | undefined;
}

/**
 * What the app keeps between sending the user to the issuer and the callback: everything the
 * response is checked against, and the PKCE verifier that redeems the code. Secret: keep it
 * where only this app reads it (sessionStorage, memory), and use it once.
 */
export interface AuthorizationTransaction {
  issuer: string;
  clientId: string;
  redirectUri: string;
  codeVerifier: string;
  state: string;
  nonce: string;
  maxAge?: number;
}

/**
 * Builds an authorization request (code flow, PKCE S256, fresh `state` and `nonce`) for the
 * issuer's `authorization_endpoint`. Returns the URL to send the user to and the transaction
 * to keep until the callback.
 */
export async function createAuthorizationRequest(
  metadata: AuthorizationServerMetadata,
  parameters: AuthorizationParameters,
): Promise<{ url: string; transaction: AuthorizationTransaction }> {
  const endpoint = metadata["authorization_endpoint"];
  if (typeof endpoint !== "string")
    throw new InvalidResponseError("the issuer names no authorization_endpoint");
  const pkce = await createPkce();
  const transaction: AuthorizationTransaction = {
    issuer: metadata.issuer,
    clientId: parameters.clientId,
    redirectUri: parameters.redirectUri,
    codeVerifier: pkce.verifier,
    state: randomToken(),
    nonce: randomToken(),
  };
  if (parameters.maxAge !== undefined) transaction.maxAge = parameters.maxAge;
  const url = new URL(endpoint);
  for (const [k, v] of Object.entries({
    ...parameters.extra,
    response_type: "code",
    client_id: parameters.clientId,
    redirect_uri: parameters.redirectUri,
    scope: parameters.scope ?? "openid offline_access",
    state: transaction.state,
    nonce: transaction.nonce,
    code_challenge: pkce.challenge,
    code_challenge_method: pkce.method,
    prompt: parameters.prompt,
    login_hint: parameters.loginHint,
    max_age: parameters.maxAge === undefined ? undefined : String(parameters.maxAge),
  }))
    if (v !== undefined) url.searchParams.set(k, v);
  return { url: url.toString(), transaction };
}
