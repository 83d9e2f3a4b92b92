import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { type Clock, type Database, systemClock } from "@evergreen/db";
import type { IssuerContext, KeyRing } from "@evergreen/server";
import type { FastifyInstance } from "fastify";
import { Registry } from "prom-client";
import { brokerAdminRoutes } from "./admin/routes.ts";
import type { BrokerConfig } from "./config.ts";
import { consumerRoutes } from "./consumer/routes.ts";
import type { BrokerContext, BrokerLog } from "./context.ts";
import { createBrokerMetrics } from "./metrics.ts";
import { Notifier } from "./notifier.ts";
import { loadProvidersFile } from "./providers/file.ts";
import { ProviderLimits } from "./refresh/limits.ts";
import { ensureConfiguredWebhook } from "./webhooks/store.ts";
import { BrokerWorker } from "./worker/worker.ts";

export interface BrokerOptions {
  db: Database;
  ring: KeyRing;
  config: BrokerConfig;
  clock?: Clock;
  /** The server's metrics registry (its /metrics shows the broker's too); default: a new one. */
  registry?: Registry;
  log: BrokerLog;
  random?: () => number;
  fetch?: typeof fetch;
}

export interface Broker {
  ctx: BrokerContext;
  /** Registers the admin and consumer routes on `app` (before it listens). */
  registerRoutes(app: FastifyInstance, issuer: IssuerContext, adminToken: string): Promise<void>;
  /** The worker of this process (started by `startWorker`). */
  worker: BrokerWorker;
  startWorker(): void;
  close(): Promise<void>;
}

/**
 * Builds the broker on an open, migrated database: loads the providers file and the
 * configured webhook, starts listening for notifications. Routes and the worker are the
 * caller's choice (`serve` takes both, `evergreen broker worker` only the worker).
 */
export async function createBroker(options: BrokerOptions): Promise<Broker> {
  const clock = options.clock ?? systemClock;
  const { db, ring, config } = options;
  const notifier = new Notifier(db);
  const ctx: BrokerContext = {
    db,
    clock,
    ring,
    config,
    metrics: createBrokerMetrics(options.registry ?? new Registry()),
    log: options.log,
    notifier,
    limits: new ProviderLimits(),
    owner: `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`,
    random: options.random ?? Math.random,
    fetch: options.fetch ?? fetch,
  };
  if (config.providersFile) {
    const names = await loadProvidersFile(db, ring, clock, config.providersFile);
    options.log.info({ providers: names }, "broker: providers file loaded");
  }
  if (config.webhookUrl) {
    if (!config.webhookSecret)
      throw new Error("EVERGREEN_BROKER_WEBHOOK_URL needs EVERGREEN_BROKER_WEBHOOK_SECRET");
    await ensureConfiguredWebhook(db, ring, clock, config.webhookUrl, config.webhookSecret);
  }
  await notifier.start();
  const worker = new BrokerWorker(ctx);
  let started = false;
  return {
    ctx,
    worker,
    async registerRoutes(app, issuer, adminToken) {
      await app.register(brokerAdminRoutes, { ctx, issuer, adminToken });
      await app.register(consumerRoutes, { ctx });
    },
    startWorker() {
      started = true;
      worker.start();
    },
    async close() {
      if (started) await worker.stop();
      await notifier.close();
    },
  };
}
