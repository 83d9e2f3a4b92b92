/**
 * `npm run bench`: the refresh_token grant, Evergreen side by side with oidc-provider 9, in the
 * same run, on the same PostgreSQL, driven by one load generator in its own process.
 *
 *   npm run bench -- [--duration 15] [--warmup 3] [--concurrency 16,64,256] [--runs 2]
 *     [--cases evergreen-pg,evergreen-pglite,oidc-map,oidc-pg] [--growth 10000,100000,1000000]
 *     [--growth-concurrency 64] [--workers 2] [--database-url postgres://…] [--json] [--no-write]
 *
 * Cases: evergreen-pg, evergreen-pg-w<N> (serve --workers N), evergreen-pglite, oidc-map
 * (oidc-provider with a Map adapter), oidc-pg (oidc-provider with a PostgreSQL adapter), and
 * growth-<N> (evergreen-pg with N extra families and refresh tokens seeded in SQL), and the floor
 * under a refresh: floor-http (bare Fastify), floor-sign (+ one Ed25519 signature), floor-pg
 * (+ one durable single-statement rotation), see systems/floor-server.ts. Every case
 * starts its own server process on a fresh database, mints one refresh token per virtual client
 * through the system's own login flow, then runs each concurrency for --duration seconds after
 * --warmup. The cases run interleaved, --runs times, so every ratio compares runs made minutes
 * apart. Results: bench/results/<date>-<machine>.{json,md}.
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import type { LoadRequest, LoadResult } from "./load-generator.ts";
import { type MachineInfo, machineInfo, treeCpuSeconds } from "./machine.ts";
import { type EvergreenSystem, seedFamilies, startEvergreen, startFloor } from "./systems/evergreen.ts";
import { startOidcProvider } from "./systems/oidc-provider.ts";
import { ROOT } from "./systems/process.ts";
import type { RefreshSystem } from "./systems/system.ts";

const { values } = parseArgs({
  options: {
    duration: { type: "string", default: "15" },
    warmup: { type: "string", default: "3" },
    concurrency: { type: "string", default: "16,64,256" },
    runs: { type: "string", default: "2" },
    cases: { type: "string", default: "evergreen-pg,evergreen-pglite,oidc-map,oidc-pg" },
    growth: { type: "string", default: "" },
    "growth-concurrency": { type: "string", default: "64" },
    "database-url": {
      type: "string",
      default: process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
    },
    json: { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
  },
});
const DURATION = Number(values.duration) * 1000;
const WARMUP = Number(values.warmup) * 1000;
const LEVELS = values.concurrency!.split(",").map(Number);
const RUNS = Number(values.runs);
const ADMIN_URL = values["database-url"]!;
const cases = values.cases!.split(",").filter(Boolean);
for (const n of values.growth!.split(",").filter(Boolean)) cases.push(`growth-${n}`);

interface CaseRun {
  case: string;
  run: number;
  concurrency: number;
  result: Omit<LoadResult, "tokens">;
  /** CPU of the server process tree, as a fraction of one core. */
  server_cpu: number;
  /** CPU of the PostgreSQL backends serving the case's database, as a fraction of one core. */
  db_cpu?: number;
  /** Whole-machine CPU busy fraction (all cores) while measuring. */
  machine_busy: number;
  checks?: Record<string, number>;
}

