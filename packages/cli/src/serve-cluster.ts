import cluster, { type Worker } from "node:cluster";
import { type ServerConfig, markAdminTokenShown, resolveAdminToken } from "@evergreen/server";
import { openCommandDatabase } from "./open-database.ts";

/**
 * `evergreen serve --workers N`: a node:cluster primary that forks N worker processes sharing
 * one listening port (the primary accepts and hands connections round-robin). Each worker is a
 * whole `serve` with its own database pool; everything they share lives in PostgreSQL.
 *
 * What must happen once happens in the primary before any worker starts: the admin token is
 * resolved (a generated one is written to the data directory once and handed to the workers),
 * and migrations run. Signing-key creation is race-safe on its own (a table lock), so the
 * workers' start-up does it. SIGTERM/SIGINT on the primary stops every worker gracefully
 * (each closes its server and pool) and exits once they have.
 */

/** Env a forked worker reads: which slot it fills (slot 0 runs the janitor). */
const SLOT_ENV = "EVERGREEN_SERVE_WORKER_SLOT";

export function isServeWorker(): boolean {
  return cluster.isWorker && process.env[SLOT_ENV] !== undefined;
}

/** In a worker: only slot 0 keeps the periodic janitor; the others would repeat its deletes. */
export function configureWorker(config: ServerConfig): void {
  if (process.env[SLOT_ENV] !== "0") config.janitorInterval = 0;
}

/**
 * In a worker, once listening: labels every metric with the worker's slot and process id
 * (each worker keeps its own registry, so a scrape shows the worker that answered it, and
 * Prometheus keeps the workers' series apart) and tells the primary its URL.
 */
export function announceWorker(
  registry: { setDefaultLabels(labels: Record<string, string>): void },
  url: string,
): void {
  registry.setDefaultLabels({ worker: process.env[SLOT_ENV] ?? "0", pid: String(process.pid) });
  process.send?.({ evergreen: "listening", url });
}

/** Worker restarts faster than this apart are a crash loop: the primary then stops. */
const MIN_RESTART_INTERVAL_MS = 5_000;

/**
 * The primary's side: prepares, forks, restarts a worker that dies, and exits once every
 * worker has stopped after SIGTERM/SIGINT. Never listens itself. Returns -1 (keeps running).
 */
export async function runPrimary(config: ServerConfig, workers: number): Promise<number> {
  const out = (line: string) => process.stderr.write(`${line}\n`);
  const admin = resolveAdminToken(config.adminToken, config.dataDir);
  const { applied, close } = await openCommandDatabase(config, { poolSize: 1 });
  await close();
  if (applied.length) out(`evergreen: applied migrations ${applied.join(", ")}`);

  cluster.setupPrimary({ silent: false });
  const env = { EVERGREEN_ADMIN_TOKEN: admin.token };
  const slots = new Map<Worker, number>();
  const lastStart = new Map<number, number>();
  let stopping = false;
  let listening = 0;
  let resolveDone: (code: number) => void = () => {};
  const done = new Promise<number>((r) => {
    resolveDone = r;
  });

  const fork = (slot: number) => {
    lastStart.set(slot, Date.now());
    const w = cluster.fork({ ...env, [SLOT_ENV]: String(slot) });
    slots.set(w, slot);
    w.on("message", (m: { evergreen?: string; url?: string }) => {
      if (m?.evergreen !== "listening") return;
      listening++;
      if (listening === workers) {
        const banner = [
          `evergreen: issuer ${config.issuer} listening on ${m.url} (${workers} workers)`,
          "evergreen: database PostgreSQL (DATABASE_URL)",
        ];
        if (admin.created) {
          banner.push(
            "evergreen: generated an admin token (kept in the data directory, shown only now):",
            `    ${admin.token}`,
          );
        }
        if (!config.encryptionKey) {
          banner.push(
            "evergreen: WARNING no EVERGREEN_ENCRYPTION_KEY set; signing keys and broker tokens are sealed with a development key.",
          );
        }
        if (!config.redisUrl && config.rateLimit.enabled) {
          banner.push(
            "evergreen: note: without REDIS_URL each worker keeps its own rate-limit counters (budgets apply per worker)",
          );
        }
        out(banner.join("\n"));
        if (admin.created) markAdminTokenShown(config.dataDir);
      }
    });
  };

  cluster.on("exit", (w, code, signal) => {
    const slot = slots.get(w);
    slots.delete(w);
    if (stopping) {
      if (slots.size === 0) resolveDone(0);
      return;
    }
    out(`evergreen: worker ${slot} (pid ${w.process.pid}) exited (${signal ?? code})`);
    if (slot === undefined) return;
    if (Date.now() - (lastStart.get(slot) ?? 0) < MIN_RESTART_INTERVAL_MS) {
      out("evergreen: workers keep exiting right after start; stopping");
      void stop(1);
      return;
    }
    fork(slot);
  });

  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    if (slots.size === 0) resolveDone(code);
    for (const w of slots.keys()) w.process.kill("SIGTERM");
    const exit = await done;
    process.exit(code || exit);
  };
  process.once("SIGINT", () => {
    out("evergreen: SIGINT, shutting down");
    void stop(0);
  });
  process.once("SIGTERM", () => {
    out("evergreen: SIGTERM, shutting down");
    void stop(0);
  });
  for (let slot = 0; slot < workers; slot++) fork(slot);
  return -1;
}
