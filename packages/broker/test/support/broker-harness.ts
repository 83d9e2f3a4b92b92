/**
 * A real issuer with the broker's routes on a real database (PGlite or a fresh PostgreSQL
 * database), listening on 127.0.0.1. The worker is not started: tests drive `worker.round()`
 * with a ManualClock, so time moves without sleeping.
 */
import { randomBytes } from "node:crypto";
import { PassThrough } from "node:stream";
import { type Clock, systemClock } from "@evergreen/db";
import { buildIssuer, loadConfig } from "@evergreen/server";
import { type Broker, createBroker } from "../../src/broker.ts";
import { loadBrokerConfig } from "../../src/config.ts";
import {
  type DbKind,
  type TestDatabase,
  createTestDatabase,
  freePort,
} from "../../../server/test/harness.ts";

export interface TestBroker {
  url: string;
  adminToken: string;
  broker: Broker;
  db: TestDatabase;
  clock: Clock;
  /** Every log line written so far (level debug). */
  logs(): string;
  admin(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: any; headers: Headers }>;
  token(
    id: string,
    key: string,
    minValidity?: number,
  ): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

export async function startTestBroker(
  options: {
    database?: DbKind;
    clock?: Clock;
    env?: Record<string, string>;
    db?: TestDatabase;
    random?: () => number;
  } = {},
): Promise<TestBroker> {
  const db = options.db ?? (await createTestDatabase(options.database ?? "pglite"));
  const port = await freePort();
  const adminToken = `test-admin-${randomBytes(8).toString("hex")}`;
  const config = loadConfig({
    PORT: String(port),
    HOST: "127.0.0.1",
    LOG_LEVEL: "debug",
    EVERGREEN_RATE_LIMIT: "off",
  });
  const clock = options.clock ?? systemClock;
  const stream = new PassThrough();
  let logs = "";
  stream.on("data", (c) => {
    logs += c.toString("utf8");
  });
  const issuer = await buildIssuer({ config, db: db.db, clock, adminToken, logStream: stream });
  const broker = await createBroker({
    db: db.db,
    ring: issuer.ctx.ring,
    clock,
    config: loadBrokerConfig({
      EVERGREEN_BROKER_LEASE_MS: "30000",
      EVERGREEN_BROKER_UPSTREAM_TIMEOUT_MS: "2000",
      ...options.env,
    }),
    registry: issuer.ctx.metrics.registry,
    log: issuer.app.log,
    random: options.random,
  });
  await broker.registerRoutes(issuer.app, issuer.ctx, adminToken);
  await issuer.app.listen({ port, host: "127.0.0.1" });
  const url = `http://127.0.0.1:${port}`;
  const call = async (method: string, path: string, bearer: string, body?: unknown) => {
    const res = await fetch(url + path, {
      method,
      headers: {
        authorization: `Bearer ${bearer}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
  return {
    url,
    adminToken,
    broker,
    db,
    clock,
    logs: () => logs,
    admin: (method, path, body) => call(method, path, adminToken, body),
    token: (id, key, minValidity) =>
      call(
        "GET",
        `/v1/connections/${id}/token${minValidity === undefined ? "" : `?min_validity=${minValidity}`}`,
        key,
      ),
    async close() {
      await broker.close();
      await issuer.close();
      if (!options.db) await db.drop();
    },
  };
}
