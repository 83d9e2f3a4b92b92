import type { FastifyInstance, FastifyRequest } from "fastify";
import { OAuthError } from "./errors.ts";

export type FormParams = Record<string, string | string[]>;

/** Token, revocation and introspection bodies are small; anything bigger is not a client of ours. */
export const FORM_BODY_LIMIT = 16 * 1024;

/** Registers an `application/x-www-form-urlencoded` parser that keeps repeated keys visible. */
export function registerFormParser(app: FastifyInstance): void {
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string", bodyLimit: FORM_BODY_LIMIT },
    (_req, body, done) => {
      const params: FormParams = {};
      for (const [k, v] of new URLSearchParams(body as string)) {
        const prev = params[k];
        params[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
      }
      done(null, params);
    },
  );
}

/** RFC 6749 §3.2: token endpoint requests are form-encoded POSTs. */
export function formParams(req: FastifyRequest): FormParams {
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded" || typeof req.body !== "object" || req.body === null) {
    throw new OAuthError("invalid_request", "the request body must be application/x-www-form-urlencoded");
  }
  return req.body as FormParams;
}

/**
 * One parameter: repeated ones are an error (RFC 6749 §3.1) and empty ones count as absent.
 * Values are never echoed back in the error, since they may be secrets.
 */
export function param(params: FormParams, name: string): string | undefined {
  const v = params[name];
  if (Array.isArray(v)) throw new OAuthError("invalid_request", `parameter "${name}" must not be repeated`);
  // No OAuth parameter contains a NUL, and PostgreSQL text cannot hold one.
  if (v?.includes("\u0000"))
    throw new OAuthError("invalid_request", `parameter "${name}" contains a NUL character`);
  return v === undefined || v === "" ? undefined : v;
}

export function requiredParam(params: FormParams, name: string): string {
  const v = param(params, name);
  if (v === undefined) throw new OAuthError("invalid_request", `missing required parameter "${name}"`);
  return v;
}
