import { Ajv, type ErrorObject } from "ajv";
import type { FastifySchemaCompiler } from "fastify";
import { AUTH_METHODS, GRANT_TYPES, REFRESH_TOKEN_POLICIES } from "../clients.ts";
import { AdminApiError } from "../errors.ts";

/**
 * JSON Schemas of the admin API's bodies, and the messages their failures answer with. The
 * stores keep only what a schema cannot say (a client id shaped like a UUID, a parseable
 * redirect URI or scope, NFKC usernames, rules across fields and stored values).
 */

const NO_NUL = "^[^\\u0000]*$";
const TEN_YEARS = 10 * 365 * 86400;

const seconds = (min: number, max: number) => ({ type: "integer", minimum: min, maximum: max });

const clientProperties = {
  client_id: { type: "string", pattern: "^[A-Za-z0-9._~-]{1,128}$" },
  client_name: { type: ["string", "null"], maxLength: 200, pattern: NO_NUL },
  token_endpoint_auth_method: { enum: AUTH_METHODS },
  grant_types: { type: "array", minItems: 1, items: { type: "string", enum: GRANT_TYPES } },
  redirect_uris: {
    type: "array",
    items: { type: "string", minLength: 1, maxLength: 2048, pattern: NO_NUL },
  },
  scope: { type: "string" },
  access_token_ttl: seconds(1, 86400),
  refresh_token_idle_ttl: seconds(1, TEN_YEARS),
  refresh_token_absolute_ttl: seconds(1, TEN_YEARS),
  rotate_refresh_tokens: { type: "boolean" },
  refresh_token_reuse_grace: seconds(0, 300),
  max_sessions_per_user: seconds(1, 10000),
  skip_consent: { type: "boolean" },
  refresh_token_policy: { enum: REFRESH_TOKEN_POLICIES },
  dpop_bound_access_tokens: { type: "boolean" },
  require_pushed_authorization_requests: { type: "boolean" },
};

export const createClientBody = { type: "object", required: ["grant_types"], properties: clientProperties };
export const updateClientBody = { type: "object", properties: clientProperties };

/**
 * Usernames are compared exactly (case-sensitive), so two that look alike must not both exist:
 * no whitespace, no control or format characters (zero-width joiners and spaces, bidi
 * overrides, soft hyphens: \p{Cf}), no line/paragraph separators, no unassigned or private-use
 * code points. (NFKC form is checked by the user store.)
 */
const userProperties = {
  username: {
    type: "string",
    minLength: 1,
    maxLength: 255,
    pattern: "^[^\\s\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}\\p{Co}\\p{Cn}\\p{Cs}]*$",
  },
  password: { type: "string", minLength: 8, maxLength: 1024 },
  email: { type: ["string", "null"], maxLength: 320, pattern: "^[^\\s@\\p{Cc}]+@[^\\s@\\p{Cc}]+$" },
  admin: { type: "boolean" },
};

export const createUserBody = {
  type: "object",
  required: ["username", "password"],
  properties: userProperties,
};
export const updateUserBody = {
  type: "object",
  properties: { ...userProperties, disabled: { type: "boolean" } },
};

const secondsMessage = (name: string, [min, max]: [number, number]) =>
  `${name} must be an integer number of seconds between ${min} and ${max}`;

/** The message for a failure, by the top-level field it concerns ("" is the body itself). */
const MESSAGES: Record<string, string | ((e: ErrorObject) => string)> = {
  "": "the body must be a JSON object",
  client_id: "client_id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -",
  client_name: "client_name must be a string of at most 200 characters",
  token_endpoint_auth_method: `token_endpoint_auth_method must be one of ${AUTH_METHODS.join(", ")}`,
  grant_types: (e) =>
    e.keyword === "required"
      ? "grant_types is required"
      : e.keyword === "minItems"
        ? "grant_types must not be empty"
        : e.keyword === "enum"
          ? `unsupported grant type: ${String(e.data)}`
          : "grant_types must be an array of strings",
  redirect_uris: "redirect_uris must be an array of strings",
  scope: "scope must be a space-separated string",
  access_token_ttl: secondsMessage("access_token_ttl", [1, 86400]),
  refresh_token_idle_ttl: secondsMessage("refresh_token_idle_ttl", [1, TEN_YEARS]),
  refresh_token_absolute_ttl: secondsMessage("refresh_token_absolute_ttl", [1, TEN_YEARS]),
  rotate_refresh_tokens: "rotate_refresh_tokens must be a boolean",
  refresh_token_reuse_grace: secondsMessage("refresh_token_reuse_grace", [0, 300]),
  max_sessions_per_user: secondsMessage("max_sessions_per_user", [1, 10000]),
  skip_consent: "skip_consent must be a boolean",
  refresh_token_policy: `refresh_token_policy must be one of ${REFRESH_TOKEN_POLICIES.join(", ")}`,
  dpop_bound_access_tokens: "dpop_bound_access_tokens must be a boolean",
  require_pushed_authorization_requests: "require_pushed_authorization_requests must be a boolean",
  username: "username must be 1-255 characters without spaces, control, format or invisible characters",
  password: "password must be 8-1024 characters",
  email: "email must be an email address",
  admin: "admin must be a boolean",
  disabled: "disabled must be a boolean",
};

/** Maps a schema failure to the admin API's own 400, naming the field as the stores did. */
export function adminSchemaError(errors: ErrorObject[]): AdminApiError {
  const e = errors[0]!;
  const field =
    e.keyword === "required"
      ? String((e.params as { missingProperty: string }).missingProperty)
      : (e.instancePath.split("/")[1] ?? "");
  const message = MESSAGES[field] ?? `${field} is invalid`;
  return new AdminApiError("invalid_request", typeof message === "string" ? message : message(e));
}

// No type coercion (a string is not a number of seconds), lengths in UTF-16 units as the stores
// counted them (`unicode: false`, which Ajv keeps but calls deprecated: its logger is off so the
// notice does not reach the server's output), and the failing value kept for the message.
const ajv = new Ajv({
  coerceTypes: false,
  unicode: false,
  verbose: true,
  allErrors: false,
  strict: false,
  logger: false,
});

/** The admin routes' validator compiler (Fastify's default one coerces types). */
export const adminValidatorCompiler: FastifySchemaCompiler<unknown> = ({ schema }) =>
  ajv.compile(schema as object) as ReturnType<FastifySchemaCompiler<unknown>>;
