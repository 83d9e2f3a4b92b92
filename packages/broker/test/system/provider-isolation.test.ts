/**
 * One provider that hangs must not stall the refreshes of every other provider's connections.
 * A worker (defaults: batch 20, 10 calls in flight) serves a "stuck" provider whose token
 * endpoint never answers (upstream timeout 20 s, limited by the operator to 2 calls at a time
 * with max_concurrency) and a healthy provider whose 30 connections come due a few seconds
 * later: every healthy connection must still be refreshed before its token expires.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "./support/broker-api.ts";
import {
  type BrokerSystem,
  type SeededConnection,
  createConnections,
  registerProvider,
  startBrokerSystem,
} from "./support/broker-system.ts";
import { type StrictProvider, startStrictProvider } from "./support/strict-provider.ts";

describe("a hung provider does not stall other providers' refreshes", () => {
  let sys: BrokerSystem;
  let stuck: StrictProvider;
  let healthy: SeededConnection[];
  let hung: SeededConnection[];

  beforeAll(async () => {
    sys = await startBrokerSystem({
      provider: { latencyMs: [10, 50], accessTokenTtl: 3600 },
      workers: 1,
      env: {
        EVERGREEN_BROKER_LEASE_MS: "25000",
        EVERGREEN_BROKER_UPSTREAM_TIMEOUT_MS: "20000",
        EVERGREEN_BROKER_POLL_MS: "250",
      },
    });
    stuck = await startStrictProvider({ accessTokenTtl: 3600 });
    stuck.setMode("hang");
    await registerProvider(sys.api, stuck, "stuck", { refresh_ahead: 60, max_concurrency: 2 });
    await registerProvider(sys.api, sys.provider, "healthy", { refresh_ahead: 60 });
    // the stuck provider's connections come due first (after ~2 s)…
    hung = await createConnections(sys.api, stuck, "stuck", 20, () => 4);
    // …the healthy ones 6–12 s after creation, each with 6–12 s to spare
    healthy = await createConnections(sys.api, sys.provider, "healthy", 30, () => 12 + Math.random() * 12);
    await waitFor(
      "every healthy connection refreshed",
      async () => healthy.every((c) => sys.provider.grant(c.grant.grantId).refreshes >= 1),
      60_000,
      500,
    ).catch(() => undefined);
  }, 180_000);

  afterAll(async () => {
    await sys?.close();
    await stuck?.close();
  }, 60_000);

  it("the stuck provider's calls did hang", async () => {
    expect(stuck.requests.length).toBeGreaterThanOrEqual(1);
    expect(stuck.refreshCount).toBe(0);
    const v = await sys.api.connection(hung[0]!.id);
    expect(["refreshing", "degraded"]).toContain(v.status);
  });

  it("refreshed every healthy connection before its token expired", () => {
    const late: string[] = [];
    for (const [n, c] of healthy.entries()) {
      const at = sys.provider.grant(c.grant.grantId).refreshedAt[0];
      if (at === undefined) late.push(`healthy ${n}: never refreshed`);
      else if (at >= c.grant.expiresAtMs)
        late.push(`healthy ${n}: ${((at - c.grant.expiresAtMs) / 1000).toFixed(1)} s late`);
    }
    expect(late.slice(0, 10), `${late.length} of ${healthy.length} late`).toEqual([]);
    expect(sys.provider.reuseCount).toBe(0);
  });
});
