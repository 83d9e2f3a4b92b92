/**
 * Broker consumer API: token reads per second and latency at concurrency 64 on PostgreSQL,
 * `GET /v1/connections/:id/token?min_validity=60` with an API key (key check and decryption
 * included), against a real `evergreen serve` process.
 *
 * Next to it, in the same run and on the same database, the baselines a team would build
 * instead (seed 004's "microservice"): the same number of AES-256-GCM sealed tokens in a plain
 * table, read by id with `pg` and decrypted in-process (a) directly in this process, and (b) in
 * a minimal node:http service in its own process. The ratios are printed.
 *
 *   node --import tsx bench/broker-token-reads.ts [--duration 15] [--warmup 3] [--concurrency 64]
 *     [--connections 1000] [--database-url postgres://…] [--json] [--no-write]
 *
 * Results go to bench/results/broker-token-reads-<time>.{json,md}.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { BrokerApi } from "../packages/broker/test/system/support/broker-api.ts";
import { createConnections, registerProvider } from "../packages/broker/test/system/support/broker-system.ts";
import { createFreshDatabase } from "../packages/broker/test/system/support/database.ts";
import { ROOT, brokerSecrets, startServe } from "../packages/broker/test/system/support/processes.ts";
import { startStrictProvider } from "../packages/broker/test/system/support/strict-provider.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "15" },
    warmup: { type: "string", default: "3" },
    concurrency: { type: "string", default: "64" },
    connections: { type: "string", default: "1000" },
    "database-url": { type: "string" },
    json: { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
    // internal: run as the baseline HTTP service on DATABASE_URL with BASELINE_KEY
    "baseline-server": { type: "boolean", default: false },
  },
});
if (values["database-url"]) process.env.TEST_DATABASE_URL = values["database-url"];
const DURATION = Number(values.duration) * 1000;
const WARMUP = Number(values.warmup) * 1000;
const CONCURRENCY = Number(values.concurrency);
const CONNECTIONS = Number(values.connections);

/** AES-256-GCM: iv (12) | tag (16) | ciphertext — what a careful team would store. */
function seal(key: Buffer, plain: string): Buffer {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", key, iv);
  const ct = Buffer.concat([c.update(plain, "utf8"), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), ct]);
}

function open(key: Buffer, sealed: Buffer): string {
  const d = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, 12));
  d.setAuthTag(sealed.subarray(12, 28));
  return Buffer.concat([d.update(sealed.subarray(28)), d.final()]).toString("utf8");
}

const BASELINE_SQL = "SELECT access_token, expires_at FROM bench_baseline_tokens WHERE id = $1";

/** One baseline read: the row by id, decrypt, check it is valid for 60 s. */
async function baselineRead(pool: pg.Pool, key: Buffer, id: string): Promise<string> {
  const { rows } = await pool.query({ name: "baseline", text: BASELINE_SQL, values: [id] });
  const row = rows[0];
  if (!row || row.expires_at.getTime() < Date.now() + 60_000) throw new Error("no valid token");
  return open(key, row.access_token);
}

