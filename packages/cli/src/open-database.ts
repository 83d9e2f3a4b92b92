import { type Database, migrate, openDatabase } from "@evergreen/db";
import type { ServerConfig } from "@evergreen/server";
import { join } from "node:path";
import { acquireDataDirLock } from "./data-dir-lock.ts";

export interface CommandDatabase {
  db: Database;
  /** Migrations this open applied (empty when the schema was current). */
  applied: number[];
  /** Closes the database and releases the embedded data directory. */
  close(): Promise<void>;
}

/**
 * Opens and migrates the configured database for a command: PostgreSQL from DATABASE_URL, or
 * the embedded data directory, which it locks so no server or other command opens it meanwhile.
 */
export async function openCommandDatabase(
  config: ServerConfig,
  options: { poolSize?: number } = {},
): Promise<CommandDatabase> {
  const release = config.databaseUrl ? undefined : acquireDataDirLock(config.dataDir);
  let db: Database | undefined;
  try {
    db = await openDatabase({
      url: config.databaseUrl,
      dataDir: join(config.dataDir, "pgdata"),
      poolSize: options.poolSize ?? 2,
      timeouts: config.dbTimeouts,
    });
    const applied = await migrate(db);
    const opened = db;
    return {
      db: opened,
      applied,
      async close() {
        await opened.close();
        release?.();
      },
    };
  } catch (err) {
    await db?.close().catch(() => {});
    release?.();
    throw err;
  }
}
