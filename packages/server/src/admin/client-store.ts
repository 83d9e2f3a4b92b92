import { type Clock, type Queryable, isUniqueViolation } from "@evergreen/db";
import { randomBytes } from "node:crypto";
import type { AuthMethod, Client } from "../clients.ts";
import { CLIENT_DEFAULTS } from "../config.ts";
import { CLIENT_SECRET_PREFIX, newOpaqueToken, sha256 } from "../crypto/opaque-token.ts";
import { AdminApiError } from "../errors.ts";
import { type ClientRow, clientQueries } from "../queries.ts";
import { parseScope } from "../scope.ts";
import { isUuid } from "../uuid.ts";
import { PAGE, clampPage } from "./paging.ts";

/** A client as the admin API shows it: never the secret hash. */
export type PublicClient = Omit<Client, "secret_hash"> & { client_secret?: string };

/** A client definition as its JSON Schema (schemas.ts) admitted it. */
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
  dpop_bound_access_tokens?: unknown;
  require_pushed_authorization_requests?: unknown;
}

const bad = (msg: string) => new AdminApiError("invalid_request", msg);

/** Removes repeats, keeping the first of each. */
function unique(v: unknown, fallback: string[]): string[] {
  return v === undefined ? fallback : [...new Set(v as string[])];
}

/**
 * Merges a client definition checked by its JSON Schema (schemas.ts) over `base` (current
 * values for PATCH, defaults for create), and checks what the schema cannot: rules across
 * fields, parseable redirect URIs and scope.
 */
function resolve(input: ClientInput, base: Omit<Client, "created_at" | "updated_at" | "secret_hash">) {
  const method = (input.token_endpoint_auth_method ?? base.token_endpoint_auth_method) as AuthMethod;
  const grants = unique(input.grant_types, base.grant_types);
  if (grants.includes("client_credentials") && method === "none") {
    throw bad("client_credentials requires a confidential client (a secret)");
  }
  const redirectUris = unique(input.redirect_uris, base.redirect_uris);
  for (const uri of redirectUris) {
    try {
      const u = new URL(uri);
      if (u.hash) throw new Error();
    } catch {
      throw bad("redirect_uris must be absolute URLs without a fragment");
    }
  }
  let scope = base.scope;
  if (typeof input.scope === "string") {
    try {
      scope = (parseScope(input.scope) ?? []).join(" ");
    } catch {
      throw bad("scope contains an invalid character");
    }
  }
  const pick = <K extends keyof typeof base>(k: K) =>
    (input[k as keyof ClientInput] ?? base[k]) as (typeof base)[K];
  return {
    client_name: (input.client_name === undefined ? base.client_name : input.client_name) as string | null,
    token_endpoint_auth_method: method,
    grant_types: grants,
    redirect_uris: redirectUris,
    scope,
    access_token_ttl: pick("access_token_ttl"),
    refresh_token_idle_ttl: pick("refresh_token_idle_ttl"),
    refresh_token_absolute_ttl: pick("refresh_token_absolute_ttl"),
    rotate_refresh_tokens: pick("rotate_refresh_tokens"),
    refresh_token_reuse_grace: pick("refresh_token_reuse_grace"),
    max_sessions_per_user: pick("max_sessions_per_user"),
    skip_consent: pick("skip_consent"),
    refresh_token_policy: pick("refresh_token_policy"),
    dpop_bound_access_tokens: pick("dpop_bound_access_tokens"),
    require_pushed_authorization_requests: pick("require_pushed_authorization_requests"),
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
  const clientId = (input.client_id as string | undefined) ?? `cl_${randomBytes(12).toString("base64url")}`;
  // A client_credentials token's subject is its client id (RFC 9068 §2.2); a UUID-shaped id
  // could collide with a user's id and let the client act as that user.
  if (isUuid(clientId)) {
    throw bad("client_id must not have the form of a UUID (user ids do)");
  }
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
    dpop_bound_access_tokens: false,
    require_pushed_authorization_requests: false,
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
  q: string | null = null,
): Promise<PublicClient[]> {
  const { rows } = await db.query<Client>(clientQueries.list({ ...clampPage(limit, offset), q: q || null }));
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

/**
 * Registers a client the server itself ships (the dashboard), or brings an existing one with
 * that id in line with `input` (the issuer's address may have changed since the last start).
 */
export async function ensureClient(
  db: Queryable,
  clock: Clock,
  input: ClientInput & { client_id: string },
): Promise<PublicClient> {
  try {
    return await createClient(db, clock, input);
  } catch (err) {
    if (!(err instanceof AdminApiError) || err.error !== "conflict") throw err;
  }
  return updateClient(db, clock, input.client_id, input);
}
