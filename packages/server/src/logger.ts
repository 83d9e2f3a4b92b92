import type { FastifyServerOptions } from "fastify";

/**
 * Fields that may hold a token, secret or password anywhere in a log line. Request bodies and
 * query strings are never logged at all; this list is the second line of defence.
 */
export const REDACT_PATHS = [
  "req.headers.authorization",
  "req.headers.cookie",
  "req.headers.dpop",
  "*.password",
  "*.client_secret",
  "*.refresh_token",
  "*.access_token",
  "*.token",
  "*.code_verifier",
  "*.secret",
  "password",
  "client_secret",
  "refresh_token",
  "access_token",
  "token",
];

/** pino options for Fastify: redaction, and request lines without query strings or bodies. */
export function loggerOptions(level: string): FastifyServerOptions["logger"] {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    serializers: {
      req: (req: { method: string; url: string; ip?: string }) => ({
        method: req.method,
        url: req.url.split("?")[0],
        ip: req.ip,
      }),
    },
  };
}
