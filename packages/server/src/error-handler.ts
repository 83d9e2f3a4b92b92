import { unavailableReason } from "@evergreen/db";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { type OutageLog, outageError } from "./dependency-outage.ts";
import { AdminApiError, BearerTokenError, OAuthError } from "./errors.ts";
import { FORM_BODY_LIMIT } from "./form-body.ts";

/**
 * The issuer's error handler: each protocol error class becomes its standard response
 * (RFC 6749 §5.2 JSON with no-store, RFC 6750 challenge, admin JSON), an unreachable database
 * 503 with Retry-After, malformed input 400 invalid_request; anything else is logged and 500.
 */
export function errorHandler(outages: OutageLog) {
  return (caught: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    // The database being down is not the request's fault: 503 + Retry-After, one log line per class.
    const outage = unavailableReason(caught);
    if (outage) outages.report("database", outage, "database unreachable; answering 503");
    const err = outage ? outageError() : caught;
    if (err instanceof OAuthError) {
      return reply
        .code(err.status)
        .headers(err.headers)
        .header("Cache-Control", "no-store")
        .header("Pragma", "no-cache")
        .send(err.toJSON());
    }
    if (err instanceof AdminApiError)
      return reply.code(err.status).header("Cache-Control", "no-store").send(err.toJSON());
    if (err instanceof BearerTokenError) {
      return reply
        .code(err.status)
        .headers(err.headers)
        .header("WWW-Authenticate", err.challenge("evergreen"))
        .send(err.toJSON());
    }
    // Text PostgreSQL cannot store (a NUL character) that slipped past validation is bad input.
    const pgCode = (err as { code?: string }).code;
    if (pgCode === "22021" || pgCode === "22P05") {
      return reply.code(400).header("Cache-Control", "no-store").send({
        error: "invalid_request",
        error_description: "the request contains characters that are not allowed",
      });
    }
    // Malformed input caught by Fastify itself (body too large, bad JSON, unknown media type,
    // schema validation) is the client's fault: RFC 6749 invalid_request, never a 500.
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      const description =
        err.code === "FST_ERR_CTP_BODY_TOO_LARGE" || status === 413
          ? `the request body exceeds ${FORM_BODY_LIMIT} bytes`
          : err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE" || status === 415
            ? "unsupported content type"
            : "malformed request";
      return reply
        .code(400)
        .header("Cache-Control", "no-store")
        .send({ error: "invalid_request", error_description: description });
    }
    req.log.error({ err: { type: err.name, code: err.code, stack: err.stack } }, "request failed");
    return reply
      .code(500)
      .header("Cache-Control", "no-store")
      .send({ error: "server_error", error_description: "internal error" });
  };
}
