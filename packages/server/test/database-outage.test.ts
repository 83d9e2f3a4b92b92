/**
 * PostgreSQL taken away under a running issuer, through a TCP proxy the test controls: stopped
 * (connections refused and reset), frozen (connections open, nothing answers) and backends
 * terminated. A request that needs the database answers 503 `temporarily_unavailable` with
 * Retry-After, never a 500 or a hang; logs say it once per class; /readyz follows the
 * database; everything recovers by itself once the database is back.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { type Database, ManualClock, openPostgres } from "@evergreen/db";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { type RunningServer, startServer } from "../src/server.ts";
import {
  ADMIN_DATABASE_URL,
  type TestDatabase,
  type TestIssuer,
  createTestDatabase,
  freePort,
  startTestIssuer,
} from "./harness.ts";
import {
  type HttpResult,
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  login,
  loginOk,
  postForm,
  refresh,
  refreshOk,
  userinfo,
} from "./helpers.ts";
import { TcpProxy } from "./tcp-proxy.ts";

const pgAddress = new URL(ADMIN_DATABASE_URL);
const PG_PORT = Number(pgAddress.port || 5432);

function expectUnavailable(res: HttpResult): void {
  expect(res.status, res.text).toBe(503);
  expect(res.body).toMatchObject({ error: "temporarily_unavailable" });
  expect(typeof res.body.error_description).toBe("string");
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  expect(res.headers.get("cache-control")).toBe("no-store");
  expect(res.text).not.toMatch(/stack|at \w+ \(|node_modules|ECONN|Connection/i);
}

async function get(url: string, headers: Record<string, string> = {}): Promise<HttpResult> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined, text };
}

/** Polls `url` until it answers `status` (the dependency is back); fails after `ms`. */
async function waitForStatus(url: string, status: number, ms = 60_000): Promise<HttpResult> {
  const deadline = Date.now() + ms;
  for (;;) {
    const res = await get(url);
    if (res.status === status || Date.now() > deadline) return res;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("database stopped under a running issuer (PostgreSQL behind a proxy)", () => {
  let base: TestDatabase;
  let proxy: TcpProxy;
  let db: Database;
  let ti: TestIssuer;
  let clock: ManualClock;
  const lines: Record<string, unknown>[] = [];
  let client: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    base = await createTestDatabase("postgres");
    proxy = await TcpProxy.start(PG_PORT, pgAddress.hostname);
    db = openPostgres(proxy.wrap(base.url!), {
      max: 4,
      timeouts: { connectMs: 3_000, queryMs: 5_000, statementMs: 4_000 },
    });
    clock = new ManualClock();
    const logStream = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line));
        done();
      },
    });
    ti = await startTestIssuer({
      db: { db, url: base.url, drop: async () => {} },
      clock,
      logStream,
      env: { LOG_LEVEL: "warn" },
    });
    client = await createClient(ti);
    user = await createUser(ti);
  });
  afterAll(async () => {
    await ti?.close();
    await proxy?.close();
    await db?.close();
    await base?.drop();
  });

  it("answers 503 temporarily_unavailable with Retry-After everywhere, /readyz 503, /healthz 200, logs once per class, and recovers", async () => {
    const session = await loginOk(ti, client, user);
    expect((await get(`${ti.url}/readyz`)).status).toBe(200);

    await proxy.stop();

    // Token endpoint: both grants; revocation; a protected resource; the admin API.
    expectUnavailable(await login(ti, client, user));
    expectUnavailable(await refresh(ti, client, session.refresh_token!));
    expectUnavailable(await postForm(ti, "/revoke", { token: session.refresh_token! }, client));
    const info = await userinfo(ti, session.access_token);
    expectUnavailable(info);
    // The access token was fine: no RFC 6750 challenge blaming it.
    expect(info.headers.get("www-authenticate")).toBeNull();
    const adminRes = await get(`${ti.url}/admin/users/${user.id}`, {
      authorization: `Bearer ${ti.adminToken}`,
    });
    expectUnavailable(adminRes);
    const burst = await Promise.all(Array.from({ length: 12 }, () => login(ti, client, user)));
    for (const res of burst) expectUnavailable(res);

    const ready = await get(`${ti.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(Number(ready.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(ready.body).toMatchObject({
      status: "unavailable",
      checks: { database: "unreachable", keys: "ok" },
    });
    expect((await get(`${ti.url}/healthz`)).status).toBe(200);

    // 17 failed requests, one warning per class of failure, no stack, no error-level line.
    const outageLines = () => lines.filter((l) => l.event === "dependency_unavailable");
    const byReason = new Map<string, number>();
    for (const l of outageLines()) byReason.set(String(l.reason), (byReason.get(String(l.reason)) ?? 0) + 1);
    expect(byReason.size).toBeGreaterThanOrEqual(1);
    for (const count of byReason.values()) expect(count).toBe(1);
    expect(JSON.stringify(lines)).not.toMatch(/"stack"/);
    expect(lines.filter((l) => Number(l.level) >= 50)).toEqual([]);

    // Once the interval has passed, the next failure is logged again, with what was suppressed.
    clock.advance(6);
    expectUnavailable(await login(ti, client, user));
    const latest = outageLines().at(-1)!;
    expect(outageLines().length).toBe([...byReason.values()].length + 1);
    expect(latest).toMatchObject({ dependency: "database", reason: "ECONNREFUSED" });
    expect(Number(latest.suppressed)).toBeGreaterThanOrEqual(1);

    const metrics = await (await fetch(`${ti.url}/metrics`)).text();
    expect(metrics).toMatch(
      /evergreen_dependency_unavailable_total\{dependency="database",reason="ECONNREFUSED"\} \d+/,
    );

    // Back: ready again by itself, and the session was not harmed by the failed refresh.
    await proxy.restore();
    const back = await waitForStatus(`${ti.url}/readyz`, 200);
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ status: "ready", checks: { database: "ok", keys: "ok" } });
    const next = await refreshOk(ti, client, session.refresh_token!);
    expect(next.refresh_token).toBeTruthy();
    expect((await login(ti, client, user)).status).toBe(200);
  }, 120_000);

  it("backends terminated by the server (pg_terminate_backend) never give a 500, and the pool heals", async () => {
    const session = await loginOk(ti, client, user);
    const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
    await admin.connect();
    try {
      const dbName = new URL(base.url!).pathname.slice(1);
      const { rows } = await admin.query(
        "SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        [dbName],
      );
      expect(rows.length).toBeGreaterThanOrEqual(1);
    } finally {
      await admin.end();
    }
    // Racing the termination notice, a request may meet a dying connection: 503, never 500.
    const first = await refresh(ti, client, session.refresh_token!);
    if (first.status !== 200) expectUnavailable(first);
    const again = await waitForStatus(`${ti.url}/readyz`, 200);
    expect(again.status).toBe(200);
    expect((await login(ti, client, user)).status).toBe(200);
  }, 120_000);
});

describe("database frozen under `evergreen serve` (timeouts from the environment)", () => {
  let base: TestDatabase;
  let proxy: TcpProxy;
  let server: RunningServer;
  let dataDir: string;
  let ti: TestIssuer;

  beforeAll(async () => {
    base = await createTestDatabase("postgres");
    proxy = await TcpProxy.start(PG_PORT, pgAddress.hostname);
    dataDir = mkdtempSync(join(tmpdir(), "evergreen-frozen-"));
    const config = loadConfig({
      PORT: String(await freePort()),
      HOST: "127.0.0.1",
      DATABASE_URL: proxy.wrap(base.url!),
      EVERGREEN_DATA_DIR: dataDir,
      EVERGREEN_ADMIN_TOKEN: `test-admin-${"x".repeat(32)}`,
      EVERGREEN_DB_POOL: "4",
      EVERGREEN_DB_CONNECT_TIMEOUT_MS: "2000",
      EVERGREEN_DB_QUERY_TIMEOUT_MS: "3000",
      EVERGREEN_DB_STATEMENT_TIMEOUT_MS: "2500",
      LOG_LEVEL: "silent",
    });
    expect(config.dbTimeouts).toMatchObject({ connectMs: 2000, queryMs: 3000, statementMs: 2500 });
    server = await startServer(config, { logger: false });
    ti = {
      url: server.url,
      adminToken: server.adminToken,
      async admin(method: string, path: string, body?: unknown) {
        const res = await fetch(server.url + path, {
          method,
          headers: {
            authorization: `Bearer ${server.adminToken}`,
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await res.text();
        return { status: res.status, body: text ? JSON.parse(text) : undefined };
      },
    } as TestIssuer;
  });
  afterAll(async () => {
    await proxy?.close();
    await server?.stop();
    await base?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("a request fails with 503 within the configured bound instead of hanging, and recovers", async () => {
    const client = await createClient(ti);
    const user = await createUser(ti);
    const session = await loginOk(ti, client, user);

    proxy.freeze();
    // Pooled connections time out on the query, new ones on connecting: both are bounded.
    const [a, b] = await Promise.all([login(ti, client, user), refresh(ti, client, session.refresh_token!)]);
    expectUnavailable(a);
    expectUnavailable(b);
    expectUnavailable(await login(ti, client, user));
    expect((await get(`${ti.url}/readyz`)).status).toBe(503);
    expect((await get(`${ti.url}/healthz`)).status).toBe(200);

    await proxy.restore();
    expect((await waitForStatus(`${ti.url}/readyz`, 200)).status).toBe(200);
    expect((await refreshOk(ti, client, session.refresh_token!)).refresh_token).toBeTruthy();
  }, 120_000);
});
