import { randomUUID } from "node:crypto";
import type { Clock, Queryable } from "@evergreen/db";
import { AdminApiError, isUuid } from "@evergreen/server";
import { newApiKey } from "../crypto/api-key.ts";
import { type ApiKeyRow, apiKeyQueries } from "../queries.ts";

/** An API key as the admin API lists it: name, scopes and a recognisable prefix, never the key. */
export interface PublicApiKey {
  id: string;
  name: string;
  key_prefix: string;
  connections: string[];
  providers: string[];
  created_at: Date;
}

function bad(description: string): AdminApiError {
  return new AdminApiError("invalid_request", description);
}

function toPublic(row: ApiKeyRow): PublicApiKey {
  const { key_hash: _hash, ...rest } = row;
  return rest;
}

function list(v: unknown, name: string, check: (s: string) => boolean): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > 1000 || !v.every((s) => typeof s === "string" && check(s))) {
    throw bad(`${name} must be a list of ${name === "connections" ? "connection ids" : "provider names"}`);
  }
  return [...new Set(v as string[])];
}

/**
 * Creates a consumer API key scoped to connections and/or providers (none: every connection).
 * The key is returned only here; the database keeps its SHA-256.
 */
export async function createApiKey(
  db: Queryable,
  clock: Clock,
  input: Record<string, unknown>,
): Promise<PublicApiKey & { key: string }> {
  for (const k of Object.keys(input))
    if (!["name", "connections", "providers"].includes(k)) throw bad(`unknown field ${k}`);
  if (
    typeof input.name !== "string" ||
    input.name.length === 0 ||
    input.name.length > 200 ||
    input.name.includes("\0")
  ) {
    throw bad("name must be a non-empty string of at most 200 characters");
  }
  const connections = list(input.connections, "connections", isUuid);
  const providers = list(
    input.providers,
    "providers",
    (s) => s.length > 0 && s.length <= 64 && !s.includes("\0"),
  );
  const { key, hash, prefix } = newApiKey();
  const { rows } = await db.query<ApiKeyRow>(
    apiKeyQueries.insert({
      id: randomUUID(),
      name: input.name,
      key_hash: hash,
      key_prefix: prefix,
      connections,
      providers,
      now: clock.now(),
    }),
  );
  return { ...toPublic(rows[0]!), key };
}

export async function listApiKeys(db: Queryable): Promise<PublicApiKey[]> {
  const { rows } = await db.query<ApiKeyRow>(apiKeyQueries.list());
  return rows.map(toPublic);
}

export async function getApiKey(db: Queryable, id: string): Promise<PublicApiKey> {
  if (!isUuid(id)) throw new AdminApiError("not_found", "no such API key");
  const { rows } = await db.query<ApiKeyRow>(apiKeyQueries.byId({ id }));
  if (!rows[0]) throw new AdminApiError("not_found", "no such API key");
  return toPublic(rows[0]);
}

export async function deleteApiKey(db: Queryable, id: string): Promise<void> {
  if (!isUuid(id)) throw new AdminApiError("not_found", "no such API key");
  const { rows } = await db.query(apiKeyQueries.delete({ id }));
  if (!rows[0]) throw new AdminApiError("not_found", "no such API key");
}
