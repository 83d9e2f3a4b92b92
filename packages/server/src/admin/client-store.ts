import { type Clock, type Queryable, isUniqueViolation } from "@evergreen/db";
import { randomBytes } from "node:crypto";
import {
  AUTH_METHODS,
  type AuthMethod,
  type Client,
  GRANT_TYPES,
  REFRESH_TOKEN_POLICIES,
  type RefreshTokenPolicy,
} from "../clients.ts";
import { CLIENT_DEFAULTS } from "../config.ts";
import { CLIENT_SECRET_PREFIX, newOpaqueToken, sha256 } from "../crypto/opaque-token.ts";
import { AdminApiError } from "../errors.ts";
import { type ClientRow, clientQueries } from "../queries.ts";
import { parseScope } from "../scope.ts";
import { isUuid } from "../uuid.ts";
import { PAGE, clampPage } from "./paging.ts";

/** A client as the admin API shows it: never the secret hash. */
export type PublicClient = Omit<Client, "secret_hash"> & { client_secret?: string };

export interface ClientInput {
  client_id?: unknown;
  client_name?: unknown;
  token_endpoint_auth_method?: unknown;
  grant_types?: unknown;
  redirect_uris?: unknown;
  scope?: unknown;
  access_token_ttl?: unknown;
  refresh_token_idle_ttl?: unknown;
  refresh_token_absolute_ttl?: unknown;
  rotate_refresh_tokens?: unknown;
  refresh_token_reuse_grace?: unknown;
  max_sessions_per_user?: unknown;
  skip_consent?: unknown;
  refresh_token_policy?: unknown;
}

const bad = (msg: string) => new AdminApiError("invalid_request", msg);

function seconds(name: string, v: unknown, fallback: number, min: number, max: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw bad(`${name} must be an integer number of seconds between ${min} and ${max}`);
  }
  return v;
}

function stringList(name: string, v: unknown, fallback: string[]): string[] {
  if (v === undefined) return fallback;
  if (
    !Array.isArray(v) ||
    !v.every((x) => typeof x === "string" && x.length > 0 && x.length <= 2048 && !x.includes("\u0000"))
  ) {
    throw bad(`${name} must be an array of strings`);
  }
  return [...new Set(v as string[])];
}

/** Validates a full client definition: `base` holds current values for PATCH, defaults for create. */
function resolve(input: ClientInput, base: Omit<Client, "created_at" | "updated_at" | "secret_hash">) {
  const method = (input.token_endpoint_auth_method ?? base.token_endpoint_auth_method) as AuthMethod;
  if (!AUTH_METHODS.includes(method))
    throw bad(`token_endpoint_auth_method must be one of ${AUTH_METHODS.join(", ")}`);
  const grants = stringList("grant_types", input.grant_types, base.grant_types);
  for (const g of grants)
    if (!(GRANT_TYPES as readonly string[]).includes(g)) throw bad(`unsupported grant type: ${g}`);
  if (grants.length === 0) throw bad("grant_types must not be empty");
  if (grants.includes("client_credentials") && method === "none") {
    throw bad("client_credentials requires a confidential client (a secret)");
  }
  const redirectUris = stringList("redirect_uris", input.redirect_uris, base.redirect_uris);
  for (const uri of redirectUris) {
    try {
      const u = new URL(uri);
      if (u.hash) throw new Error();
    } catch {
      throw bad("redirect_uris must be absolute URLs without a fragment");
    }
  }
  if (input.scope !== undefined && typeof input.scope !== "string")
    throw bad("scope must be a space-separated string");
  let scope = base.scope;
  if (typeof input.scope === "string") {
    try {
      scope = (parseScope(input.scope) ?? []).join(" ");
    } catch {
      throw bad("scope contains an invalid character");
    }
  }
  if (
    input.client_name !== undefined &&
    input.client_name !== null &&
    (typeof input.client_name !== "string" ||
      input.client_name.length > 200 ||
      input.client_name.includes("\u0000"))
  ) {
    throw bad("client_name must be a string of at most 200 characters");
  }
  if (input.rotate_refresh_tokens !== undefined && typeof input.rotate_refresh_tokens !== "boolean") {
    throw bad("rotate_refresh_tokens must be a boolean");
  }
  if (input.skip_consent !== undefined && typeof input.skip_consent !== "boolean") {
    throw bad("skip_consent must be a boolean");
  }
  const policy = (input.refresh_token_policy ?? base.refresh_token_policy) as RefreshTokenPolicy;
  if (!REFRESH_TOKEN_POLICIES.includes(policy)) {
    throw bad(`refresh_token_policy must be one of ${REFRESH_TOKEN_POLICIES.join(", ")}`);
  }
  const idle = seconds(
    "refresh_token_idle_ttl",
    input.refresh_token_idle_ttl,
    base.refresh_token_idle_ttl,
    1,
    10 * 365 * 86400,
  );
  const absolute = seconds(
    "refresh_token_absolute_ttl",
    input.refresh_token_absolute_ttl,
    base.refresh_token_absolute_ttl,
    1,
    10 * 365 * 86400,
  );
  return {
    client_name: (input.client_name === undefined ? base.client_name : input.client_name) as string | null,
    token_endpoint_auth_method: method,
    grant_types: grants,
    redirect_uris: redirectUris,
    scope,
    access_token_ttl: seconds("access_token_ttl", input.access_token_ttl, base.access_token_ttl, 1, 86400),
    refresh_token_idle_ttl: idle,
    refresh_token_absolute_ttl: absolute,
    rotate_refresh_tokens: (input.rotate_refresh_tokens ?? base.rotate_refresh_tokens) as boolean,
    refresh_token_reuse_grace: seconds(
      "refresh_token_reuse_grace",
      input.refresh_token_reuse_grace,
      base.refresh_token_reuse_grace,
      0,
      300,
    ),
    max_sessions_per_user: seconds(
      "max_sessions_per_user",
      input.max_sessions_per_user,
      base.max_sessions_per_user,
      1,
      10000,
    ),
    skip_consent: (input.skip_consent ?? base.skip_consent) as boolean,
    refresh_token_policy: policy,
  };
}

