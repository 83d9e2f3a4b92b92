/**
 * Broker scale: N connections on PostgreSQL whose tokens expire evenly over a window, against
 * a local strict provider (a reused refresh token revokes the grant), refreshed by 1 and then
 * 4 `evergreen broker worker` processes (each run on a fresh database). Every connection must
 * be refreshed before its token expires, with zero reuse; the lateness distribution (seconds
 * before expiry at refresh) and the refreshes/s sustained are printed.
 *
 *   node --import tsx bench/broker-scale.ts [--connections 100000] [--spread 600] [--workers 1,4]
 *     [--refresh-ahead 60] [--latency 5,20] [--batch 20] [--concurrency 10]
 *     [--insert-rate 400] [--lead 20] [--database-url postgres://…] [--json] [--no-write]
 *
 * `--spread` compresses the expiry window (e.g. 60 for ten times the rate). Connections are
 * created through the admin API before the first expiry: the first one expires `--lead` s after
 * the estimated end of creation (`--insert-rate` per second). Results go to
 * bench/results/broker-scale-<time>.{json,md}.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BrokerApi } from "../packages/broker/test/system/support/broker-api.ts";
import { registerProvider } from "../packages/broker/test/system/support/broker-system.ts";
import { createFreshDatabase } from "../packages/broker/test/system/support/database.ts";
import {
  type EvergreenProcess,
  ROOT,
  brokerSecrets,
  sleep,
  startServe,
  startWorker,
  stopAll,
} from "../packages/broker/test/system/support/processes.ts";
import {
  type SeededGrant,
  startStrictProvider,
} from "../packages/broker/test/system/support/strict-provider.ts";

const { values } = parseArgs({
  options: {
    connections: { type: "string", default: "100000" },
    spread: { type: "string", default: "600" },
    workers: { type: "string", default: "1,4" },
    "refresh-ahead": { type: "string", default: "60" },
    latency: { type: "string", default: "5,20" },
    batch: { type: "string", default: "20" },
    concurrency: { type: "string", default: "10" },
    "insert-rate": { type: "string", default: "400" },
    "insert-concurrency": { type: "string", default: "16" },
    lead: { type: "string", default: "20" },
    "database-url": { type: "string" },
    json: { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
  },
});
if (values["database-url"]) process.env.TEST_DATABASE_URL = values["database-url"];
const N = Number(values.connections);
const SPREAD_S = Number(values.spread);
const REFRESH_AHEAD = Number(values["refresh-ahead"]);
const [LAT_LO, LAT_HI] = values.latency!.split(",").map(Number) as [number, number];

function pct(sorted: number[], p: number): number {
  return (
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor((sorted.length * p) / 100)))] ?? Number.NaN
  );
}

const r1 = (x: number) => Number(x.toFixed(1));
const r2 = (x: number) => Number(x.toFixed(2));

async function runOnce(workerCount: number) {
  const db = await createFreshDatabase("evergreen_bench_scale");
  // refreshed tokens live an hour: each connection is refreshed exactly once in the run
  const provider = await startStrictProvider({ accessTokenTtl: 3600, latencyMs: [LAT_LO, LAT_HI] });
  const secrets = brokerSecrets();
  const env = {
    DATABASE_URL: db.url,
    ...secrets,
    EVERGREEN_BROKER_BATCH: values.batch!,
    EVERGREEN_BROKER_CONCURRENCY: values.concurrency!,
    LOG_LEVEL: "warn",
  };
  let serve: EvergreenProcess | undefined;
  const workers: EvergreenProcess[] = [];
  try {
    serve = await startServe({ ...env, EVERGREEN_BROKER_WORKER: "off" });
    const api = new BrokerApi(serve.url, secrets.EVERGREEN_ADMIN_TOKEN);
    await registerProvider(api, provider, "scale", { refresh_ahead: REFRESH_AHEAD, default_ttl: 3600 });
    for (let i = 0; i < workerCount; i++)
      workers.push(await startWorker({ ...env, LOG_LEVEL: "info" }, `worker-${i + 1}`));

    // expiries evenly over the window, starting after the estimated end of creation
    const insertStart = Date.now();
    const firstExpiry = insertStart + (N / Number(values["insert-rate"]) + Number(values.lead)) * 1000;
    const expiry = (i: number) => firstExpiry + (SPREAD_S * 1000 * i) / N;
    const grants: SeededGrant[] = new Array(N);
    let next = 0;
    let lastReport = Date.now();
    await Promise.all(
      Array.from({ length: Number(values["insert-concurrency"]) }, async () => {
        while (next < N) {
          const i = next++;
          const g = provider.seedGrant((expiry(i) - Date.now()) / 1000);
          grants[i] = g;
          await api.createConnection({
            provider: "scale",
            access_token: g.access_token,
            refresh_token: g.refresh_token,
            expires_at: g.expires_at,
          });
          if (Date.now() - lastReport > 10_000) {
            lastReport = Date.now();
            process.stderr.write(`  created ${i + 1}/${N}\n`);
          }
        }
      }),
    );
    const insertEnd = Date.now();
    const behind = insertEnd > firstExpiry - REFRESH_AHEAD * 1000;
    process.stderr.write(
      `  ${N} connections in ${r1((insertEnd - insertStart) / 1000)} s${behind ? " (creation ran into the first refresh windows)" : ""}; waiting for refreshes…\n`,
    );

    // wait for every connection's refresh, up to the last expiry plus a margin
    const deadline = expiry(N - 1) + 120_000;
    while (Date.now() < deadline && provider.refreshCount < N) {
      await sleep(1000);
      if (Date.now() - lastReport > 15_000) {
        lastReport = Date.now();
        process.stderr.write(`  refreshed ${provider.refreshCount}/${N}, reuse ${provider.reuseCount}\n`);
      }
    }

    // lateness: seconds before the seed token's expiry at which its refresh happened
    const lateness: number[] = [];
    const times: number[] = [];
    let missing = 0;
    for (const g of grants) {
      const at = provider.grant(g.grantId).refreshedAt[0];
      if (at === undefined) {
        missing++;
        continue;
      }
      lateness.push((g.expiresAtMs - at) / 1000);
      times.push(at);
    }
    lateness.sort((a, b) => a - b);
    times.sort((a, b) => a - b);
    // sustained rate: the best and the median 10-s window while refreshes were due
    const windows: number[] = [];
    if (times.length > 0)
      for (let t = times[0]!; t < times.at(-1)!; t += 10_000) {
        let lo = 0;
        let hi = times.length;
        while (lo < hi) {
          const m = (lo + hi) >> 1;
          if (times[m]! < t) lo = m + 1;
          else hi = m;
        }
        let k = lo;
        while (k < times.length && times[k]! < t + 10_000) k++;
        windows.push((k - lo) / 10);
      }
    const sortedWindows = [...windows].sort((a, b) => a - b);
    // every reuse explained: what happened to the rotation before it, and how long after it came
    const reuses = [];
    for (const g of provider.grants.values()) {
      if (g.reuses === 0) continue;
      const reqs = provider.requestsFor(g.id);
      const reuse = reqs.find((r) => r.outcome === "reuse")!;
      const before = reqs.filter((r) => r.outcome === "rotated" && r.receivedAt <= reuse.receivedAt).at(-1);
      reuses.push({
        grant: g.id,
        requests: reqs.length,
        rotation_answer: before ? (before.clientGone ? "client gone before the answer" : "answered") : "none",
        rotation_took_ms: before?.answeredAt ? before.answeredAt - before.receivedAt : null,
        reuse_after_rotation_ms: before ? reuse.receivedAt - before.receivedAt : null,
      });
    }
    const late = lateness.filter((s) => s <= 0).length;
    if (provider.reuseCount > 0 || missing > 0)
      for (const w of workers) {
        const lines = w
          .output()
          .split("\n")
          .filter((l) => /"level":(40|50|60)/.test(l));
        process.stderr.write(
          `  ${w.name}: ${lines.length} warn/error lines, last ones:\n${lines.slice(-8).join("\n")}\n`,
        );
      }
    return {
      workers: workerCount,
      connections: N,
      spread_s: SPREAD_S,
      offered_refreshes_per_s: r1(N / SPREAD_S),
      refresh_ahead_s: REFRESH_AHEAD,
      provider_latency_ms: [LAT_LO, LAT_HI],
      batch: Number(values.batch),
      concurrency_per_worker: Number(values.concurrency),
      create_s: r1((insertEnd - insertStart) / 1000),
      refreshed: times.length,
      not_refreshed: missing,
      refreshed_after_expiry: late,
      reuse: provider.reuseCount,
      revoked_grants: [...provider.grants.values()].filter((g) => g.revokedAt !== undefined).length,
      provider_requests: provider.requests.length,
      reuse_details: reuses.slice(0, 50),
      lateness_s: {
        min: r2(lateness[0] ?? Number.NaN),
        p1: r2(pct(lateness, 1)),
        p5: r2(pct(lateness, 5)),
        p50: r2(pct(lateness, 50)),
        p95: r2(pct(lateness, 95)),
        max: r2(lateness.at(-1) ?? Number.NaN),
      },
      refreshes_per_s: {
        overall: times.length > 1 ? r1(times.length / ((times.at(-1)! - times[0]!) / 1000)) : 0,
        median_10s_window: r1(pct(sortedWindows, 50)),
        best_10s_window: r1(sortedWindows.at(-1) ?? 0),
      },
      ok: missing === 0 && late === 0 && provider.reuseCount === 0,
    };
  } finally {
    await stopAll([...workers, serve]);
    await provider.close();
    await db.drop();
  }
}

async function main(): Promise<void> {
  const counts = values.workers!.split(",").map(Number);
  const runs = [];
  for (const w of counts) {
    process.stderr.write(`broker scale: ${N} connections over ${SPREAD_S} s, ${w} worker(s)\n`);
    runs.push(await runOnce(w));
  }
  const at = new Date().toISOString();
  const md = [
    `## Broker scale, ${at}: ${N.toLocaleString("en")} connections expiring evenly over ${SPREAD_S} s (${r1(N / SPREAD_S)} refreshes/s offered)`,
    "",
    `Provider latency ${LAT_LO}–${LAT_HI} ms, refresh_ahead ${REFRESH_AHEAD} s, batch ${values.batch}, concurrency ${values.concurrency} per worker.`,
    "",
    "| workers | refreshed | after expiry | reuse | lateness min / p1 / p5 / p50 / p95 / max (s before expiry) | refreshes/s overall / median 10 s / best 10 s |",
    "|---|---|---|---|---|---|",
    ...runs.map(
      (r) =>
        `| ${r.workers} | ${r.refreshed.toLocaleString("en")} / ${r.connections.toLocaleString("en")} | ${r.refreshed_after_expiry} | ${r.reuse} | ${r.lateness_s.min} / ${r.lateness_s.p1} / ${r.lateness_s.p5} / ${r.lateness_s.p50} / ${r.lateness_s.p95} / ${r.lateness_s.max} | ${r.refreshes_per_s.overall} / ${r.refreshes_per_s.median_10s_window} / ${r.refreshes_per_s.best_10s_window} |`,
    ),
    "",
  ].join("\n");
  if (values.json) process.stdout.write(`${JSON.stringify({ at, runs })}\n`);
  else process.stdout.write(`${md}\n`);
  if (!values["no-write"]) {
    const dir = join(ROOT, "bench/results");
    mkdirSync(dir, { recursive: true });
    const stamp = at.replace(/[:.]/g, "-");
    writeFileSync(join(dir, `broker-scale-${stamp}.json`), `${JSON.stringify({ at, runs }, null, 2)}\n`);
    writeFileSync(join(dir, `broker-scale-${stamp}.md`), md);
  }
  if (!runs.every((r) => r.ok)) process.exitCode = 1;
}

await main();
