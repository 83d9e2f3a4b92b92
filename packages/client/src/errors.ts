/**
 * Every failure the SDK reports is one of these classes, each with a stable `code` a caller
 * can switch on. Protocol errors keep the server's RFC 6749 `error` value in `error`.
 */
export class EvergreenError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The token endpoint (or a mapped refresh endpoint) answered with an error status. */
export class TokenEndpointError extends EvergreenError {
  /** HTTP status of the response. */
  readonly status: number;
  /** RFC 6749 §5.2 `error` (e.g. `invalid_grant`), or `http_<status>` when the body had none. */
  readonly error: string;
  readonly errorDescription: string | undefined;
  /** Milliseconds to wait before retrying, from a `Retry-After` header. */
  readonly retryAfter: number | undefined;
  constructor(status: number, error: string, errorDescription?: string, retryAfter?: number) {
    super(
      error,
      `token endpoint answered ${status} ${error}${errorDescription ? `: ${errorDescription}` : ""}`,
    );
    this.status = status;
    this.error = error;
    this.errorDescription = errorDescription;
    this.retryAfter = retryAfter;
  }
}

/** The request never got an HTTP response (DNS, connection refused, reset, offline). */
export class NetworkError extends EvergreenError {
  constructor(message: string, cause?: unknown) {
    super("network_error", message, { cause });
  }
}

/**
 * The session is over: the refresh token was rejected (`invalid_grant`), or there never was
 * one. Tokens have been cleared and one `expired` event was emitted; the user must log in.
 */
export class SessionExpiredError extends EvergreenError {
  constructor(message = "the session has expired; log in again", cause?: unknown) {
    super("session_expired", message, { cause });
  }
}

/** A refresh kept failing for a transient reason (network, 5xx, 429). Tokens are kept. */
export class RefreshFailedError extends EvergreenError {
  constructor(message: string, cause?: unknown) {
    super("refresh_failed", message, { cause });
  }
}

/** `session.fetch` was given a body that cannot be sent twice (a stream) without buffering. */
export class BodyNotReplayableError extends EvergreenError {
  constructor() {
    super(
      "body_not_replayable",
      "the request body is a ReadableStream, which cannot be replayed after a 401; pass a Blob, " +
        "ArrayBuffer, string or FormData, or create the session with `bufferStreamBodies: true`",
    );
  }
}

/**
 * Issuer metadata could not be fetched or does not name the endpoint the SDK needs (code
 * `discovery_failed`, retried as transient), or it is another issuer's (code `issuer_mismatch`,
 * a configuration error that retrying cannot fix).
 */
export class DiscoveryError extends EvergreenError {
  constructor(
    message: string,
    cause?: unknown,
    code: "discovery_failed" | "issuer_mismatch" = "discovery_failed",
  ) {
    super(code, message, { cause });
  }
}

/** `lockedStorage` was asked for its contents and the `unlock()` callback refused. */
export class StorageLockedError extends EvergreenError {
  constructor() {
    super("storage_locked", "the token storage is locked and unlock() was refused");
  }
}

/** A token response was malformed (no `access_token`, wrong types). */
export class InvalidResponseError extends EvergreenError {
  constructor(message: string) {
    super("invalid_response", message);
  }
}

/**
 * The authorization response was an error (`access_denied`, `login_required`, … in `error`) or
 * could not be trusted (`invalid_state`, `invalid_issuer`, `invalid_response`). `code` is `error`.
 */
export class AuthorizationError extends EvergreenError {
  /** The OAuth `error` of the response, or the check that failed. */
  readonly error: string;
  readonly description: string | undefined;
  constructor(error: string, description?: string) {
    super(error, description ? `${error}: ${description}` : error);
    this.error = error;
    this.description = description;
  }
}
