import pg from "pg";
import type { Database, Queryable, QueryResult, Statement } from "../database.ts";
import type { BoundQuery } from "../plan.ts";
import { unavailableReason } from "../unavailable.ts";

// int8 (counts, bigserial ids) as JS numbers: our values stay far below 2^53.
pg.types.setTypeParser(20, (v) => Number.parseInt(v, 10));

function toConfig(sql: string | Statement | BoundQuery, params: unknown[] | undefined) {
  if (typeof sql === "string") return { text: sql, values: params };
  if ("values" in sql) return sql;
  return { name: sql.name, text: sql.text, values: params };
}

function wrap(client: pg.PoolClient | pg.Pool): Queryable {
  return {
    async query<T>(sql: string | Statement | BoundQuery, params?: unknown[]): Promise<QueryResult<T>> {
      const res = await client.query(toConfig(sql, params) as pg.QueryConfig);
      return { rows: res.rows as T[], rowCount: res.rowCount ?? 0 };
    },
    async exec(script: string): Promise<void> {
      await client.query(script);
    },
  };
}

/**
 * Bounds on every wait for the database, in milliseconds, so a database that is down or frozen
 * makes a request fail in bounded time instead of hanging. 0 turns one off.
 */
export interface PoolTimeouts {
  /** Waiting for a pooled connection, including opening a new one (TCP + startup). */
  connectMs: number;
  /** Server-side `statement_timeout`: PostgreSQL cancels a statement running longer. */
  statementMs: number;
  /** Client-side: no answer from the server within this time fails the query (frozen network). */
  queryMs: number;
  /** An idle pooled connection is closed after this long. */
  idleMs: number;
  /** Server-side `idle_in_transaction_session_timeout`: a transaction left open is ended. */
  idleInTransactionMs: number;
}

export const DEFAULT_POOL_TIMEOUTS: PoolTimeouts = {
  connectMs: 5_000,
  statementMs: 10_000,
  queryMs: 15_000,
  idleMs: 30_000,
  idleInTransactionMs: 30_000,
};

/** Opens a pooled PostgreSQL connection from a `postgres://` URL. */
export function openPostgres(
  url: string,
  options: { max?: number; timeouts?: Partial<PoolTimeouts> } = {},
): Database {
  const t = { ...DEFAULT_POOL_TIMEOUTS, ...options.timeouts };
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 16,
    connectionTimeoutMillis: t.connectMs,
    idleTimeoutMillis: t.idleMs,
    // pg treats 0 as "no timeout" for these, as PostgreSQL does.
    statement_timeout: t.statementMs,
    query_timeout: t.queryMs,
    idle_in_transaction_session_timeout: t.idleInTransactionMs,
    keepAlive: true,
  });
  // An idle client losing its connection must not crash the process; the pool replaces it.
  pool.on("error", () => {});
  const direct = wrap(pool);
  return {
    kind: "postgres",
    query: direct.query,
    exec: direct.exec,
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      // A connection that failed (lost, timed out mid-query) is discarded, never reused.
      let broken: Error | undefined;
      try {
        await client.query("BEGIN");
        const result = await fn(wrap(client));
        await client.query("COMMIT");
        return result;
      } catch (err) {
        if (unavailableReason(err)) broken = err as Error;
        else await client.query("ROLLBACK").catch((e: Error) => (broken = e));
        throw err;
      } finally {
        client.release(broken);
      }
    },
    async listen(channel, onPayload) {
      const client = await pool.connect();
      const handler = (msg: pg.Notification) => {
        if (msg.channel === channel) onPayload(msg.payload ?? "");
      };
      client.on("notification", handler);
      await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      return async () => {
        client.off("notification", handler);
        await client.query(`UNLISTEN ${pg.escapeIdentifier(channel)}`).catch(() => {});
        client.release();
      };
    },
    close: () => pool.end(),
  };
}
