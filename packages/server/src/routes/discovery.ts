import type { FastifyInstance } from "fastify";
import type { IssuerContext } from "../context.ts";
import { DPOP_ALGORITHMS } from "../dpop/proof.ts";

/** RFC 8414 metadata; the OpenID-style path serves the same document for clients that look there. */
export async function discoveryRoutes(app: FastifyInstance, opts: { ctx: IssuerContext }): Promise<void> {
  const { config } = opts.ctx;
  const iss = config.issuer;
  const authMethods = ["client_secret_basic", "client_secret_post", "none"];
  const metadata = {
    issuer: iss,
    authorization_endpoint: `${iss}/authorize`,
    token_endpoint: `${iss}/token`,
    jwks_uri: `${iss}/jwks`,
    revocation_endpoint: `${iss}/revoke`,
    introspection_endpoint: `${iss}/introspect`,
    userinfo_endpoint: `${iss}/userinfo`,
    end_session_endpoint: `${iss}/end-session`,
    device_authorization_endpoint: `${iss}/device_authorization`,
    pushed_authorization_request_endpoint: `${iss}/par`,
    require_pushed_authorization_requests: false,
    grant_types_supported: [
      "authorization_code",
      "password",
      "refresh_token",
      "client_credentials",
      "urn:ietf:params:oauth:grant-type:device_code",
    ],
    response_types_supported: ["code"],
    response_modes_supported: ["query"],
    code_challenge_methods_supported: ["S256"],
    authorization_response_iss_parameter_supported: true,
    prompt_values_supported: ["none", "login", "consent"],
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    claims_parameter_supported: false,
    token_endpoint_auth_methods_supported: authMethods,
    revocation_endpoint_auth_methods_supported: authMethods,
    introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
    scopes_supported: ["openid", "profile", "email", "offline_access"],
    access_token_signing_alg_values_supported: [config.signingAlg],
    id_token_signing_alg_values_supported: [config.signingAlg],
    dpop_signing_alg_values_supported: DPOP_ALGORITHMS,
    subject_types_supported: ["public"],
    claims_supported: [
      "iss",
      "sub",
      "aud",
      "exp",
      "iat",
      "auth_time",
      "nonce",
      "at_hash",
      "sid",
      "azp",
      "preferred_username",
      "email",
    ],
  };
  const send = async () => metadata;
  app.get("/.well-known/oauth-authorization-server", send);
  app.get("/.well-known/openid-configuration", send);
}
