/**
 * Protocol errors, one class per protocol, each carrying the standard `error` code a caller
 * can switch on. Messages never contain tokens, secrets or passwords.
 */

/** RFC 6749 §5.2 (token, revocation, introspection endpoints). */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "invalid_scope"
  | "unsupported_token_type"
  | "too_many_requests"
  | "server_error"
  | "temporarily_unavailable"

  // RFC 8628 §3.5 (device authorization grant)
  | "authorization_pending"
  | "slow_down"
  | "access_denied"
  | "expired_token"

  // RFC 9449 §5, §8 (DPoP)
  | "invalid_dpop_proof"
  | "use_dpop_nonce";

const OAUTH_STATUS: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  unsupported_token_type: 400,
  too_many_requests: 429,
  server_error: 500,
  temporarily_unavailable: 503,
  authorization_pending: 400,
  slow_down: 400,
  access_denied: 400,
  expired_token: 400,
  invalid_dpop_proof: 400,
  use_dpop_nonce: 400,
};

export class OAuthError extends Error {
  readonly status: number;
  /** Extra response headers (WWW-Authenticate for Basic auth failures, Retry-After). */
  readonly headers: Record<string, string>;
  readonly error: OAuthErrorCode;
  readonly description: string;
  constructor(error: OAuthErrorCode, description: string, headers: Record<string, string> = {}) {
    super(description);
    this.name = "OAuthError";
    this.error = error;
    this.description = description;
    this.status = OAUTH_STATUS[error];
    this.headers = headers;
  }
  toJSON(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}

/**
 * A DPoP proof that failed its checks (RFC 9449 §4.3), before it is answered: the token
 * endpoint turns it into an OAuthError, a protected resource into a BearerTokenError with a
 * `DPoP` challenge. `use_dpop_nonce` asks the client to retry with the server's nonce.
 */
export class DpopProofError extends Error {
  readonly error: "invalid_dpop_proof" | "use_dpop_nonce";
  readonly description: string;
  constructor(error: "invalid_dpop_proof" | "use_dpop_nonce", description: string) {
    super(description);
    this.name = "DpopProofError";
    this.error = error;
    this.description = description;
  }
}

/** RFC 6750 §3.1 (protected resources), and RFC 9449 §7.1 for DPoP-bound tokens. */
export type BearerErrorCode =
  | "invalid_request"
  | "invalid_token"
  | "insufficient_scope"
  | "invalid_dpop_proof"
  | "use_dpop_nonce";

/** How the challenge of a BearerTokenError is built beyond RFC 6750's defaults. */
export interface ChallengeOptions {
  /** `DPoP` for errors about DPoP-bound tokens (RFC 9449 §7.1); default `Bearer`. */
  scheme?: "Bearer" | "DPoP";
  /** The DPoP algorithms the resource accepts (`algs` of the DPoP challenge). */
  algs?: readonly string[];
  /** Extra response headers (`DPoP-Nonce`). */
  headers?: Record<string, string>;
}

export class BearerTokenError extends Error {
  readonly status: number;
  readonly error: BearerErrorCode | null;
  readonly description: string;
  readonly scope: string | undefined;
  readonly scheme: "Bearer" | "DPoP";
  readonly algs: readonly string[] | undefined;
  readonly headers: Record<string, string>;
  constructor(
    error: BearerErrorCode | null,
    description: string,
    scope?: string,
    options: ChallengeOptions = {},
  ) {
    super(description);
    this.name = "BearerTokenError";
    this.error = error;
    this.description = description;
    this.scope = scope;
    this.scheme = options.scheme ?? "Bearer";
    this.algs = options.algs;
    this.headers = options.headers ?? {};
    this.status = error === "invalid_request" ? 400 : error === "insufficient_scope" ? 403 : 401;
  }
  /** The WWW-Authenticate challenge; a request with no credentials gets no error code (§3.1). */
  challenge(realm: string): string {
    const parts = [`realm="${realm}"`];
    if (this.error)
      parts.push(`error="${this.error}"`, `error_description="${this.description.replace(/"/g, "'")}"`);
    if (this.scope) parts.push(`scope="${this.scope}"`);
    if (this.scheme === "DPoP" && this.algs?.length) parts.push(`algs="${this.algs.join(" ")}"`);
    return `${this.scheme} ${parts.join(", ")}`;
  }
  toJSON(): { error: string; error_description: string } {
    return { error: this.error ?? "invalid_token", error_description: this.description };
  }
}

/** The admin API's errors: same JSON shape, HTTP-flavoured codes. */
export type AdminErrorCode = "invalid_request" | "unauthorized" | "not_found" | "conflict";
const ADMIN_STATUS: Record<AdminErrorCode, number> = {
  invalid_request: 400,
  unauthorized: 401,
  not_found: 404,
  conflict: 409,
};

export class AdminApiError extends Error {
  readonly status: number;
  readonly error: AdminErrorCode;
  readonly description: string;
  constructor(error: AdminErrorCode, description: string) {
    super(description);
    this.name = "AdminApiError";
    this.error = error;
    this.description = description;
    this.status = ADMIN_STATUS[error];
  }
  toJSON(): { error: string; error_description: string } {
    return { error: this.error, error_description: this.description };
  }
}
