import type { AuthorizationServerMetadata } from "../discovery.ts";
import { AuthorizationError } from "../errors.ts";

/**
 * Checks an authorization response (the redirect's query) and returns its code: `state` must be
 * the one sent, `iss` the issuer's (RFC 9207; required when the metadata announces it), and an
 * `error` becomes an AuthorizationError carrying it. The issuer is checked before the error, so
 * an error response from another issuer (a mix-up) is reported as such.
 */
export function authorizationCode(
  metadata: AuthorizationServerMetadata,
  params: URLSearchParams,
  expectedState: string,
): string {
  if (params.get("state") !== expectedState)
    throw new AuthorizationError("invalid_state", "state does not match");
  const iss = params.get("iss");
  if (iss !== null && iss !== metadata.issuer)
    throw new AuthorizationError("invalid_issuer", "iss does not match");
  if (metadata["authorization_response_iss_parameter_supported"] === true && iss === null)
    throw new AuthorizationError("invalid_issuer", "the response lacks iss");
  const error = params.get("error");
  if (error) throw new AuthorizationError(error, params.get("error_description") ?? undefined);
  const code = params.get("code");
  if (!code) throw new AuthorizationError("invalid_response", "the response has no code");
  return code;
}
