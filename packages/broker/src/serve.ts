import type { IssuerExtension } from "@evergreen/server";
import { createBroker } from "./broker.ts";
import { loadBrokerConfig } from "./config.ts";

/**
 * The broker as a route group of the issuer's app: its admin and consumer routes, its metrics
 * on the issuer's registry, and — for `evergreen serve`, unless EVERGREEN_BROKER_WORKER=off —
 * a worker in-process, stopped when the app closes. The CLI's in-process admin backend uses
 * the same group without the worker. Invalid broker settings refuse the start (they are read
 * here, before anything opens).
 */
export function brokerRoutes(options: { worker: boolean; env?: NodeJS.ProcessEnv }): IssuerExtension {
  const config = loadBrokerConfig(options.env ?? process.env);
  return async (app, { ctx, adminToken }) => {
    const broker = await createBroker({
      db: ctx.db,
      ring: ctx.ring,
      clock: ctx.clock,
      config,
      registry: ctx.metrics.registry,
      log: ctx.log,
    });
    app.addHook("onClose", () => broker.close());
    await broker.registerRoutes(app, ctx, adminToken);
    if (options.worker && config.workerInServe) broker.startWorker();
  };
}
