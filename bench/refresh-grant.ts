/**
 * Refresh-grant load test: durable refresh_token grants per second against a real server
 * process on PostgreSQL, at concurrency 64, each virtual client rotating its own token.
 *
 *   npm run bench -- [--duration 20] [--concurrency 64] [--database-url postgres://…]
 *
 * The server runs in its own process (`evergreen serve`, rate limits off, warn logs); this
 * process only generates load. At the end every family must still have exactly one live
 * token and no reuse may have been detected, or the run fails.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Agent, request } from "node:http";
import { createServer } from "node:net";
import { parseArgs } from "node:util";
import pg from "pg";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "20" },
    warmup: { type: "string", default: "3" },
    concurrency: { type: "string", default: "64" },
    "database-url": {
      type: "string",
      default: process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
    },
    json: { type: "boolean", default: false },
  },
});
const DURATION = Number(values.duration) * 1000;
const WARMUP = Number(values.warmup) * 1000;
const CONCURRENCY = Number(values.concurrency);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

function post(port: number, path: string, body: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path,
        method: "POST",
        agent,
        headers: { "content-length": Buffer.byteLength(body), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const FORM = { "content-type": "application/x-www-form-urlencoded" };

async function main() {
  const dbName = `evergreen_bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: values["database-url"] });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const url = new URL(values["database-url"]!);
  url.pathname = `/${dbName}`;
  const port = await freePort();
  const adminToken = randomBytes(16).toString("hex");
  // BENCH_SERVER_ARGS passes node flags to the server process only (e.g. "--cpu-prof").
  const serverArgs = (process.env.BENCH_SERVER_ARGS ?? "").split(" ").filter(Boolean);
  const server = spawn(
    process.execPath,
    [...serverArgs, "packages/cli/bin/evergreen.js", "serve"], // compiled, as deployed (`prebench` builds)
    {
      env: {
        ...process.env,
        DATABASE_URL: url.toString(),
        PORT: String(port),
        EVERGREEN_ADMIN_TOKEN: adminToken,
        EVERGREEN_RATE_LIMIT: "off",
        EVERGREEN_DATA_DIR: `/tmp/${dbName}`,
        LOG_LEVEL: "warn",
      },
      stdio: ["ignore", "inherit", "pipe"],
    },
  );
  let stderr = "";
  server.stderr.on("data", (d) => {
    stderr += d;
  });
  try {
    for (let i = 0; ; i++) {
      const up = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (i > 200) throw new Error(`server did not start:\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const adminHeaders = { authorization: `Bearer ${adminToken}`, "content-type": "application/json" };
    await post(
      port,
      "/admin/users",
      JSON.stringify({ username: "bench", password: "bench-password" }),
      adminHeaders,
    );
    await post(
      port,
      "/admin/clients",
      JSON.stringify({
        client_id: "bench",
        token_endpoint_auth_method: "none",
        grant_types: ["password", "refresh_token"],
        max_sessions_per_user: 1000,
      }),
      adminHeaders,
    );
    // One login per virtual client: each rotates its own family.
    const tokens: string[] = [];
    for (let i = 0; i < CONCURRENCY; i++) {
      const res = await post(
        port,
        "/token",
        "grant_type=password&username=bench&password=bench-password&client_id=bench",
        FORM,
      );
      tokens.push(JSON.parse(res.body).refresh_token);
    }

    const latencies: number[] = [];
    let errors = 0;
    let measuring = false;
    let stop = false;
    const loop = async (i: number) => {
      while (!stop) {
        const t0 = performance.now();
        const res = await post(
          port,
          "/token",
          `grant_type=refresh_token&client_id=bench&refresh_token=${tokens[i]}`,
          FORM,
        );
        const dt = performance.now() - t0;
        if (res.status !== 200) {
          errors++;
          if (errors < 5) process.stderr.write(`refresh failed: ${res.status} ${res.body}\n`);
          continue;
        }
        tokens[i] = JSON.parse(res.body).refresh_token;
        if (measuring) latencies.push(dt);
      }
    };
    const loops = Array.from({ length: CONCURRENCY }, (_, i) => loop(i));
    await new Promise((r) => setTimeout(r, WARMUP));
    measuring = true;
    const started = performance.now();
    await new Promise((r) => setTimeout(r, DURATION));
    measuring = false;
    const elapsed = (performance.now() - started) / 1000;
    stop = true;
    await Promise.all(loops);

    latencies.sort((a, b) => a - b);
    const pct = (p: number) =>
      latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0;
    const db = new pg.Client({ connectionString: url.toString() });
    await db.connect();
    const live = await db.query(
      "SELECT count(*)::int AS families, count(*) FILTER (WHERE live = 1)::int AS linear FROM (SELECT family_id, count(*) FILTER (WHERE consumed_at IS NULL) AS live FROM refresh_tokens GROUP BY family_id) x",
    );
    const reuse = await db.query(
      "SELECT count(*)::int AS n FROM audit_events WHERE type = 'refresh_token_reuse'",
    );
    const rotated = await db.query(
      "SELECT count(*)::int AS n FROM refresh_tokens WHERE consumed_at IS NOT NULL",
    );
    await db.end();
    const result = {
      concurrency: CONCURRENCY,
      duration_s: Number(elapsed.toFixed(1)),
      refreshes: latencies.length,
      refreshes_per_s: Math.round(latencies.length / elapsed),
      p50_ms: Number(pct(50).toFixed(2)),
      p90_ms: Number(pct(90).toFixed(2)),
      p99_ms: Number(pct(99).toFixed(2)),
      max_ms: Number((latencies.at(-1) ?? 0).toFixed(2)),
      errors,
      families: live.rows[0].families,
      families_with_one_live_token: live.rows[0].linear,
      reuse_detections: reuse.rows[0].n,
      rotations_in_db: rotated.rows[0].n,
    };
    if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      process.stdout.write("refresh_token grant, durable on PostgreSQL\n");
      for (const [k, v] of Object.entries(result)) process.stdout.write(`  ${k.padEnd(30)} ${v}\n`);
    }
    const ok =
      errors === 0 &&
      result.families === result.families_with_one_live_token &&
      result.reuse_detections === 0;
    if (!ok) process.exitCode = 1;
  } finally {
    server.kill("SIGTERM");
    await new Promise((r) => server.once("exit", r));
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    agent.destroy();
  }
}

await main();
