import type { Client, ClientRegistry } from "../clients.ts";
import { OAuthError } from "../errors.ts";
import { parseScope } from "../scope.ts";
import { matchRedirectUri } from "./redirect-uri.ts";

/** A validated authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, OIDC Core §3.1.2.1). */
export interface AuthorizationRequest {
  client: Client;
  redirectUri: string;
  scope: string;
  state?: string;
  codeChallenge: string;
  nonce?: string;
  prompt: Set<"none" | "login" | "consent">;
  /** Seconds; a login older than this must be repeated. */
  maxAge?: number;
  loginHint?: string;
  /** RFC 9449 §10: the code is redeemed only with a DPoP proof of this key (JWK thumbprint). */
  dpopJkt?: string;
  /** The original query string, carried through the login and consent forms. */
  query: string;
}

/** Errors the RFC says to show the user, never to redirect: the redirect URI is not trusted. */
export class AuthorizePageError extends Error {
  readonly description: string;

  constructor(description: string) {
    super(description);
    this.description = description;
    this.name = "AuthorizePageError";
  }
}

/** An error returned to the client at its (verified) redirect URI (RFC 6749 §4.1.2.1). */
export class AuthorizeRedirectError extends Error {
  readonly error: string;
  readonly description: string;
  readonly redirectUri: string;
  readonly state: string | undefined;

  constructor(error: string, description: string, redirectUri: string, state: string | undefined) {
    super(description);
    this.error = error;
    this.description = description;
    this.redirectUri = redirectUri;
    this.state = state;
    this.name = "AuthorizeRedirectError";
  }
}

const CODE_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const PROMPTS = new Set(["none", "login", "consent"]);

/**
 * Parses and validates an authorization request from its query string. The client and the
 * redirect URI are checked first: until both are known good, every error is an
 * AuthorizePageError. After that, errors go back to the client as AuthorizeRedirectError.
 */
export async function parseAuthorizationRequest(
  query: string,
  clients: ClientRegistry,
): Promise<AuthorizationRequest> {
  const params = new URLSearchParams(query);
  const one = (name: string): string | undefined => {
    const all = params.getAll(name);
    if (all.length > 1) throw new Error(name);
    const v = all[0];
    return v === undefined || v === "" ? undefined : v;
  };
  let clientId: string | undefined;
  let redirectUri: string | undefined;
  try {
    clientId = one("client_id");
    redirectUri = one("redirect_uri");
  } catch {
    throw new AuthorizePageError("The request repeats client_id or redirect_uri.");
  }
  if (!clientId || clientId.length > 128 || clientId.includes("\u0000"))
    throw new AuthorizePageError("The request does not name an application (client_id).");
  const client = await clients.get(clientId);
  if (!client) throw new AuthorizePageError("The application that sent you here is not registered.");
  if (!redirectUri)
    throw new AuthorizePageError("The request does not say where to return to (redirect_uri).");
  if (!matchRedirectUri(client.redirect_uris, redirectUri))
    throw new AuthorizePageError("The return address (redirect_uri) is not registered for this application.");

  let state: string | undefined;
  const fail = (error: string, description: string) =>
    new AuthorizeRedirectError(error, description, redirectUri!, state);
  try {
    state = one("state");
  } catch {
    throw new AuthorizeRedirectError(
      "invalid_request",
      'parameter "state" must not be repeated',
      redirectUri,
      undefined,
    );
  }
  if (query.includes("%00")) throw fail("invalid_request", "the request contains a NUL character");
  const get = (name: string): string | undefined => {
    try {
      return one(name);
    } catch {
      throw fail("invalid_request", `parameter "${name}" must not be repeated`);
    }
  };

  if (params.has("request")) throw fail("request_not_supported", "request objects are not supported");
  if (params.has("request_uri")) throw fail("request_uri_not_supported", "request_uri is not supported");
  const responseType = get("response_type");
  if (!responseType) throw fail("invalid_request", 'missing required parameter "response_type"');
  if (responseType !== "code")
    throw fail("unsupported_response_type", "only response_type=code is supported");
  const responseMode = get("response_mode");
  if (responseMode !== undefined && responseMode !== "query")
    throw fail("invalid_request", "only response_mode=query is supported");
  if (!client.grant_types.includes("authorization_code"))
    throw fail("unauthorized_client", "this client may not use the authorization code flow");

  let requested: string[] | undefined;
  try {
    requested = parseScope(get("scope"));
  } catch (err) {
    if (err instanceof OAuthError) throw fail("invalid_scope", err.description);
    throw err;
  }
  const allowed = client.scope.split(" ").filter(Boolean);
  if (requested?.some((s) => !allowed.includes(s)))
    throw fail("invalid_scope", "the requested scope is not allowed for this client");
  const scope = (requested ?? allowed).join(" ");

  // PKCE is required of every client (OAuth 2.1), and only S256: "plain" would send the
  // verifier itself through the browser.
  const challenge = get("code_challenge");
  const method = get("code_challenge_method");
  if (!challenge) throw fail("invalid_request", "code_challenge is required (PKCE, S256)");
  if (method !== "S256") throw fail("invalid_request", "code_challenge_method must be S256");
  if (!CODE_CHALLENGE.test(challenge))
    throw fail("invalid_request", "code_challenge must be a base64url SHA-256 digest");

  const prompt = new Set<"none" | "login" | "consent">();
  for (const p of (get("prompt") ?? "").split(" ").filter(Boolean)) {
    if (!PROMPTS.has(p)) throw fail("invalid_request", "unsupported prompt value");
    prompt.add(p as "none" | "login" | "consent");
  }
  if (prompt.has("none") && prompt.size > 1)
    throw fail("invalid_request", "prompt=none cannot be combined with other values");

  const maxAgeRaw = get("max_age");
  let maxAge: number | undefined;
  if (maxAgeRaw !== undefined) {
    if (!/^\d{1,9}$/.test(maxAgeRaw)) throw fail("invalid_request", "max_age must be a non-negative integer");
    maxAge = Number(maxAgeRaw);
  }
  const nonce = get("nonce");
  if (nonce !== undefined && nonce.length > 512) throw fail("invalid_request", "nonce is too long");
  const loginHint = get("login_hint");
  const dpopJkt = get("dpop_jkt");
  if (dpopJkt !== undefined && !/^[A-Za-z0-9_-]{43}$/.test(dpopJkt))
    throw fail("invalid_request", "dpop_jkt must be a base64url SHA-256 JWK thumbprint");

  return {
    client,
    redirectUri,
    scope,
    state,
    codeChallenge: challenge,
    nonce,
    prompt,
    maxAge,
    loginHint: loginHint && loginHint.length <= 256 ? loginHint : undefined,
    dpopJkt,
    query,
  };
}

/** The redirect URI with the response parameters added (RFC 6749 §4.1.2, RFC 9207 `iss`). */
export function redirectWith(redirectUri: string, params: Record<string, string | undefined>): string {
  const url = new URL(redirectUri);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.append(k, v);
  return url.toString();
}