/** The inputs of clientQueries.insert and .update. */
function clientRow(
  clientId: string,
  v: ReturnType<typeof resolve>,
  secretHash: Buffer | null,
  now: Date,
): ClientRow {
  return { ...v, client_id: clientId, secret_hash: secretHash, now };
}

function toPublic(c: Client, secret?: string): PublicClient {
  const { secret_hash: _hidden, ...rest } = c;
  return secret ? { ...rest, client_secret: secret } : rest;
}

const newSecret = () => newOpaqueToken(CLIENT_SECRET_PREFIX);

/**
 * Registers a client. Confidential clients get a generated secret, returned here once and
 * stored only as its SHA-256 (it is 256 random bits, so a slow hash adds nothing).
 */
export async function createClient(db: Queryable, clock: Clock, input: ClientInput): Promise<PublicClient> {
  let clientId = input.client_id;
  if (clientId === undefined) clientId = `cl_${randomBytes(12).toString("base64url")}`;
  if (typeof clientId !== "string" || !/^[A-Za-z0-9._~-]{1,128}$/.test(clientId)) {
    throw bad("client_id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -");
  }
  // A client_credentials token's subject is its client id (RFC 9068 §2.2); a UUID-shaped id
  // could collide with a user's id and let the client act as that user.
  if (isUuid(clientId)) {
    throw bad("client_id must not have the form of a UUID (user ids do)");
  }
  if (input.grant_types === undefined) throw bad("grant_types is required");
  const method = (input.token_endpoint_auth_method ?? "client_secret_basic") as AuthMethod;
  const v = resolve(input, {
    client_id: clientId,
    client_name: null,
    token_endpoint_auth_method: method,
    grant_types: [],
    redirect_uris: [],
    scope: "",
    access_token_ttl: CLIENT_DEFAULTS.access_token_ttl,
    refresh_token_idle_ttl: CLIENT_DEFAULTS.refresh_token_idle_ttl,
    refresh_token_absolute_ttl: CLIENT_DEFAULTS.refresh_token_absolute_ttl,
    rotate_refresh_tokens: true,
    refresh_token_reuse_grace: CLIENT_DEFAULTS.refresh_token_reuse_grace,
    max_sessions_per_user: CLIENT_DEFAULTS.max_sessions_per_user,
    skip_consent: false,
    refresh_token_policy: "always",
  });
  const secret = v.token_endpoint_auth_method === "none" ? undefined : newSecret();
  try {
    const { rows } = await db.query<Client>(
      clientQueries.insert(clientRow(clientId, v, secret ? sha256(secret) : null, clock.now())),
    );
    return toPublic(rows[0]!, secret);
  } catch (err) {
    if (isUniqueViolation(err)) throw new AdminApiError("conflict", "a client with this client_id exists");
    throw err;
  }
}

async function load(db: Queryable, clientId: string): Promise<Client> {
  const { rows } = await db.query<Client>(clientQueries.byId({ client_id: clientId }));
  if (!rows[0]) throw new AdminApiError("not_found", "no such client");
  return rows[0];
}

export async function getClient(db: Queryable, clientId: string): Promise<PublicClient> {
  return toPublic(await load(db, clientId));
}

export async function listClients(
  db: Queryable,
  limit = PAGE.defaultLimit,
  offset = 0,
): Promise<PublicClient[]> {
  const { rows } = await db.query<Client>(clientQueries.list(clampPage(limit, offset)));
  return rows.map((c) => toPublic(c));
}

/**
 * Updates a client. `rotate_secret: true` (or becoming confidential) issues a new secret,
 * returned once; becoming public drops the secret.
 */
export async function updateClient(
  db: Queryable,
  clock: Clock,
  clientId: string,
  input: ClientInput & { rotate_secret?: unknown },
): Promise<PublicClient> {
  if (input.client_id !== undefined && input.client_id !== clientId) throw bad("client_id cannot be changed");
  const current = await load(db, clientId);
  const v = resolve(input, current);
  let secret: string | undefined;
  let secretHash = current.secret_hash;
  if (v.token_endpoint_auth_method === "none") secretHash = null;
  else if (input.rotate_secret === true || !secretHash) {
    secret = newSecret();
    secretHash = sha256(secret);
  }
  const { rows } = await db.query<Client>(
    clientQueries.update(clientRow(clientId, v, secretHash, clock.now())),
  );
  return toPublic(rows[0]!, secret);
}

/** Deletes a client with every session issued to it. */
export async function deleteClient(db: Queryable, clientId: string): Promise<void> {
  const { rows } = await db.query(clientQueries.delete({ client_id: clientId }));
  if (!rows[0]) throw new AdminApiError("not_found", "no such client");
}
