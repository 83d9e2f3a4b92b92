import { readFileSync } from "node:fs";
import type { Clock, Queryable } from "@evergreen/db";
import type { KeyRing } from "@evergreen/server";
import { createProvider } from "./store.ts";

/**
 * Loads provider declarations (EVERGREEN_BROKER_PROVIDERS_FILE) and upserts each by name. The
 * file is JSON: a list, or `{"providers": [...]}`, of admin-API provider bodies. A secret can
 * be read from the environment with `"client_secret_env": "VAR"` so the file holds none.
 * Returns the names loaded; throws (refusing to start) on any invalid entry.
 */
export async function loadProvidersFile(
  db: Queryable,
  ring: KeyRing,
  clock: Clock,
  path: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(
      `EVERGREEN_BROKER_PROVIDERS_FILE: cannot read ${path} as JSON (${(err as Error).message})`,
    );
  }
  const list = Array.isArray(parsed) ? parsed : (parsed as { providers?: unknown })?.providers;
  if (!Array.isArray(list)) throw new Error("EVERGREEN_BROKER_PROVIDERS_FILE must hold a list of providers");
  const names: string[] = [];
  for (const [i, entry] of list.entries()) {
    if (typeof entry !== "object" || entry === null) throw new Error(`provider ${i + 1} must be an object`);
    const { client_secret_env, ...body } = entry as Record<string, unknown>;
    if (client_secret_env !== undefined) {
      const value = typeof client_secret_env === "string" ? env[client_secret_env] : undefined;
      if (!value)
        throw new Error(`provider ${i + 1}: environment variable ${String(client_secret_env)} is not set`);
      body.client_secret = value;
    }
    try {
      const p = await createProvider(db, ring, clock, body, { replace: true });
      names.push(p.name);
    } catch (err) {
      throw new Error(`provider ${i + 1} in ${path}: ${(err as Error).message}`);
    }
  }
  return names;
}
