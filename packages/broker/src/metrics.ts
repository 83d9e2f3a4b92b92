import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The broker's Prometheus metrics, on the registry of the server it runs in (or its own). */
export interface BrokerMetrics {
  registry: Registry;
  refreshes: Counter<"provider" | "outcome">;
  secondsBeforeExpiry: Histogram<"provider">;
  dueBacklog: Gauge;
  leaseSteals: Counter;
  webhookDeliveries: Counter<"outcome">;
  tokenReads: Counter<"outcome">;
}

export function createBrokerMetrics(registry: Registry): BrokerMetrics {
  return {
    registry,
    refreshes: new Counter({
      name: "evergreen_broker_refreshes_total",
      help: "Upstream refreshes by provider and outcome (refreshed, degraded, rate_limited, needs_reauth, rotation_lost, fenced)",
      labelNames: ["provider", "outcome"],
      registers: [registry],
    }),
    secondsBeforeExpiry: new Histogram({
      name: "evergreen_broker_refresh_seconds_before_expiry",
      help: "How long before the old access token expired a refresh succeeded (negative: after)",
      labelNames: ["provider"],
      buckets: [-60, -1, 0, 1, 5, 15, 30, 60, 120, 300, 600, 1800],
      registers: [registry],
    }),
    dueBacklog: new Gauge({
      name: "evergreen_broker_due_backlog",
      help: "Connections due for refresh and not leased, at the last worker round",
      registers: [registry],
    }),
    leaseSteals: new Counter({
      name: "evergreen_broker_lease_steals_total",
      help: "Claims that took over a lease whose holder let it lapse (crashed or stalled worker)",
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: "evergreen_broker_webhook_deliveries_total",
      help: "Webhook delivery attempts by outcome (delivered, retry, failed)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
    tokenReads: new Counter({
      name: "evergreen_broker_token_reads_total",
      help: "Consumer token reads by outcome (served, refreshed, needs_reauth, unavailable, denied)",
      labelNames: ["outcome"],
      registers: [registry],
    }),
  };
}
