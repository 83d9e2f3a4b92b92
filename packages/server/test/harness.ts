/**
 * Test harness: real databases and real servers. Every storage test runs on both embedded
 * PGlite and a fresh PostgreSQL database of its own (dropped afterwards).
 */
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import {
  type Clock,
  type Database,
  ManualClock,
  type Migration,
  migrate,
  migrations,
  openPglite,
  openPostgres,
  systemClock,
} from "@evergreen/db";
import pg from "pg";
import { type Issuer, buildIssuer } from "../src/app.ts";
import { type ServerConfig, loadConfig } from "../src/config.ts";

export type DbKind = "pglite" | "postgres";
export const DATABASES: DbKind[] = ["pglite", "postgres"];

/** The server that creates and drops per-test databases; override with TEST_DATABASE_URL. */
export const ADMIN_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export interface TestDatabase {
  db: Database;
  /** postgres:// URL of this database (PostgreSQL only), for other processes. */
  url?: string;
  drop(): Promise<void>;
}

/** A fresh, migrated database of the given kind (`list`: only these migrations). */
export async function createTestDatabase(
  kind: DbKind,
  list: Migration[] = migrations,
): Promise<TestDatabase> {
  if (kind === "pglite") {
    const db = await openPglite("memory://");
    await migrate(db, list);
    return { db, drop: () => db.close() };
  }
  const name = `evergreen_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  const db = openPostgres(url.toString(), { max: 8 });
  await migrate(db, list);
  return {
    db,
    url: url.toString(),
    async drop() {
      await db.close();
      const c = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface TestIssuer {
  url: string;
  adminToken: string;
  issuer: Issuer;
  db: Database;
  /** A postgres:// URL when running on PostgreSQL. */
  databaseUrl?: string;
  clock: Clock;
  config: ServerConfig;
  /** Calls the admin API; returns status and parsed JSON body. */
  admin(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export interface TestIssuerOptions {
  database?: DbKind;
  /** A ManualClock moves time in tests; default is the system clock. */
  clock?: Clock;
  /** Environment overrides, as `loadConfig` reads them. */
  env?: Record<string, string>;
  /** Reuse an existing database instead of creating one. */
  db?: TestDatabase;
  /** Capture log lines here (turns logging on at LOG_LEVEL, default debug). */
  logStream?: NodeJS.WritableStream;
}

/** Starts a real issuer listening on 127.0.0.1 (random port) over a fresh database. */
export async function startTestIssuer(options: TestIssuerOptions = {}): Promise<TestIssuer> {
  const testDb = options.db ?? (await createTestDatabase(options.database ?? "pglite"));
  const port = await freePort();
  const adminToken = `test-admin-${randomBytes(8).toString("hex")}`;
  const config = loadConfig({
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: options.logStream ? "debug" : "silent",
    // Tests that share limits through Redis count exactly; on a loaded machine a Redis answer can
    // take longer than the 100 ms production default, which would answer that check from memory.
    EVERGREEN_REDIS_TIMEOUT_MS: "2000",
    ...options.env,
  });
  const clock = options.clock ?? systemClock;
  const issuer = await buildIssuer({
    config,
    db: testDb.db,
    clock,
    adminToken,
    logger: options.logStream !== undefined,
    logStream: options.logStream,
  });
  await issuer.app.listen({ port, host: "127.0.0.1" });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    adminToken,
    issuer,
    db: testDb.db,
    databaseUrl: testDb.url,
    clock,
    config,
    async admin(method, path, body) {
      const res = await fetch(url + path, {
        method,
        headers: {
          authorization: `Bearer ${adminToken}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    async close() {
      await issuer.close();
      if (!options.db) await testDb.drop();
    },
  };
}

export { ManualClock };
