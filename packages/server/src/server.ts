import { type Clock, type Database, migrate, openDatabase, systemClock } from "@evergreen/db";
import { join } from "node:path";
import { resolveAdminToken } from "./admin-token.ts";
import { type Issuer, type IssuerExtension, buildIssuer } from "./app.ts";
import type { ServerConfig } from "./config.ts";
import { janitorOptions, runJanitor } from "./janitor.ts";

export interface RunningServer {
  issuer: Issuer;
  db: Database;
  url: string;
  adminToken: string;
  adminTokenCreated: boolean;
  stop(): Promise<void>;
}

/** Opens the configured database, migrates it, builds the issuer and listens. `evergreen serve` is this. */
export async function startServer(
  config: ServerConfig,
  options: { clock?: Clock; logger?: boolean; extensions?: IssuerExtension[] } = {},
): Promise<RunningServer> {
  const clock = options.clock ?? systemClock;
  // First: a configured admin token that is too short refuses the start before anything opens.
  const admin = resolveAdminToken(config.adminToken, config.dataDir);
  const db = await openDatabase({
    url: config.databaseUrl,
    dataDir: join(config.dataDir, "pgdata"),
    poolSize: config.dbPoolSize,
    timeouts: config.dbTimeouts,
  });
  try {
    await migrate(db);
    const issuer = await buildIssuer({
      config,
      db,
      clock,
      adminToken: admin.token,
      logger: options.logger,
      extensions: options.extensions,
    });
    try {
      await issuer.app.listen({ port: config.port, host: config.host });
    } catch (err) {
      // The extensions' background work stops with the app (their onClose hooks).
      await issuer.close().catch(() => {});
      throw err;
    }
    const address = issuer.app.server.address();
    const port = typeof address === "object" && address ? address.port : config.port;
    let timer: NodeJS.Timeout | undefined;
    if (config.janitorInterval > 0) {
      timer = setInterval(() => {
        runJanitor(db, clock, config.retention, janitorOptions(config.storage)).catch((err) =>
          issuer.app.log.warn({ err: { message: String(err?.message) } }, "janitor run failed"),
        );
      }, config.janitorInterval * 1000);
      timer.unref();
    }
    return {
      issuer,
      db,
      url: `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`,
      adminToken: admin.token,
      adminTokenCreated: admin.created,
      async stop() {
        if (timer) clearInterval(timer);
        await issuer.close();
        await db.close();
      },
    };
  } catch (err) {
    await db.close().catch(() => {});
    throw err;
  }
}