function machineTicks(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = line[3]! + line[4]!;
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

class LoadGenerator {
  private child: ChildProcess;
  constructor() {
    this.child = fork(join(ROOT, "bench/load-generator.ts"), [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
  }
  run(req: LoadRequest): Promise<LoadResult> {
    return new Promise((resolve, reject) => {
      this.child.once("message", (m: { ok?: LoadResult; error?: string }) =>
        m.ok ? resolve(m.ok) : reject(new Error(m.error)),
      );
      this.child.send(req);
    });
  }
  close(): void {
    this.child.send("exit");
  }
}

async function freshDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `evergreen_bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Evergreen on PostgreSQL after the run: one live token per family, no reuse detected. */
async function evergreenChecks(url: string): Promise<Record<string, number>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const live = await c.query(
      `SELECT count(*)::int AS families, count(*) FILTER (WHERE live = 1)::int AS one_live
         FROM (SELECT f.id, count(t.hash) FILTER (WHERE t.consumed_at IS NULL) AS live
                 FROM families f LEFT JOIN refresh_tokens t ON t.family_id = f.id GROUP BY f.id) x`,
    );
    const reuse = await c.query(
      "SELECT count(*)::int AS n FROM audit_events WHERE type = 'refresh_token_reuse'",
    );
    const rotated = await c.query(
      "SELECT count(*)::int AS n FROM refresh_tokens WHERE consumed_at IS NOT NULL",
    );
    return {
      families: live.rows[0].families,
      families_with_one_live_token: live.rows[0].one_live,
      reuse_detections: reuse.rows[0].n,
      rotations_in_db: rotated.rows[0].n,
    };
  } finally {
    await c.end();
  }
}

/** CPU seconds so far of each PostgreSQL backend connected to the database at `url`. */
async function backendCpu(url: string | undefined): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  if (!url) return out;
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    const { rows } = await c.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
      [new URL(url).pathname.slice(1)],
    );
    for (const { pid } of rows) out.set(pid, treeCpuSeconds(pid));
  } finally {
    await c.end();
  }
  return out;
}

async function startCase(
  name: string,
): Promise<{ system: RefreshSystem; url?: string; drop(): Promise<void> }> {
  const noDb = { drop: async () => {} };
  if (name === "evergreen-pglite") return { system: await startEvergreen({}), ...noDb };
  if (name === "oidc-map") return { system: await startOidcProvider("map"), ...noDb };
  if (name === "floor-http" || name === "floor-sign")
    return { system: await startFloor(name.slice(6)), ...noDb };
  const db = await freshDatabase();
  try {
    if (name === "oidc-pg") return { system: await startOidcProvider("pg", db.url), ...db };
    if (name === "floor-pg") return { system: await startFloor("pg", db.url), ...db };
    const w = /^evergreen-pg-w(\d+)$/.exec(name);
    if (name === "evergreen-pg" || w) {
      return { system: await startEvergreen({ databaseUrl: db.url, workers: w ? Number(w[1]) : 1 }), ...db };
    }
    const g = /^growth-(\d+)$/.exec(name);
    if (g) {
      const system = await startEvergreen({ databaseUrl: db.url });
      const seedUser = await (system as EvergreenSystem).addUser("seeded");
      const t0 = performance.now();
      await seedFamilies(db.url, seedUser, Number(g[1]));
      process.stderr.write(
        `  seeded ${g[1]} families in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
      );
      return { system, ...db };
    }
  } catch (err) {
    await db.drop();
    throw err;
  }
  await db.drop();
  throw new Error(`unknown case ${name}`);
}

function fmt(n: number): string {
  return n.toLocaleString("en-US");
}

