import type { ServerExtension } from "@evergreen/server";
import { createBroker } from "./broker.ts";
import { loadBrokerConfig } from "./config.ts";

/**
 * The broker as a part of `evergreen serve`: its admin and consumer routes on the issuer's
 * app, its metrics on the issuer's registry, and a worker in-process unless
 * EVERGREEN_BROKER_WORKER=off. Invalid broker settings refuse the start.
 */
export function brokerExtension(env: NodeJS.ProcessEnv = process.env): ServerExtension {
  const config = loadBrokerConfig(env);
  return async (issuer, adminToken) => {
    const broker = await createBroker({
      db: issuer.ctx.db,
      ring: issuer.ctx.ring,
      clock: issuer.ctx.clock,
      config,
      registry: issuer.ctx.metrics.registry,
      log: issuer.app.log,
    });
    try {
      await broker.registerRoutes(issuer, adminToken);
    } catch (err) {
      await broker.close();
      throw err;
    }
    if (config.workerInServe) broker.startWorker();
    return { close: () => broker.close() };
  };
}
