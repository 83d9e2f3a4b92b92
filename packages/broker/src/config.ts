/** Everything the broker reads from the environment, resolved once at start. */
export interface BrokerConfig {
  /** How often a worker looks for due connections (it is also woken by NOTIFY), ms. */
  pollMs: number;
  /** How long a claim holds a connection, ms. */
  leaseMs: number;
  /** Upstream token-endpoint timeout, ms; strictly shorter than the lease. */
  upstreamTimeoutMs: number;
  /** The most connections one claim takes (never more than the worker has free slots). */
  batch: number;
  /** Upstream calls in flight per worker process. */
  concurrency: number;
  /** Run a worker inside `serve` (EVERGREEN_BROKER_WORKER=off turns it off). */
  workerInServe: boolean;
  providersFile?: string;
  webhookUrl?: string;
  webhookSecret?: string;
  /** How long a consumer waits for a refresh in progress elsewhere, ms. */
  consumerWaitMs: number;
}

export class BrokerConfigError extends Error {
  override name = "BrokerConfigError";
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new BrokerConfigError(`${name} must be a positive integer`);
  return n;
}

/** Reads and checks the broker's settings; refuses an upstream timeout that is not shorter than the lease. */
export function loadBrokerConfig(env: NodeJS.ProcessEnv = process.env): BrokerConfig {
  const leaseMs = positiveInt(env, "EVERGREEN_BROKER_LEASE_MS", 30_000);
  const upstreamTimeoutMs = positiveInt(env, "EVERGREEN_BROKER_UPSTREAM_TIMEOUT_MS", 10_000);
  // A worker whose lease lapsed mid-call could otherwise still be waiting on the provider while
  // another worker refreshes the same connection.
  if (upstreamTimeoutMs >= leaseMs) {
    throw new BrokerConfigError(
      "EVERGREEN_BROKER_UPSTREAM_TIMEOUT_MS must be strictly less than EVERGREEN_BROKER_LEASE_MS",
    );
  }
  return {
    pollMs: positiveInt(env, "EVERGREEN_BROKER_POLL_MS", 1000),
    leaseMs,
    upstreamTimeoutMs,
    batch: positiveInt(env, "EVERGREEN_BROKER_BATCH", 20),
    concurrency: positiveInt(env, "EVERGREEN_BROKER_CONCURRENCY", 10),
    workerInServe: env.EVERGREEN_BROKER_WORKER !== "off",
    providersFile: env.EVERGREEN_BROKER_PROVIDERS_FILE || undefined,
    webhookUrl: env.EVERGREEN_BROKER_WEBHOOK_URL || undefined,
    webhookSecret: env.EVERGREEN_BROKER_WEBHOOK_SECRET || undefined,
    consumerWaitMs: leaseMs + 1000,
  };
}
