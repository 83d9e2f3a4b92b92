import { PGlite } from "@electric-sql/pglite";
import type { Database, Queryable, QueryResult, Statement } from "../database.ts";
import type { BoundQuery } from "../plan.ts";

type PGliteLike = Pick<PGlite, "query" | "exec">;

function normalise(value: unknown): unknown {
  // PGlite returns bytea as Uint8Array and int8 as bigint; pg gives Buffer and (our parser) number.
  if (value instanceof Uint8Array && !Buffer.isBuffer(value)) return Buffer.from(value);
  if (typeof value === "bigint") return Number(value);
  return value;
}

function wrap(db: PGliteLike): Queryable {
  return {
    async query<T>(sql: string | Statement | BoundQuery, params?: unknown[]): Promise<QueryResult<T>> {
      const text = typeof sql === "string" ? sql : sql.text;
      const values = typeof sql !== "string" && "values" in sql ? sql.values : params;
      const res = await db.query<Record<string, unknown>>(text, values);
      for (const row of res.rows) for (const key in row) row[key] = normalise(row[key]);
      return { rows: res.rows as T[], rowCount: res.affectedRows ?? res.rows.length };
    },
    async exec(script: string): Promise<void> {
      await db.exec(script);
    },
  };
}

/**
 * Opens embedded PostgreSQL (PGlite). `dataDir` is a directory path, or `memory://` for a
 * throwaway in-memory database. PGlite is one connection: it serialises queries itself.
 */
export async function openPglite(dataDir: string): Promise<Database> {
  const db = await PGlite.create(dataDir);
  const direct = wrap(db);
  return {
    kind: "pglite",
    query: direct.query,
    exec: direct.exec,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    async listen(channel, onPayload) {
      const unsubscribe = await db.listen(channel, onPayload);
      return async () => {
        await unsubscribe();
      };
    },
    close: () => db.close(),
  };
}
