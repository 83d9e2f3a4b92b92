import { type Clock, type Queryable, isUniqueViolation } from "@evergreen/db";
import { AdminApiError, type KeyRing } from "@evergreen/server";
import { openString, sealString } from "../crypto/token-seal.ts";
import { type ProviderRow, type ProviderValues, providerQueries } from "../queries.ts";
import { PROVIDER_TEMPLATES } from "./templates.ts";

/** A provider as the admin API shows it: never the client secret, only whether one is set. */
export interface PublicProvider extends Omit<ProviderRow, "client_secret" | "response"> {
  has_client_secret: boolean;
  response: ResponseMapping;
}

/** Dotted paths into a non-standard token response, and the status that means success. */
export interface ResponseMapping {
  access_token?: string;
  refresh_token?: string;
  expires_in?: string;
  expires_at?: string;
  token_type?: string;
  success_status?: number;
}

/** The provider with its secret opened, as the refresh call needs it. */
export interface Provider extends PublicProvider {
  client_secret: string | null;
}

export const PROVIDER_DEFAULTS = { refresh_ahead: 300, default_ttl: 3600 };

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/;
const MAPPING_PATH = /^[A-Za-z0-9_$-]{1,64}(\.[A-Za-z0-9_$-]{1,64}){0,7}$/;
const MAPPING_KEYS = ["access_token", "refresh_token", "expires_in", "expires_at", "token_type"] as const;
const FIELDS = new Set([
  "name",
  "template",
  "token_url",
  "client_id",
  "client_secret",
  "auth_style",
  "body_format",
  "refresh_ahead",
  "default_ttl",
  "max_concurrency",
  "extra_body",
  "extra_headers",
  "response",
]);

function bad(description: string): AdminApiError {
  return new AdminApiError("invalid_request", description);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function text(v: unknown, name: string, max: number): string {
  if (typeof v !== "string" || v.length === 0 || v.length > max || v.includes("\0")) {
    throw bad(`${name} must be a non-empty string of at most ${max} characters`);
  }
  return v;
}

function int(v: unknown, name: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw bad(`${name} must be an integer from ${min} to ${max}`);
  }
  return v;
}

function tokenUrl(v: unknown): string {
  const s = text(v, "token_url", 2048);
  let url: URL;
  try {
    url = new URL(s);
  } catch {
    throw bad("token_url must be an absolute http(s) URL");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    throw bad("token_url must be an absolute http(s) URL");
  return url.toString();
}

function extraBody(v: unknown): Record<string, unknown> {
  if (!isObject(v)) throw bad("extra_body must be an object");
  if (Object.keys(v).length > 32) throw bad("extra_body may hold at most 32 fields");
  for (const [k, val] of Object.entries(v)) {
    if (k.length > 128 || !["string", "number", "boolean"].includes(typeof val)) {
      throw bad("extra_body values must be strings, numbers or booleans");
    }
    if (typeof val === "string" && (val.length > 2048 || val.includes("\0")))
      throw bad("extra_body value too long");
  }
  return v;
}

function extraHeaders(v: unknown): Record<string, string> {
  if (!isObject(v)) throw bad("extra_headers must be an object");
  if (Object.keys(v).length > 32) throw bad("extra_headers may hold at most 32 headers");
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (!HEADER_NAME.test(k) || typeof val !== "string" || val.length > 2048 || /[\r\n\0]/.test(val)) {
      throw bad("extra_headers must map header names to single-line strings");
    }
    const lower = k.toLowerCase();
    if (
      lower === "authorization" ||
      lower === "content-type" ||
      lower === "content-length" ||
      lower === "host"
    ) {
      throw bad(`extra_headers must not set ${k}`);
    }
    out[k] = val;
  }
  return out;
}

function responseMapping(v: unknown): ResponseMapping {
  if (!isObject(v)) throw bad("response must be an object");
  const out: ResponseMapping = {};
  for (const key of Object.keys(v)) {
    if (key === "success_status") {
      out.success_status = int(v[key], "response.success_status", 200, 299);
    } else if ((MAPPING_KEYS as readonly string[]).includes(key)) {
      const path = v[key];
      if (typeof path !== "string" || !MAPPING_PATH.test(path)) {
        throw bad(`response.${key} must be a dotted path like "authorization.token"`);
      }
      out[key as (typeof MAPPING_KEYS)[number]] = path;
    } else {
      throw bad(`response.${key} is not a known mapping`);
    }
  }
  if (out.expires_in && out.expires_at) throw bad("response maps either expires_in or expires_at, not both");
  return out;
}

/** The columns a create or update writes, validated; the secret still clear. */
type ProviderFields = Omit<Provider, "has_client_secret" | "created_at" | "updated_at">;

