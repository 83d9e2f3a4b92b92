import type { Clock, Database } from "@evergreen/db";
import type { KeyRing } from "@evergreen/server";
import type { BrokerConfig } from "./config.ts";
import type { BrokerMetrics } from "./metrics.ts";
import type { Notifier } from "./notifier.ts";
import type { ProviderLimits } from "./refresh/limits.ts";

/** The subset of a pino logger the broker writes to; never given a token or secret. */
export interface BrokerLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

/** What every broker module needs, built once per process and passed explicitly. */
export interface BrokerContext {
  db: Database;
  clock: Clock;
  ring: KeyRing;
  config: BrokerConfig;
  metrics: BrokerMetrics;
  log: BrokerLog;
  notifier: Notifier;
  /** Per-provider limits on upstream calls in flight from this process. */
  limits: ProviderLimits;
  /** Names this process in lease_owner (host:pid:random). */
  owner: string;
  /** Random source for jitter; tests may pin it. */
  random: () => number;
  /** The HTTP client for upstream calls and webhooks (tests may wrap it). */
  fetch: typeof fetch;
}
