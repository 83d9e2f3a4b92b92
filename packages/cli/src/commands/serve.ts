import { type ServerConfig, markAdminTokenShown, startServer } from "@evergreen/server";
import { acquireDataDirLock } from "../data-dir-lock.ts";
import { parse } from "../args.ts";
import { routeGroups } from "../route-groups.ts";
import { announceWorker, configureWorker, isServeWorker, runPrimary } from "../serve-cluster.ts";

const HELP = `evergreen serve — start the issuer

Usage: evergreen serve [--port N] [--host H] [--workers N]

  --workers N   run N server processes sharing the port (node:cluster), to use N cores;
                PostgreSQL only (the embedded PGlite database is single-process). Without
                REDIS_URL each worker counts rate limits on its own.

Serves the OAuth endpoints (/token, /revoke, /introspect, /jwks, /userinfo, /.well-known/…),
the admin API (/admin/*), the broker (/admin/providers, /admin/connections, /admin/api-keys,
/admin/webhooks, GET /v1/connections/:id/token), /metrics and /healthz, and runs a broker
worker in-process (EVERGREEN_BROKER_WORKER=off leaves refreshing to "evergreen broker worker"). Uses PostgreSQL when DATABASE_URL is set,
otherwise embedded PGlite under $EVERGREEN_DATA_DIR (default ./.evergreen).
On first start without EVERGREEN_ADMIN_TOKEN, an admin token is generated, stored in the
data directory and printed once.
`;

/** Returns -1: the process keeps running until SIGINT/SIGTERM. */
export async function serveCommand(config: ServerConfig, args: string[]): Promise<number> {
  const parsed = parse(
    args,
    { port: { type: "string" }, host: { type: "string" }, workers: { type: "string" } },
    HELP,
  );
  if (!parsed) return 0;
  if (parsed.values.port) config.port = Number(parsed.values.port);
  if (parsed.values.host) config.host = parsed.values.host;
  if (!process.env.ISSUER && (parsed.values.port || parsed.values.host)) {
    const host = config.host.includes(":") ? `[${config.host}]` : config.host;
    config.issuer = `http://${host}:${config.port}`;
    if (!process.env.EVERGREEN_AUDIENCE) config.audience = config.issuer;
  }
  if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) {
    process.stderr.write(`evergreen: --port must be a port number\n`);
    return 2;
  }
  const workers = parsed.values.workers === undefined ? 1 : Number(parsed.values.workers);
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
    process.stderr.write("evergreen: --workers must be a whole number from 1 to 256\n");
    return 2;
  }
  const worker = isServeWorker();
  if (workers > 1 && !worker) {
    if (!config.databaseUrl) {
      process.stderr.write(
        "evergreen: --workers needs PostgreSQL (set DATABASE_URL): the embedded PGlite database can only be opened by one process\n",
      );
      return 2;
    }
    return runPrimary(config, workers);
  }
  if (worker) configureWorker(config);
  const release = config.databaseUrl ? undefined : acquireDataDirLock(config.dataDir);
  let server: Awaited<ReturnType<typeof startServer>>;
  try {
    server = await startServer(config, { extensions: routeGroups({ brokerWorker: true, dashboard: true }) });
  } catch (err) {
    release?.();
    throw err;
  }
  const out = (line: string) => process.stderr.write(`${line}\n`);
  if (worker) announceWorker(server.issuer.ctx.metrics.registry, server.url);
  // The start-up banner goes out in one write, so whoever reads it (a person, a supervisor, a
  // test waiting for "listening on") gets the generated admin token with the first line.
  const banner = [
    `evergreen: issuer ${config.issuer} listening on ${server.url}`,
    `evergreen: dashboard ${config.issuer}/dashboard`,
    `evergreen: database ${config.databaseUrl ? "PostgreSQL (DATABASE_URL)" : `embedded PGlite in ${config.dataDir}`}`,
  ];
  if (server.adminTokenCreated) {
    banner.push(
      "evergreen: generated an admin token (kept in the data directory, shown only now):",
      `    ${server.adminToken}`,
    );
  }
  if (!config.encryptionKey) {
    banner.push(
      "evergreen: WARNING no EVERGREEN_ENCRYPTION_KEY set; signing keys and broker tokens are sealed with a development key.",
    );
  }
  // Workers are quiet: the primary prints one banner for all of them.
  if (!worker) out(banner.join("\n"));
  if (server.adminTokenCreated && !worker) markAdminTokenShown(config.dataDir);
  const stop = async (signal: string) => {
    if (!worker) out(`evergreen: ${signal}, shutting down`);
    await server.stop().catch(() => {});
    release?.();
    process.exit(0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
  return -1;
}