/** Validates a create (or, with `base`, a patch) and returns the columns; the secret is still clear. */
function validate(input: Record<string, unknown>, base: Provider | undefined): ProviderFields {
  for (const key of Object.keys(input)) if (!FIELDS.has(key)) throw bad(`unknown field ${key}`);
  let start: Record<string, unknown> = base ? { ...base } : {};
  if (input.template !== undefined) {
    if (base) throw bad("template only applies when creating a provider");
    const name = text(input.template, "template", 64);
    const template = PROVIDER_TEMPLATES[name];
    if (!template)
      throw bad(`unknown template ${name}; known: ${Object.keys(PROVIDER_TEMPLATES).join(", ")}`);
    const { note: _note, ...fields } = template;
    start = { ...fields };
  }
  const v = { ...start, ...input } as Record<string, unknown>;
  const name = base ? base.name : text(v.name, "name", 64);
  if (!base && !NAME.test(name)) throw bad("name must be letters, digits, '.', '_' or '-' (at most 64)");
  const authStyle = v.auth_style ?? "body";
  if (authStyle !== "basic" && authStyle !== "body") throw bad('auth_style must be "basic" or "body"');
  const bodyFormat = v.body_format ?? "form";
  if (bodyFormat !== "form" && bodyFormat !== "json") throw bad('body_format must be "form" or "json"');
  const clientId =
    v.client_id === undefined || v.client_id === null ? null : text(v.client_id, "client_id", 512);
  const clientSecret =
    v.client_secret === undefined || v.client_secret === null
      ? null
      : text(v.client_secret, "client_secret", 4096);
  if (clientSecret && !clientId) throw bad("client_secret needs a client_id");
  if (authStyle === "basic" && !clientId) throw bad('auth_style "basic" needs a client_id');
  return {
    name,
    token_url: tokenUrl(v.token_url),
    client_id: clientId,
    client_secret: clientSecret,
    auth_style: authStyle,
    body_format: bodyFormat,
    refresh_ahead:
      v.refresh_ahead === undefined
        ? PROVIDER_DEFAULTS.refresh_ahead
        : int(v.refresh_ahead, "refresh_ahead", 0, 86_400),
    default_ttl:
      v.default_ttl === undefined
        ? PROVIDER_DEFAULTS.default_ttl
        : int(v.default_ttl, "default_ttl", 1, 31_536_000),
    max_concurrency:
      v.max_concurrency === undefined || v.max_concurrency === null
        ? null
        : int(v.max_concurrency, "max_concurrency", 1, 10_000),
    extra_body: v.extra_body === undefined ? {} : extraBody(v.extra_body),
    extra_headers: v.extra_headers === undefined ? {} : extraHeaders(v.extra_headers),
    response: v.response === undefined ? {} : responseMapping(v.response),
  };
}

/** The statement's values: the secret sealed, the JSON columns as text. */
function toValues(ring: KeyRing, v: ProviderFields, now: Date): ProviderValues {
  return {
    ...v,
    client_secret: v.client_secret ? sealString(ring, v.name, "client_secret", v.client_secret) : null,
    extra_body: JSON.stringify(v.extra_body),
    extra_headers: JSON.stringify(v.extra_headers),
    response: JSON.stringify(v.response),
    now,
  };
}

function toPublic(row: ProviderRow): PublicProvider {
  const { client_secret, ...rest } = row;
  return { ...rest, response: row.response as ResponseMapping, has_client_secret: client_secret !== null };
}

function toProvider(ring: KeyRing, row: ProviderRow): Provider {
  return {
    ...toPublic(row),
    client_secret: row.client_secret ? openString(ring, row.name, "client_secret", row.client_secret) : null,
  };
}

async function loadRow(db: Queryable, name: string): Promise<ProviderRow> {
  const { rows } = await db.query<ProviderRow>(providerQueries.byName({ name }));
  if (!rows[0]) throw new AdminApiError("not_found", "no such provider");
  return rows[0];
}

/** Creates a provider (optionally from a template); `replace` upserts by name (providers file). */
export async function createProvider(
  db: Queryable,
  ring: KeyRing,
  clock: Clock,
  input: Record<string, unknown>,
  options: { replace?: boolean } = {},
): Promise<PublicProvider> {
  const values = toValues(ring, validate(input, undefined), clock.now());
  try {
    const q = options.replace ? providerQueries.upsert(values) : providerQueries.insert(values);
    const { rows } = await db.query<ProviderRow>(q);
    return toPublic(rows[0]!);
  } catch (err) {
    if (isUniqueViolation(err)) throw new AdminApiError("conflict", "a provider with this name exists");
    throw err;
  }
}

export async function getProvider(db: Queryable, name: string): Promise<PublicProvider> {
  return toPublic(await loadRow(db, name));
}

/** The provider with its client secret opened, for the refresh call only. */
export async function loadProvider(db: Queryable, ring: KeyRing, name: string): Promise<Provider> {
  return toProvider(ring, await loadRow(db, name));
}

export async function listProviders(db: Queryable): Promise<PublicProvider[]> {
  const { rows } = await db.query<ProviderRow>(providerQueries.list());
  return rows.map(toPublic);
}

/** Merges `input` over the stored provider; `client_secret: null` removes the secret. */
export async function updateProvider(
  db: Queryable,
  ring: KeyRing,
  clock: Clock,
  name: string,
  input: Record<string, unknown>,
): Promise<PublicProvider> {
  if (input.name !== undefined && input.name !== name) throw bad("a provider cannot be renamed");
  const current = toProvider(ring, await loadRow(db, name));
  const values = toValues(ring, validate(input, current), clock.now());
  const { rows } = await db.query<ProviderRow>(providerQueries.update(values));
  if (!rows[0]) throw new AdminApiError("not_found", "no such provider");
  return toPublic(rows[0]);
}

/** Deletes a provider that no connection uses (nothing is deleted implicitly). */
export async function deleteProvider(db: Queryable, name: string): Promise<void> {
  const { rows: count } = await db.query<{ n: number }>(providerQueries.countConnections({ name }));
  if ((count[0]?.n ?? 0) > 0) throw new AdminApiError("conflict", "the provider still has connections");
  try {
    const { rows } = await db.query(providerQueries.delete({ name }));
    if (!rows[0]) throw new AdminApiError("not_found", "no such provider");
  } catch (err) {
    if ((err as { code?: string }).code === "23503") {
      throw new AdminApiError("conflict", "the provider still has connections");
    }
    throw err;
  }
}
