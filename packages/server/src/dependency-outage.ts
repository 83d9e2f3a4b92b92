import type { Clock } from "@evergreen/db";
import type { FastifyBaseLogger } from "fastify";
import { OAuthError } from "./errors.ts";
import type { IssuerMetrics } from "./metrics.ts";

/** What a client is told to wait before retrying while a dependency is down (seconds). */
export const OUTAGE_RETRY_AFTER_SECONDS = 5;

/** How often one kind of outage is logged at most: one line per class, not a stack per request. */
const LOG_INTERVAL_MS = 5_000;

export type Dependency = "database" | "redis";

/**
 * Logs dependency failures at most once per (dependency, reason) per interval, with how many
 * were suppressed since the last line. A database outage under load otherwise writes a stack
 * per request and buries the one line an operator needs.
 */
export class OutageLog {
  readonly #last = new Map<string, { at: number; suppressed: number }>();
  private readonly log: FastifyBaseLogger;
  private readonly clock: Clock;
  private readonly metrics: IssuerMetrics;
  constructor(log: FastifyBaseLogger, clock: Clock, metrics: IssuerMetrics) {
    this.log = log;
    this.clock = clock;
    this.metrics = metrics;
  }

  /** Counts one failure and logs it unless this class was logged within the interval. */
  report(dependency: Dependency, reason: string, message: string): void {
    this.metrics.dependencyUnavailable.inc({ dependency, reason });
    const key = `${dependency}:${reason}`;
    const now = this.clock.now().getTime();
    const last = this.#last.get(key);
    if (last && now - last.at < LOG_INTERVAL_MS) {
      last.suppressed++;
      return;
    }
    this.#last.set(key, { at: now, suppressed: 0 });
    this.log.warn(
      { event: "dependency_unavailable", dependency, reason, suppressed: last?.suppressed ?? 0 },
      message,
    );
  }
}

/**
 * The answer to a request that failed only because a dependency is down: 503 with
 * Retry-After and RFC 6749's `temporarily_unavailable`, which OAuth clients know; resource
 * servers get the same JSON (RFC 6750 has no outage code) and no WWW-Authenticate challenge,
 * since the credentials were not at fault.
 */
export function outageError(): OAuthError {
  return new OAuthError("temporarily_unavailable", "the service is temporarily unavailable; retry later", {
    "Retry-After": String(OUTAGE_RETRY_AFTER_SECONDS),
  });
}
