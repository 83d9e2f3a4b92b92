/**
 * Which failures mean "the database is unreachable right now" (the issuer answers 503) and
 * which do not (a bug or bad data: 500 or 4xx), produced for real against PostgreSQL and
 * PGlite, and the pool timeouts that turn a hung database into such a failure.
 */
import { type Server, type Socket, createServer } from "node:net";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type Database, openPglite, openPostgres, unavailableReason } from "../src/index.ts";

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const opened: Database[] = [];

function pool(options: Parameters<typeof openPostgres>[1], url = ADMIN_URL): Database {
  const db = openPostgres(url, options);
  opened.push(db);
  return db;
}

function urlOnPort(port: number): string {
  const u = new URL(ADMIN_URL);
  u.hostname = "127.0.0.1";
  u.port = String(port);
  return u.toString();
}

async function failure(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (err) {
    return err;
  }
  throw new Error("expected a failure");
}

/** A port that accepts connections and never says a word (a hung server). */
async function silentServer(): Promise<{ port: number; close(): void }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => sockets.push(s));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as { port: number }).port,
    close() {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

afterAll(async () => {
  await Promise.all(opened.map((db) => db.close().catch(() => {})));
});

describe("unavailableReason on real failures", () => {
  it("connection refused", async () => {
    const closed = await silentServer();
    closed.close();
    const err = await failure(pool({ max: 1 }, urlOnPort(closed.port)).query("SELECT 1"));
    expect(unavailableReason(err)).toBe("ECONNREFUSED");
  });

  it("a server that never answers the connection: connect timeout", async () => {
    const silent = await silentServer();
    try {
      const err = await failure(
        pool({ max: 1, timeouts: { connectMs: 300 } }, urlOnPort(silent.port)).query("SELECT 1"),
      );
      expect(unavailableReason(err)).toBe("connect_timeout");
    } finally {
      silent.close();
    }
  });

  it("statement_timeout is set on every pooled connection", async () => {
    const db = pool({ max: 1, timeouts: { statementMs: 200 } });
    const err = await failure(db.query("SELECT pg_sleep(5)"));
    expect((err as { code?: string }).code).toBe("57014");
    expect(unavailableReason(err)).toBe("statement_timeout");
  });

  it("query_timeout bounds a query the server does not answer, and the broken connection is not reused", async () => {
    const db = pool({ max: 1, timeouts: { statementMs: 0, queryMs: 2_000 } });
    const err = await failure(db.transaction((tx) => tx.query("SELECT pg_sleep(6)")));
    expect(unavailableReason(err)).toBe("query_timeout");
    // The one pooled connection still runs pg_sleep; reused, this would wait behind it and time out.
    expect((await db.query<{ one: number }>("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
  });

  it("a backend terminated mid-query (pg_terminate_backend, fast shutdown)", async () => {
    const db = pool({ max: 1 });
    const { rows } = await db.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
    const running = failure(db.query("SELECT pg_sleep(10)"));
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    try {
      // Wait until the sleep is running, then end that backend.
      for (let i = 0; i < 200; i++) {
        const active = await admin.query(
          "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active'",
          [rows[0]!.pid],
        );
        if (active.rows.length > 0) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      await admin.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
    } finally {
      await admin.end();
    }
    const err = await running;
    expect(unavailableReason(err)).toMatch(/^(backend_terminated|connection_lost)$/);
    // The pool replaces the connection by itself.
    expect((await db.query<{ one: number }>("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
  });

  it("an embedded database that was closed", async () => {
    const db = await openPglite("memory://");
    await db.close();
    expect(unavailableReason(await failure(db.query("SELECT 1")))).toBe("database_closed");
  }, 120_000);

  it("is undefined for errors that are not about reaching the database", async () => {
    const db = pool({ max: 1 });
    expect(unavailableReason(await failure(db.query("SELEKT 1")))).toBeUndefined();
    expect(unavailableReason(await failure(db.query("SELECT 1/0")))).toBeUndefined();
    expect(unavailableReason(new Error("something else"))).toBeUndefined();
    expect(unavailableReason(undefined)).toBeUndefined();
  });
});
