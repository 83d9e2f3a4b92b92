import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Prometheus metrics of one server, on its own registry (several servers can share a process in tests). */
export interface IssuerMetrics {
  registry: Registry;
  tokenRequests: Counter<"grant_type" | "status">;
  tokenDuration: Histogram<"grant_type">;
  refreshes: Counter<"outcome">;
  logins: Counter<"outcome">;
  reuseDetected: Counter;
  dependencyUnavailable: Counter<"dependency" | "reason">;
  rateLimitStoreFallback: Counter;
}

export function createMetrics(withDefaults = false): IssuerMetrics {
  const registry = new Registry();
  if (withDefaults) collectDefaultMetrics({ register: registry });
  return {
    registry,
    tokenRequests: new Counter({
      name: "evergreen_token_requests_total",
      help: "Token endpoint requests by grant type and HTTP status",
      labelNames: ["grant_type", "status"],
      registers: [registry],
    }),
    tokenDuration: new Histogram({
      name: "evergreen_token_request_duration_seconds",
      help: "Token endpoint latency",
      labelNames: ["grant_type"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    refreshes: new Counter({
      name: "evergreen_refreshes_total",
      help: "refresh_token grants by outcome (rotated, slid, replayed, unknown, expired, revoked, reused, wrong_client)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    logins: new Counter({
      name: "evergreen_password_logins_total",
      help: "Password logins by outcome",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    reuseDetected: new Counter({
      name: "evergreen_refresh_token_reuse_detected_total",
      help: "Families revoked because a rotated refresh token was presented again",
      registers: [registry],
    }),
    dependencyUnavailable: new Counter({
      name: "evergreen_dependency_unavailable_total",
      help: "Requests answered 503 because a dependency (database) could not be reached, by reason",
      labelNames: ["dependency", "reason"],
      registers: [registry],
    }),
    rateLimitStoreFallback: new Counter({
      name: "evergreen_rate_limit_store_fallback_total",
      help: "Rate-limit operations answered by the in-memory store because Redis was unreachable",
      registers: [registry],
    }),
  };
}
