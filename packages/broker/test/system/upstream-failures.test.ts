/**
 * The failure taxonomy against a real (strict) upstream: 500, a hung endpoint (timeout), a
 * garbage body, 429 with Retry-After, invalid_grant. Each connection has a grant of its own
 * whose answers the provider controls; one `serve` runs the API, the worker and the webhook
 * deliveries to a local receiver.
 *
 * Outcomes: the right state (`degraded` / `needs_reauth`), backoff (attempts spread out,
 * next_refresh_at past the last attempt; Retry-After honoured), events, signed webhooks, the
 * stored tokens untouched (consumers keep getting the old still-valid access token while
 * degraded, 409 after invalid_grant), recovery when the provider heals, zero reuse.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConnectionView, expiresAtMs, waitFor } from "./support/broker-api.ts";
import {
  type BrokerSystem,
  type SeededConnection,
  registerProvider,
  startBrokerSystem,
} from "./support/broker-system.ts";
import type { ProviderMode } from "./support/strict-provider.ts";
import { WebhookReceiver, verifySignature } from "./support/webhook-receiver.ts";

const RETRY_AFTER = 7; // s
const LIFETIME = 14; // s: the seed token's lifetime; due after half of it
const MODES = ["error_500", "hang", "garbage", "rate_limited", "invalid_grant"] as const;
type FailureMode = (typeof MODES)[number];

describe("upstream failures: state, backoff, events, webhooks, stored tokens untouched", () => {
  let sys: BrokerSystem;
  let hooks: WebhookReceiver;
  let hookSecret: string;
  let apiKey: string;
  const conn = {} as Record<FailureMode, SeededConnection>;
  const firstDegraded = {} as Record<FailureMode, { view: ConnectionView; token: any; at: number }>;
  let observedUntil = 0;

  beforeAll(async () => {
    hooks = await new WebhookReceiver().start();
    sys = await startBrokerSystem({
      provider: { latencyMs: [5, 20], accessTokenTtl: 3600, retryAfterSeconds: RETRY_AFTER },
      serveWorker: true,
      env: {
        EVERGREEN_BROKER_LEASE_MS: "3000",
        EVERGREEN_BROKER_UPSTREAM_TIMEOUT_MS: "2000",
        EVERGREEN_BROKER_POLL_MS: "250",
      },
    });
    await registerProvider(sys.api, sys.provider, "flaky", { refresh_ahead: 300, default_ttl: 3600 });
    hookSecret = (await sys.api.createWebhook({ url: hooks.url })).secret;
    apiKey = (await sys.api.createApiKey({ name: "failures", providers: ["flaky"] })).key;
    // the grants fail in their own way from the first refresh on
    for (const mode of MODES) {
      const grant = sys.provider.seedGrant(LIFETIME);
      sys.provider.setGrantMode(grant.grantId, mode as ProviderMode);
      const created = await sys.api.createConnection({
        provider: "flaky",
        access_token: grant.access_token,
        refresh_token: grant.refresh_token,
        expires_at: grant.expires_at,
        metadata: { mode },
      });
      conn[mode] = { id: created.id, grant, createdAt: Date.now() };
    }
    // watch each connection until its first failure shows, and ask for a token right then
    await Promise.all(
      MODES.map(async (mode) => {
        const c = conn[mode];
        const want = mode === "invalid_grant" ? "needs_reauth" : "degraded";
        const view = await waitFor(
          `${mode} → ${want}`,
          async () => {
            const v = await sys.api.connection(c.id);
            return v.status === want ? v : undefined;
          },
          60_000,
          100,
        );
        const res = await sys.api.token(c.id, apiKey, 2);
        firstDegraded[mode] = {
          view,
          token: { status: res.status, body: res.body, text: res.text },
          at: Date.now(),
        };
      }),
    );
    // let the backoff play out for a while
    await new Promise((r) => setTimeout(r, 14_000));
    observedUntil = Date.now();
  }, 180_000);

  afterAll(async () => {
    await sys?.close();
    await hooks?.close();
  }, 60_000);

  it("500, timeout and garbage degrade the connection and keep serving the old still-valid token", () => {
    for (const mode of ["error_500", "hang", "garbage"] as const) {
      const { view, token, at } = firstDegraded[mode];
      expect(view.status, mode).toBe("degraded");
      expect(view.failure_count, mode).toBeGreaterThanOrEqual(1);
      expect(Number(view.generation), mode).toBe(1);
      expect(view.last_error, mode).toBeTruthy();
      expect(token.status, `${mode}: ${token.text}`).toBe(200);
      expect(token.body.access_token, mode).toBe(conn[mode].grant.access_token);
      expect(token.body.generation, mode).toBe(1);
      expect(sys.provider.isLive(token.body.access_token, at, 2), mode).toBe(true);
    }
    expect(firstDegraded.hang.view.last_error).toMatch(/timeout/i);
    expect(firstDegraded.error_500.view.last_error).toMatch(/500/);
  });

  it("backs off: attempts spread out exponentially, next_refresh_at past the last attempt", async () => {
    for (const mode of ["error_500", "hang", "garbage"] as const) {
      const attempts = sys.provider
        .requestsFor(conn[mode].grant.grantId)
        .filter((r) => r.receivedAt <= observedUntil)
        .map((r) => r.receivedAt);
      // the poll runs every 250 ms: without backoff there would be dozens of attempts
      expect(attempts.length, `${mode} attempts`).toBeGreaterThanOrEqual(2);
      expect(attempts.length, `${mode} attempts`).toBeLessThanOrEqual(7);
      const gaps = attempts.slice(1).map((t, i) => t - attempts[i]!);
      // steps of 1–2 s, 2–4 s, 4–8 s… (plus the 2 s timeout for "hang"), give or take a poll
      if (gaps.length >= 3) expect(gaps[2]!, `${mode} gaps ${gaps}`).toBeGreaterThan(gaps[0]!);
      else if (gaps.length === 2) expect(gaps[1]!, `${mode} gaps ${gaps}`).toBeGreaterThan(gaps[0]! - 500);
      const v = await sys.api.connection(conn[mode].id);
      if (v.status === "degraded") {
        expect(expiresAtMs(v.next_refresh_at), mode).toBeGreaterThan(attempts.at(-1)!);
        expect(v.failure_count, mode).toBe(attempts.length);
      }
    }
  });

  it("429 honours Retry-After", async () => {
    const attempts = sys.provider.requestsFor(conn.rate_limited.grant.grantId);
    expect(firstDegraded.rate_limited.view.status).toBe("degraded");
    const first = attempts[0]!;
    expect(expiresAtMs(firstDegraded.rate_limited.view.next_refresh_at)).toBeGreaterThanOrEqual(
      first.answeredAt! + RETRY_AFTER * 1000 - 1000,
    );
    // the next call waited at least Retry-After
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts[1]!.receivedAt - first.answeredAt!).toBeGreaterThanOrEqual(RETRY_AFTER * 1000 - 500);
    expect(firstDegraded.rate_limited.token.status).toBe(200);
    expect(firstDegraded.rate_limited.token.body.access_token).toBe(conn.rate_limited.grant.access_token);
  });

  it("invalid_grant: needs_reauth at once, 409 {status, reason} to consumers, never retried", async () => {
    const { view, token } = firstDegraded.invalid_grant;
    expect(view.status).toBe("needs_reauth");
    expect(view.reason).toBe("invalid_grant");
    expect(token.status, token.text).toBe(409);
    expect(token.body).toEqual(expect.objectContaining({ status: "needs_reauth", reason: "invalid_grant" }));
    expect(token.text).not.toContain(conn.invalid_grant.grant.access_token);
    expect(sys.provider.requestsFor(conn.invalid_grant.grant.grantId)).toHaveLength(1);
    const events = (await sys.api.events(conn.invalid_grant.id)).map((e) => e.type);
    expect(events).toContain("needs_reauth");
    expect(events).toContain("refresh_failed");
  });

  it("records degraded and refresh_failed events without secrets", async () => {
    for (const mode of ["error_500", "hang", "garbage", "rate_limited"] as const) {
      const events = await sys.api.events(conn[mode].id);
      const types = events.map((e) => e.type);
      expect(types, mode).toContain("degraded");
      expect(
        types.filter((t) => t === "degraded"),
        mode,
      ).toHaveLength(1);
      expect(types.filter((t) => t === "refresh_failed").length, mode).toBeGreaterThanOrEqual(1);
      expect(JSON.stringify(events)).not.toContain(conn[mode].grant.refresh_token);
      expect(JSON.stringify(events)).not.toContain(conn[mode].grant.access_token);
    }
  });

  it("delivers signed webhooks for degraded and needs_reauth", async () => {
    const expectHook = async (type: string, id: string) =>
      waitFor(
        `${type} webhook for ${id}`,
        async () => hooks.deliveries.find((d) => d.body?.type === type && d.body?.connection_id === id),
        30_000,
      );
    for (const mode of ["error_500", "hang", "garbage", "rate_limited"] as const)
      await expectHook("degraded", conn[mode].id);
    await expectHook("needs_reauth", conn.invalid_grant.id);
    for (const d of hooks.deliveries) {
      const sig = d.headers["evergreen-signature"] as string | undefined;
      expect(verifySignature(sig, d.raw, hookSecret), `signature ${sig}`).toBe(true);
      expect(verifySignature(sig, d.raw, `${hookSecret}x`)).toBe(false);
      expect(d.body.id, "event id for idempotency").toBeTruthy();
      expect(d.raw).not.toMatch(/\b(at|rt)_[A-Za-z0-9_-]{20,}/);
    }
  });

  it("once the old token has expired while degraded: never a stale token, never a 500, no bypass of the backoff", async () => {
    const c = conn.error_500;
    expect(Date.now()).toBeGreaterThan(c.grant.expiresAtMs);
    const before = sys.provider.requestsFor(c.grant.grantId).length;
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await sys.api.token(c.id, apiKey, 1));
    for (const res of answers) {
      expect(res.status, res.text).not.toBe(500);
      if (res.status === 200) expect(expiresAtMs(res.body.expires_at)).toBeGreaterThan(Date.now());
      expect(res.text).not.toContain(c.grant.access_token);
    }
    // ten consumer calls do not turn into ten upstream calls to a failing provider
    expect(sys.provider.requestsFor(c.grant.grantId).length - before).toBeLessThanOrEqual(2);
  });

  it("recovers when the provider heals: one rotation with the stored token, recovered event and webhook, no reuse", async () => {
    for (const mode of ["error_500", "hang", "garbage", "rate_limited"] as const)
      sys.provider.setGrantMode(conn[mode].grant.grantId, undefined);
    for (const mode of ["error_500", "hang", "garbage", "rate_limited"] as const) {
      const c = conn[mode];
      // the backoff step may have grown to ~16 s
      const v = await waitFor(
        `${mode} to recover`,
        async () => {
          const x = await sys.api.connection(c.id);
          return x.status === "active" ? x : undefined;
        },
        60_000,
      );
      expect(Number(v.generation), mode).toBe(2);
      expect(v.failure_count, mode).toBe(0);
      const g = sys.provider.grant(c.grant.grantId);
      expect(g.refreshes, mode).toBe(1);
      expect(g.reuses, mode).toBe(0);
      const res = await sys.api.token(c.id, apiKey, 60);
      expect(res.status, res.text).toBe(200);
      expect(res.body.access_token).toBe(sys.provider.latestAccessToken(g.id).token);
      expect(
        (await sys.api.events(c.id)).map((e) => e.type),
        mode,
      ).toContain("recovered");
      await waitFor(
        `${mode} recovered webhook`,
        async () =>
          hooks.deliveries.find((d) => d.body?.type === "recovered" && d.body?.connection_id === c.id),
        30_000,
      );
    }
    expect(sys.provider.reuseCount).toBe(0);
  }, 120_000);
});
