import { mkdirSync } from "node:fs";
import { type PoolTimeouts, openPostgres } from "./adapters/pg.ts";
import { openPglite } from "./adapters/pglite.ts";
import type { Database } from "./database.ts";

export interface DatabaseOptions {
  /** `postgres://…`; when absent, embedded PGlite is used. */
  url?: string;
  /** PGlite data directory, or `memory://`. */
  dataDir?: string;
  poolSize?: number;
  /** PostgreSQL only: connect, statement, query and idle timeouts. */
  timeouts?: Partial<PoolTimeouts>;
}

/** Opens PostgreSQL when a URL is given, otherwise embedded PGlite in `dataDir`. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.url) return openPostgres(options.url, { max: options.poolSize, timeouts: options.timeouts });
  const dir = options.dataDir ?? "memory://";
  if (!dir.startsWith("memory://")) mkdirSync(dir, { recursive: true });
  return openPglite(dir);
}