async function main() {
  const machine = await machineInfo(ADMIN_URL);
  const loadgen = new LoadGenerator();
  const runs: CaseRun[] = [];
  const startedAt = new Date();
  try {
    for (let run = 1; run <= RUNS; run++) {
      for (const name of cases) {
        const levels = name.startsWith("growth-") ? [Number(values["growth-concurrency"])] : LEVELS;
        process.stderr.write(`run ${run} ${name}: starting\n`);
        const { system, url, drop } = await startCase(name);
        try {
          let tokens = await system.mint(Math.max(...levels));
          const bodyPrefix = system.body("");
          for (const c of levels) {
            const db0 = await backendCpu(url);
            const cpu0 = treeCpuSeconds(system.proc.child.pid!);
            const m0 = machineTicks();
            const res = await loadgen.run({
              port: system.port,
              path: system.path,
              bodyPrefix,
              tokens: tokens.slice(0, c),
              warmupMs: WARMUP,
              durationMs: DURATION,
            });
            const m1 = machineTicks();
            const cpu = treeCpuSeconds(system.proc.child.pid!) - cpu0;
            const db1 = await backendCpu(url);
            let dbCpu = 0;
            for (const [pid, t] of db1) dbCpu += t - (db0.get(pid) ?? 0);
            tokens = [...res.tokens, ...tokens.slice(c)];
            const { tokens: _t, ...result } = res;
            const entry: CaseRun = {
              case: name,
              run,
              concurrency: c,
              result,
              server_cpu: Number((cpu / ((WARMUP + DURATION) / 1000 + 0.5)).toFixed(2)),
              ...(url ? { db_cpu: Number((dbCpu / ((WARMUP + DURATION) / 1000 + 0.5)).toFixed(2)) } : {}),
              machine_busy: Number(((m1.busy - m0.busy) / (m1.total - m0.total)).toFixed(2)),
            };
            runs.push(entry);
            process.stderr.write(
              `  c=${c}: ${fmt(result.per_s)}/s p50 ${result.p50_ms} p99 ${result.p99_ms} p999 ${result.p999_ms} ms, errors ${result.errors}, server cpu ${entry.server_cpu}, db cpu ${entry.db_cpu ?? "-"}, loadgen cpu ${result.loadgen_cpu}, machine busy ${entry.machine_busy}\n`,
            );
            if (result.errors) process.stderr.write(`  errors: ${result.error_samples.join(" | ")}\n`);
          }
          if (url && (name.startsWith("evergreen-pg") || name.startsWith("growth-"))) {
            const checks = await evergreenChecks(url);
            for (const r of runs.filter((x) => x.case === name && x.run === run)) r.checks = checks;
            process.stderr.write(`  checks: ${JSON.stringify(checks)}\n`);
          }
        } finally {
          await system.stop();
          await drop();
        }
      }
    }
  } finally {
    loadgen.close();
  }
  machine.load_average = (await machineInfo()).load_average;
  const report = summarize(machine, startedAt, runs);
  if (values.json) process.stdout.write(`${JSON.stringify({ machine, runs, ratios: report.ratios })}\n`);
  else process.stdout.write(report.markdown);
  if (!values["no-write"]) {
    const dir = join(ROOT, "bench/results");
    mkdirSync(dir, { recursive: true });
    const stamp = startedAt.toISOString().replace(/[:.]/g, "-").slice(0, 19);
    const base = join(dir, `${stamp}-${machine.hostname}`);
    writeFileSync(
      `${base}.json`,
      `${JSON.stringify({ started_at: startedAt, options: values, machine, runs, ratios: report.ratios }, null, 2)}\n`,
    );
    writeFileSync(`${base}.md`, report.markdown);
    process.stderr.write(`wrote ${base}.{json,md}\n`);
  }
  const bad = runs.some(
    (r) =>
      r.result.errors > 0 ||
      (r.checks &&
        (r.checks.families !== r.checks.families_with_one_live_token ||
          (r.checks.reuse_detections ?? 0) > 0)),
  );
  if (bad) process.exitCode = 1;
}

/** Server + database CPU per refresh in ms (CPU is counted over warm-up and measurement). */
function cpuPerRefresh(r: CaseRun): string {
  if (!r.result.per_s) return "–";
  return (((r.server_cpu + (r.db_cpu ?? 0)) * 1000) / r.result.per_s).toFixed(2);
}

interface Ratio {
  run: number;
  concurrency: number;
  evergreen_case: string;
  vs: string;
  ratio: number;
}

