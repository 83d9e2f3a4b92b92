import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MAIN = resolve(import.meta.dirname, "../src/main.ts");
const ADMIN_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
/** Starting a primary and two tsx workers on a loaded 2-core machine can take a while. */
const BUDGET_MS = 300_000;

async function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => r(port));
    });
  });
}

/** One request on its own connection, so the cluster may hand it to either worker. */
function call(
  port: number,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((ok, fail) => {
    const req = request(
      { host: "127.0.0.1", port, method, path, agent: false, headers: { connection: "close", ...headers } },
      (res) => {
        let data = "";
        res.on("data", (d) => {
          data += d;
        });
        res.on("end", () => ok({ status: res.statusCode ?? 0, body: data }));
      },
    );
    req.on("error", fail);
    req.end(body);
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("evergreen serve --workers", { timeout: BUDGET_MS }, () => {
  let dir: string;
  let dbName: string;
  let dbUrl: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "evergreen-workers-"));
    dbName = `evergreen_cli_workers_${randomBytes(5).toString("hex")}`;
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    await admin.end();
    const url = new URL(ADMIN_URL);
    url.pathname = `/${dbName}`;
    dbUrl = url.toString();
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
  });

  it("refuses more than one worker on the embedded database, with the reason", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "serve", "--workers", "2"], {
      env: { ...process.env, DATABASE_URL: "", EVERGREEN_DATA_DIR: dir, PORT: String(await freePort()) },
    });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const code = await new Promise((r) => child.on("exit", r));
    expect(code).toBe(2);
    expect(stderr).toContain("--workers needs PostgreSQL");
  });

  it("serves from two worker processes sharing the port, refreshes across them, and stops on SIGTERM", async () => {
    const port = await freePort();
    const adminToken = randomBytes(24).toString("hex");
    const child: ChildProcess = spawn(
      process.execPath,
      ["--import", "tsx", MAIN, "serve", "--workers", "2"],
      {
        env: {
          ...process.env,
          DATABASE_URL: dbUrl,
          EVERGREEN_DATA_DIR: dir,
          EVERGREEN_ADMIN_TOKEN: adminToken,
          EVERGREEN_BROKER_WORKER: "off",
          PORT: String(port),
          LOG_LEVEL: "warn",
        },
      },
    );
    let stderr = "";
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      await new Promise<void>((ok, fail) => {
        child.stderr!.on("data", (d) => {
          stderr += d;
          if (stderr.includes("(2 workers)")) ok();
        });
        void exited.then((code) => fail(new Error(`serve exited ${code}: ${stderr}`)));
      });

      // Each scrape on a fresh connection lands on either worker; every metric names its pid.
      const pids = new Set<number>();
      for (let i = 0; i < 60 && pids.size < 2; i++) {
        const res = await call(port, "GET", "/metrics");
        expect(res.status).toBe(200);
        const m = /process_start_time_seconds\{[^}]*pid="(\d+)"/.exec(res.body);
        expect(m).not.toBeNull();
        pids.add(Number(m![1]));
      }
      expect(pids.size).toBe(2);
      expect(pids.has(child.pid!)).toBe(false);
      for (const pid of pids) expect(alive(pid)).toBe(true);

      const json = { authorization: `Bearer ${adminToken}`, "content-type": "application/json" };
      expect(
        (
          await call(
            port,
            "POST",
            "/admin/users",
            JSON.stringify({ username: "w", password: "worker-password" }),
            json,
          )
        ).status,
      ).toBe(201);
      expect(
        (
          await call(
            port,
            "POST",
            "/admin/clients",
            JSON.stringify({
              client_id: "w",
              token_endpoint_auth_method: "none",
              grant_types: ["password", "refresh_token"],
            }),
            json,
          )
        ).status,
      ).toBe(201);
      const form = { "content-type": "application/x-www-form-urlencoded" };
      const login = await call(
        port,
        "POST",
        "/token",
        "grant_type=password&username=w&password=worker-password&client_id=w",
        form,
      );
      expect(login.status).toBe(200);
      let refresh = JSON.parse(login.body).refresh_token as string;
      // Ten rotations, each on a new connection: the workers take turns and each sees the other's writes.
      for (let i = 0; i < 10; i++) {
        const res = await call(
          port,
          "POST",
          "/token",
          `grant_type=refresh_token&client_id=w&refresh_token=${refresh}`,
          form,
        );
        expect(res.status).toBe(200);
        const next = JSON.parse(res.body).refresh_token as string;
        expect(next).not.toBe(refresh);
        refresh = next;
      }
      const db = new pg.Client({ connectionString: dbUrl });
      await db.connect();
      const { rows } = await db.query(
        "SELECT count(*)::int AS total, count(*) FILTER (WHERE consumed_at IS NULL)::int AS live FROM refresh_tokens",
      );
      const keys = await db.query("SELECT count(*)::int AS n FROM signing_keys");
      await db.end();
      expect(rows[0]).toEqual({ total: 11, live: 1 });
      // Both workers started at once; key creation happened once.
      expect(keys.rows[0].n).toBe(1);

      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      for (const pid of pids) expect(alive(pid)).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
