/**
 * Recognises errors that mean "the database cannot be reached right now" (as opposed to a bad
 * query or bad data), on either driver. Callers answer those with 503 and Retry-After instead
 * of a 500: the request was fine, the dependency is down, and a retry later will work.
 */

// Socket errors while connecting or talking to the server.
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

// SQLSTATEs: 57P01 backend terminated (pg_terminate_backend, fast shutdown), 57P02 crash,
// 57P03 starting up, 53300 too many connections, 57014 a statement cancelled by statement_timeout.
const SQLSTATE_CLASSES: Record<string, string> = {
  "57P01": "backend_terminated",
  "57P02": "server_crashed",
  "57P03": "server_starting",
  "53300": "too_many_connections",
  "57014": "statement_timeout",
};

// Driver-side messages (pg, pg-pool, PGlite) that carry no code.
const MESSAGE_CLASSES: [RegExp, string][] = [
  [/timeout exceeded when trying to connect|connection timeout/i, "connect_timeout"],
  [/Query read timeout/i, "query_timeout"],
  [/Connection terminated|terminating connection|connection error and is not queryable/i, "connection_lost"],
  [/Client was closed|pool after calling end|PGlite is closed/i, "database_closed"],
];

/**
 * The class of a connection-level failure (`"ECONNREFUSED"`, `"query_timeout"`,
 * `"connection_lost"`, …), or undefined when `err` is any other error. The class names are
 * stable and safe to log: they never contain query text or values.
 */
export function unavailableReason(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const { code, message, cause, errors } = err as {
    code?: unknown;
    message?: unknown;
    cause?: unknown;
    errors?: unknown;
  };
  if (typeof code === "string") {
    if (SOCKET_CODES.has(code)) return code;
    if (SQLSTATE_CLASSES[code]) return SQLSTATE_CLASSES[code];
    if (code.startsWith("08")) return "connection_exception";
  }
  if (typeof message === "string") {
    for (const [pattern, reason] of MESSAGE_CLASSES) if (pattern.test(message)) return reason;
  }
  // AggregateError (a connect to several addresses) and wrapped causes.
  if (Array.isArray(errors)) for (const e of errors) if (unavailableReason(e)) return unavailableReason(e);
  return cause !== undefined && cause !== err ? unavailableReason(cause) : undefined;
}