async function runBaselineServer(): Promise<void> {
  const key = Buffer.from(process.env.BASELINE_KEY!, "base64");
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 10 });
  const server = createServer((req, res) => {
    const id = /^\/tokens\/([0-9a-f-]{36})$/.exec(req.url ?? "")?.[1];
    if (!id) return void res.writeHead(404).end();
    baselineRead(pool, key, id).then(
      (token) => {
        res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
        res.end(JSON.stringify({ access_token: token }));
      },
      () => res.writeHead(404).end(),
    );
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, "127.0.0.1", () =>
    process.stdout.write(`listening ${(server.address() as AddressInfo).port}\n`),
  );
  process.on("SIGTERM", () => {
    server.close();
    server.closeAllConnections();
    void pool.end().then(() => process.exit(0));
  });
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

interface LoadResult {
  reads_per_s: number;
  reads: number;
  errors: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** Runs `op` from CONCURRENCY loops: warm-up, then DURATION measured. */
async function load(op: () => Promise<boolean>): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let measuring = false;
  let stop = false;
  const loop = async () => {
    while (!stop) {
      const t0 = performance.now();
      let ok = false;
      try {
        ok = await op();
      } catch {
        ok = false;
      }
      const dt = performance.now() - t0;
      if (!measuring) continue;
      if (ok) latencies.push(dt);
      else errors++;
    }
  };
  const loops = Array.from({ length: CONCURRENCY }, loop);
  await new Promise((r) => setTimeout(r, WARMUP));
  measuring = true;
  const started = performance.now();
  await new Promise((r) => setTimeout(r, DURATION));
  measuring = false;
  const elapsed = (performance.now() - started) / 1000;
  stop = true;
  await Promise.all(loops);
  latencies.sort((a, b) => a - b);
  const r2 = (x: number) => Number(x.toFixed(2));
  return {
    reads_per_s: Math.round(latencies.length / elapsed),
    reads: latencies.length,
    errors,
    p50_ms: r2(pct(latencies, 50)),
    p90_ms: r2(pct(latencies, 90)),
    p99_ms: r2(pct(latencies, 99)),
    max_ms: r2(latencies.at(-1) ?? 0),
  };
}

function httpGet(
  agent: Agent,
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const db = await createFreshDatabase("evergreen_bench_broker");
  const provider = await startStrictProvider({ accessTokenTtl: 3600, latencyMs: [0, 0] });
  const secrets = brokerSecrets();
  const serve = await startServe({ DATABASE_URL: db.url, ...secrets, EVERGREEN_BROKER_WORKER: "off" });
  let baselineChild: ChildProcess | undefined;
  try {
    const api = new BrokerApi(serve.url, secrets.EVERGREEN_ADMIN_TOKEN);
    await registerProvider(api, provider, "bench", { refresh_ahead: 300, default_ttl: 3600 });
    process.stderr.write(`creating ${CONNECTIONS} connections…\n`);
    const conns = await createConnections(api, provider, "bench", CONNECTIONS, () => 3600, 16);
    const apiKey = (await api.createApiKey({ name: "bench", providers: ["bench"] })).key;
    const ids = conns.map((c) => c.id);
    const pick = () => ids[Math.floor(Math.random() * ids.length)]!;

    // the broker
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const port = Number(new URL(serve.url).port);
    const auth = { authorization: `Bearer ${apiKey}` };
    process.stderr.write("broker consumer API…\n");
    const broker = await load(
      async () =>
        (await httpGet(agent, port, `/v1/connections/${pick()}/token?min_validity=60`, auth)) === 200,
    );
    agent.destroy();

    // the baselines: the same tokens sealed in a plain table
    const key = randomBytes(32);
    const pool = new pg.Pool({ connectionString: db.url, max: 10 });
    await pool.query(
      "CREATE TABLE bench_baseline_tokens (id uuid PRIMARY KEY, access_token bytea NOT NULL, expires_at timestamptz NOT NULL)",
    );
    const baseIds: string[] = [];
    for (let i = 0; i < CONNECTIONS; i += 500) {
      const chunk = conns
        .slice(i, i + 500)
        .map((c) => ({ id: randomUUID(), sealed: seal(key, c.grant.access_token) }));
      await pool.query(
        "INSERT INTO bench_baseline_tokens SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::timestamptz[])",
        [
          chunk.map((c) => c.id),
          chunk.map((c) => c.sealed),
          chunk.map(() => new Date(Date.now() + 3600_000)),
        ],
      );
      baseIds.push(...chunk.map((c) => c.id));
    }
    const pickBase = () => baseIds[Math.floor(Math.random() * baseIds.length)]!;
    process.stderr.write("baseline: pg + AES-GCM in-process…\n");
    const direct = await load(async () => (await baselineRead(pool, key, pickBase())).startsWith("at_"));
    await pool.end();

    process.stderr.write("baseline: minimal node:http service (pg + AES-GCM)…\n");
    baselineChild = spawn(
      process.execPath,
      ["--import", "tsx", join(ROOT, "bench/broker-token-reads.ts"), "--baseline-server"],
      {
        cwd: ROOT,
        env: { ...process.env, DATABASE_URL: db.url, BASELINE_KEY: key.toString("base64") },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const basePort = await new Promise<number>((resolve, reject) => {
      let out = "";
      baselineChild!.stdout!.on("data", (d) => {
        out += d;
        const m = /listening (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      baselineChild!.once("exit", (code) => reject(new Error(`baseline server exited ${code}`)));
    });
    const agent2 = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const service = await load(
      async () => (await httpGet(agent2, basePort, `/tokens/${pickBase()}`)) === 200,
    );
    agent2.destroy();

    const result = {
      at: new Date().toISOString(),
      concurrency: CONCURRENCY,
      connections: CONNECTIONS,
      duration_s: DURATION / 1000,
      broker: broker,
      baseline_pg_in_process: direct,
      baseline_http_service: service,
      ratio_vs_in_process: Number((broker.reads_per_s / direct.reads_per_s).toFixed(2)),
      ratio_vs_http_service: Number((broker.reads_per_s / service.reads_per_s).toFixed(2)),
      target: "≥ 4,000 reads/s with p99 < 20 ms at concurrency 64",
      target_met: broker.reads_per_s >= 4000 && broker.p99_ms < 20 && broker.errors === 0,
    };
    const row = (name: string, r: LoadResult) =>
      `| ${name} | ${r.reads_per_s.toLocaleString("en")} | ${r.p50_ms} ms | ${r.p90_ms} ms | ${r.p99_ms} ms | ${r.max_ms} ms | ${r.errors} |`;
    const md = [
      `## Broker token reads, ${result.at} (concurrency ${CONCURRENCY}, ${CONNECTIONS} connections, ${result.duration_s} s)`,
      "",
      "| what | reads/s | p50 | p90 | p99 | max | errors |",
      "|---|---|---|---|---|---|---|",
      row("broker `GET /v1/connections/:id/token` (API key + decrypt)", broker),
      row("baseline: `pg` + AES-GCM in this process", direct),
      row("baseline: minimal node:http service, `pg` + AES-GCM", service),
      "",
      `Broker / in-process baseline: ${result.ratio_vs_in_process}; broker / HTTP service baseline: ${result.ratio_vs_http_service}. Target (${result.target}): ${result.target_met ? "met" : "not met"}.`,
      "",
    ].join("\n");
    if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else process.stdout.write(`${md}\n`);
    if (!values["no-write"]) {
      const dir = join(ROOT, "bench/results");
      mkdirSync(dir, { recursive: true });
      const stamp = result.at.replace(/[:.]/g, "-");
      writeFileSync(join(dir, `broker-token-reads-${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
      writeFileSync(join(dir, `broker-token-reads-${stamp}.md`), md);
    }
    if (broker.errors > 0) process.exitCode = 1;
  } finally {
    if (baselineChild && baselineChild.exitCode === null) {
      const gone = new Promise((r) => baselineChild!.once("exit", r));
      baselineChild.kill("SIGTERM");
      await gone;
    }
    await serve.stop();
    await provider.close();
    await db.drop();
  }
}

if (values["baseline-server"]) await runBaselineServer();
else await main();
