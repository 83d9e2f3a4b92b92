/**
 * A fleet under load: 500 connections whose tokens expire within 12–32 s, a strict provider
 * (a reused refresh token revokes the grant) answering with random latency and short-lived
 * access tokens, four `evergreen broker worker` processes and one `serve`, and 50 concurrent
 * consumers asking for tokens with random `min_validity` for ~35 s. The windows are sized for a
 * 2-core machine shared with other test suites (load average ~20): with 5–15 s expiries (2.5 s
 * refresh windows) the workers there fall seconds behind.
 *
 * Outcomes: every connection refreshed before each of its tokens expired, zero reuse at the
 * provider, every consumer answer a live token of the right grant valid for its min_validity,
 * generations that count exactly the provider's rotations, nothing left `refreshing`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BrokerApi, expiresAtMs } from "./support/broker-api.ts";
import {
  type BrokerSystem,
  type SeededConnection,
  createConnections,
  registerProvider,
  startBrokerSystem,
} from "./support/broker-system.ts";
import { sleep } from "./support/processes.ts";

const CONNECTIONS = 500;
const WORKERS = 4;
const CONSUMERS = 50;
const RUN_MS = 35_000;
const TTL = 40; // provider access-token lifetime, s
const REFRESH_AHEAD = 12; // s
const MAX_MIN_VALIDITY = 20; // s, < TTL - REFRESH_AHEAD so it can always be met

interface Observation {
  connection: number;
  minValidity: number;
  sentAt: number;
  receivedAt: number;
  status: number;
  body: any;
}

describe("a fleet of 500 connections, 4 workers, 50 consumers, a strict provider", () => {
  let sys: BrokerSystem;
  let api: BrokerApi;
  let conns: SeededConnection[];
  let apiKey: string;
  const seen: Observation[] = [];
  let runEnd = 0;

  beforeAll(async () => {
    sys = await startBrokerSystem({
      provider: {
        latencyMs: [20, 250],
        accessTokenTtl: TTL,
        clientId: "fleet-client",
        clientSecret: "fleet-secret-0123456789abcdef",
      },
      workers: WORKERS,
      serveWorker: false,
      env: {
        EVERGREEN_BROKER_POLL_MS: "250",
        EVERGREEN_BROKER_LEASE_MS: "15000",
        EVERGREEN_BROKER_UPSTREAM_TIMEOUT_MS: "8000",
      },
    });
    api = sys.api;
    await registerProvider(api, sys.provider, "fleet", { refresh_ahead: REFRESH_AHEAD, default_ttl: TTL });
    apiKey = (await api.createApiKey({ name: "fleet-consumers", providers: ["fleet"] })).key;
    // expiries spread over 12–32 s from creation; the refresh window is at most half the remaining
    // lifetime, so the first are due 6 s after creation
    conns = await createConnections(
      api,
      sys.provider,
      "fleet",
      CONNECTIONS,
      () => 12 + Math.random() * 20,
      16,
    );

    // 50 consumers, each asking for random connections with a random min_validity
    const deadline = Date.now() + RUN_MS;
    await Promise.all(
      Array.from({ length: CONSUMERS }, async () => {
        while (Date.now() < deadline) {
          const i = Math.floor(Math.random() * conns.length);
          const minValidity = 1 + Math.floor(Math.random() * MAX_MIN_VALIDITY);
          const sentAt = Date.now();
          let status = 0;
          let body: any;
          try {
            const res = await api.token(conns[i]!.id, apiKey, minValidity);
            status = res.status;
            body = res.body ?? res.text;
          } catch (err) {
            body = String(err);
          }
          seen.push({ connection: i, minValidity, sentAt, receivedAt: Date.now(), status, body });
          await sleep(Math.random() * 100);
        }
      }),
    );
    runEnd = Date.now();
    // freeze the fleet: stop the workers (serve runs no worker), then inspect
    await Promise.all(sys.workers.map((w) => w.stop()));
  }, 240_000);

  afterAll(async () => {
    await sys?.close();
  }, 60_000);

  it("answered every consumer request with a live token of its own grant, valid for its min_validity", () => {
    expect(seen.length).toBeGreaterThan(CONSUMERS * 5);
    const failures = seen.filter((o) => o.status !== 200);
    expect(failures.slice(0, 5), `${failures.length} of ${seen.length} consumer calls failed`).toEqual([]);
    const bad: string[] = [];
    for (const o of seen) {
      const conn = conns[o.connection]!;
      const rec = sys.provider.accessToken(o.body.access_token);
      const exp = expiresAtMs(o.body.expires_at);
      if (!rec) bad.push(`conn ${o.connection}: a token the provider never issued`);
      else if (rec.grantId !== conn.grant.grantId) bad.push(`conn ${o.connection}: another grant's token`);
      else if (!sys.provider.isLive(o.body.access_token, o.receivedAt))
        bad.push(`conn ${o.connection}: token not live at the provider when received`);
      else if (rec.expiresAt < exp - 1000)
        bad.push(`conn ${o.connection}: expires_at ${o.body.expires_at} later than the provider's expiry`);
      if (!(exp >= o.sentAt + o.minValidity * 1000))
        bad.push(
          `conn ${o.connection}: expires_at ${o.body.expires_at} not ${o.minValidity}s after the request (${new Date(o.sentAt).toISOString()})`,
        );
      if (o.body.token_type?.toLowerCase() !== "bearer")
        bad.push(`conn ${o.connection}: token_type ${o.body.token_type}`);
    }
    expect(bad.slice(0, 10), `${bad.length} bad answers`).toEqual([]);
  });

  it("never reused a refresh token at the provider; no grant was revoked", () => {
    expect(sys.provider.reuseCount).toBe(0);
    const revoked = [...sys.provider.grants.values()].filter((g) => g.revokedAt !== undefined);
    expect(revoked.length).toBe(0);
    // and every refresh presented the grant's then-current refresh token
    const stale = sys.provider.requests.filter((r) => r.outcome !== "rotated");
    expect(stale.map((r) => `${r.outcome} ${r.status}`).slice(0, 5)).toEqual([]);
  });

  it("refreshed every connection before each of its access tokens expired, and kept them all alive", () => {
    const late: string[] = [];
    for (const [n, c] of conns.entries()) {
      const g = sys.provider.grant(c.grant.grantId);
      if (g.refreshes < 1) late.push(`conn ${n}: never refreshed`);
      for (let k = 0; k < g.refreshedAt.length; k++) {
        const previous = sys.provider.accessToken(g.accessTokens[k]!)!;
        if (g.refreshedAt[k]! >= previous.expiresAt) {
          // where the time went: creation, the call's arrival at the provider, its answer
          const req = sys.provider.requestsFor(g.id).filter((r) => r.outcome === "rotated")[k]!;
          const rel = (t: number | undefined) =>
            t === undefined ? "?" : `${((t - previous.expiresAt) / 1000).toFixed(2)}s`;
          late.push(
            `conn ${n}: refresh ${k + 1} late; relative to expiry: created ${rel(c.createdAt)}, call received ${rel(req.receivedAt)}, answered ${rel(req.answeredAt)}`,
          );
        }
      }
      // still alive when the run ended
      if (sys.provider.latestAccessToken(g.id).expiresAt <= runEnd)
        late.push(`conn ${n}: expired at the end`);
    }
    // the figures, for the record
    const first = conns
      .map((c) => {
        const g = sys.provider.grant(c.grant.grantId);
        return g.refreshedAt[0] === undefined ? Number.NaN : (c.grant.expiresAtMs - g.refreshedAt[0]) / 1000;
      })
      .sort((a, b) => a - b);
    const at = (p: number) => first[Math.floor((first.length - 1) * p)]!.toFixed(2);
    console.log(
      `fleet: ${sys.provider.refreshCount} rotations, ${seen.length} consumer reads; first refresh s before expiry: min ${at(0)} p5 ${at(0.05)} p50 ${at(0.5)} max ${at(1)}`,
    );
    expect(late.slice(0, 10), `${late.length} late`).toEqual([]);
  });

  it("left every connection active, none refreshing, with a generation counting the provider's rotations", async () => {
    const views = await api.connections(conns.map((c) => c.id));
    const byStatus: Record<string, number> = {};
    for (const v of views) byStatus[v.status] = (byStatus[v.status] ?? 0) + 1;
    expect(byStatus).toEqual({ active: CONNECTIONS });
    const mismatch: string[] = [];
    for (const [n, v] of views.entries()) {
      const g = sys.provider.grant(conns[n]!.grant.grantId);
      if (Number(v.generation) !== g.refreshes + 1)
        mismatch.push(`conn ${n}: generation ${v.generation}, provider rotations ${g.refreshes}`);
      if (v.failure_count !== 0) mismatch.push(`conn ${n}: failure_count ${v.failure_count}`);
      const latest = sys.provider.latestAccessToken(g.id);
      if (Math.abs(expiresAtMs(v.expires_at) - latest.expiresAt) > 2000)
        mismatch.push(
          `conn ${n}: expires_at ${v.expires_at} vs provider ${new Date(latest.expiresAt).toISOString()}`,
        );
      if (JSON.stringify(v).includes("at_") || JSON.stringify(v).includes("rt_"))
        mismatch.push(`conn ${n}: admin view shows a token`);
    }
    expect(mismatch.slice(0, 10), `${mismatch.length} mismatches`).toEqual([]);
  });

  it("recorded one refreshed event per rotation", async () => {
    const sample = conns.slice(0, 25);
    for (const c of sample) {
      const events = await api.events(c.id);
      const refreshed = events.filter((e) => e.type === "refreshed");
      expect(refreshed.length).toBe(sys.provider.grant(c.grant.grantId).refreshes);
      expect(JSON.stringify(events)).not.toMatch(/\b(at|rt)_[A-Za-z0-9_-]{20,}/);
    }
  });
});