function summarize(machine: MachineInfo, startedAt: Date, runs: CaseRun[]) {
  const ratios: Ratio[] = [];
  const evergreenCases = [...new Set(runs.map((r) => r.case))].filter(
    (c) => c.startsWith("evergreen-") && c !== "evergreen-pglite",
  );
  for (const r of runs.filter((x) => evergreenCases.includes(x.case))) {
    for (const vs of ["oidc-map", "oidc-pg"]) {
      const o = runs.find((x) => x.case === vs && x.run === r.run && x.concurrency === r.concurrency);
      if (o && o.result.per_s > 0) {
        ratios.push({
          run: r.run,
          concurrency: r.concurrency,
          evergreen_case: r.case,
          vs,
          ratio: Number((r.result.per_s / o.result.per_s).toFixed(2)),
        });
      }
    }
  }
  const lines: string[] = [];
  lines.push(`# Refresh grant benchmark, ${startedAt.toISOString()}`, "");
  lines.push(
    `Machine: ${machine.hostname}, ${machine.cores} cores (${machine.cpu_model}), ${machine.memory_gib} GiB, Node ${machine.node}, load average after ${machine.load_average.join(" ")}.`,
  );
  if (machine.postgres) {
    lines.push(
      `PostgreSQL ${machine.postgres.server_version}: ${Object.entries(machine.postgres)
        .filter(([k]) => k !== "server_version")
        .map(([k, v]) => `${k}=${v}`)
        .join(", ")}.`,
    );
  }
  lines.push(
    `Options: duration ${values.duration} s after ${values.warmup} s warm-up, concurrency ${values.concurrency}, ${RUNS} run(s) interleaved.`,
    "",
  );
  if (ratios.length) {
    lines.push("## Ratios (Evergreen / oidc-provider, same run)", "");
    lines.push(
      "| run | concurrency | Evergreen case | / oidc-provider Map | / oidc-provider PostgreSQL |",
      "|---|---|---|---|---|",
    );
    const keys = [...new Set(ratios.map((r) => `${r.run}|${r.concurrency}|${r.evergreen_case}`))];
    for (const k of keys) {
      const [run, c, ec] = k.split("|");
      const get = (vs: string) =>
        ratios.find((r) => `${r.run}|${r.concurrency}|${r.evergreen_case}` === k && r.vs === vs)?.ratio ??
        "–";
      lines.push(`| ${run} | ${c} | ${ec} | ${get("oidc-map")} | ${get("oidc-pg")} |`);
    }
    lines.push("");
  }
  lines.push("## Results", "");
  lines.push(
    "| run | case | concurrency | refreshes/s | p50 ms | p99 ms | p999 ms | max ms | errors | server CPU (cores) | PostgreSQL backends CPU | CPU ms per refresh (server + db) | load generator CPU | machine busy |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
  );
  for (const r of runs) {
    const x = r.result;
    lines.push(
      `| ${r.run} | ${r.case} | ${r.concurrency} | ${fmt(x.per_s)} | ${x.p50_ms} | ${x.p99_ms} | ${x.p999_ms} | ${x.max_ms} | ${x.errors} | ${r.server_cpu} | ${r.db_cpu ?? "–"} | ${cpuPerRefresh(r)} | ${x.loadgen_cpu} | ${Math.round(r.machine_busy * 100)} % |`,
    );
  }
  lines.push("");
  const growth = runs.filter((r) => r.case.startsWith("growth-") || r.case === "evergreen-pg");
  if (runs.some((r) => r.case.startsWith("growth-"))) {
    lines.push("## Growth (Evergreen on PostgreSQL, stored families seeded in SQL)", "");
    lines.push("| run | seeded families | concurrency | refreshes/s | p99 ms |", "|---|---|---|---|---|");
    const gc = Number(values["growth-concurrency"]);
    for (const r of growth.filter((x) => x.concurrency === gc)) {
      const seeded = r.case === "evergreen-pg" ? "0" : fmt(Number(r.case.slice(7)));
      lines.push(`| ${r.run} | ${seeded} | ${r.concurrency} | ${fmt(r.result.per_s)} | ${r.result.p99_ms} |`);
    }
    lines.push("");
  }
  return { ratios, markdown: `${lines.join("\n")}\n` };
}

await main();
