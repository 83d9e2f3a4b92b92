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
  | "expired_token";

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

/** RFC 6750 §3.1 (protected resources). */
export type BearerErrorCode = "invalid_request" | "invalid_token" | "insufficient_scope";

export class BearerTokenError extends Error {
  readonly status: number;
  readonly error: BearerErrorCode | null;
  readonly description: string;
  readonly scope: string | undefined;
  constructor(error: BearerErrorCode | null, description: string, scope?: string) {
    super(description);
    this.name = "BearerTokenError";
    this.error = error;
    this.description = description;
    this.scope = scope;
    this.status = error === "invalid_request" ? 400 : error === "insufficient_scope" ? 403 : 401;
  }
  /** The WWW-Authenticate challenge; a request with no credentials gets no error code (§3.1). */
  challenge(realm: string): string {
    const parts = [`realm="${realm}"`];
    if (this.error)
      parts.push(`error="${this.error}"`, `error_description="${this.description.replace(/"/g, "'")}"`);
    if (this.scope) parts.push(`scope="${this.scope}"`);
    return `Bearer ${parts.join(", ")}`;
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
