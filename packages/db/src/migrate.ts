import type { Database } from "./database.ts";
import { issuerSchema } from "./migrations/0001_issuer.ts";
import { credentialsVersionSchema } from "./migrations/0002_credentials_version.ts";
import { brokerSchema } from "./migrations/0004_broker.ts";
import { signInSchema } from "./migrations/0005_sign_in.ts";
import { dpopSchema } from "./migrations/0006_dpop.ts";
import { storageRetentionSchema } from "./migrations/0007_storage_retention.ts";
import { adminUsersSchema } from "./migrations/0008_admin_users.ts";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Every schema change, in order. Append; never edit a released one. */
export const migrations: Migration[] = [
  { version: 1, name: "issuer", sql: issuerSchema },
  { version: 2, name: "credentials_version", sql: credentialsVersionSchema },
  { version: 4, name: "broker", sql: brokerSchema },
  { version: 5, name: "sign_in", sql: signInSchema },
  { version: 6, name: "dpop", sql: dpopSchema },
  { version: 7, name: "storage_retention", sql: storageRetentionSchema },
  { version: 8, name: "admin_users", sql: adminUsersSchema },
];

// Any constant works; it only has to be the same in every process that migrates.
const MIGRATION_LOCK = 0x65766772;

/**
 * Brings the schema up to date. Safe to run from several processes at once: an advisory
 * lock serialises them and each migration commits with its version row.
 */
export async function migrate(db: Database, list: Migration[] = migrations): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await tx.query(`CREATE TABLE IF NOT EXISTS evergreen_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await tx.query<{ version: number }>("SELECT version FROM evergreen_migrations");
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of list) {
      if (done.has(m.version)) continue;
      await tx.exec(m.sql);
      await tx.query("INSERT INTO evergreen_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}
