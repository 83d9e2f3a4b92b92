/**
 * A fresh, empty PostgreSQL database per test file (or bench run), dropped afterwards. The
 * first `evergreen serve` on it creates the schema, as in production.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";

/** The server that creates and drops per-test databases; override with TEST_DATABASE_URL. */
export const ADMIN_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export interface FreshDatabase {
  name: string;
  url: string;
  /** a small pool on the database, for assertions on raw rows */
  pool: pg.Pool;
  drop(): Promise<void>;
}

export async function createFreshDatabase(prefix = "evergreen_broker"): Promise<FreshDatabase> {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 4 });
  return {
    name,
    url: url.toString(),
    pool,
    async drop() {
      await pool.end();
      const c = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * Every row of every table in the public schema, each rendered by PostgreSQL as text
 * (`row::text`: bytea as hex, json as text): what someone with a database dump would see.
 */
export async function dumpAllRows(pool: pg.Pool): Promise<Map<string, string[]>> {
  const { rows: tables } = await pool.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
  );
  const out = new Map<string, string[]>();
  for (const { table_name } of tables) {
    const { rows } = await pool.query<{ r: string }>(`SELECT t::text AS r FROM "${table_name}" t`);
    out.set(
      table_name,
      rows.map((x) => x.r),
    );
  }
  return out;
}
