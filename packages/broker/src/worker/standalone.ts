import type { Database } from "@evergreen/db";
import { REDACT_PATHS, parseKeyRing } from "@evergreen/server";
import pino from "pino";
import { createBroker } from "../broker.ts";
import { loadBrokerConfig } from "../config.ts";

/**
 * `evergreen broker worker`: only a worker (no HTTP), on an open, migrated database. Logs go
 * to stderr through pino with the server's redaction list. Resolves to the stop function.
 */
export async function runBrokerWorker(input: {
  db: Database;
  encryptionKey?: string;
  logLevel: string;
  env?: NodeJS.ProcessEnv;
}): Promise<() => Promise<void>> {
  const config = loadBrokerConfig(input.env ?? process.env);
  const log = pino(
    { level: input.logLevel, redact: { paths: REDACT_PATHS, censor: "[redacted]" } },
    pino.destination(2),
  );
  const broker = await createBroker({ db: input.db, ring: parseKeyRing(input.encryptionKey), config, log });
  broker.startWorker();
  log.info({ owner: broker.ctx.owner, concurrency: config.concurrency }, "broker: worker started");
  return async () => {
    await broker.close();
    log.info({}, "broker: worker stopped");
    log.flush();
  };
}
