import { writeFileSync } from "node:fs";
import { type IncomingMessage, createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "@evergreen/db";
import { parseKeyRing } from "@evergreen/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES } from "../../server/test/harness.ts";
import { loadBrokerConfig } from "../src/config.ts";
import { openString } from "../src/crypto/token-seal.ts";
import { loadProvidersFile } from "../src/providers/file.ts";
import { rotateBrokerKeys } from "../src/rotate-keys.ts";
import { dispatchWebhooks } from "../src/webhooks/dispatcher.ts";
import { verifyWebhook } from "../src/webhooks/signature.ts";
import { BrokerWorker } from "../src/worker/worker.ts";
import { type TestBroker, startTestBroker } from "./support/broker-harness.ts";
import { type FakeProvider, startFakeProvider } from "./support/fake-provider.ts";

interface Received {
  headers: IncomingMessage["headers"];
  body: string;
}

async function startReceiver(statuses: number[]) {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => {
      body += c;
    });
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.writeHead(statuses.shift() ?? 200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/hook`, received, close: () => new Promise((r) => server.close(r)) };
}

describe.each(DATABASES)("broker events, webhooks and keys on %s", (kind) => {
  let tb: TestBroker;
  let fake: FakeProvider;
  const clock = new ManualClock(Date.parse("2032-05-01T00:00:00Z"));
  let n = 0;

  beforeAll(async () => {
    fake = await startFakeProvider();
    tb = await startTestBroker({ database: kind, clock, random: () => 0.5 });
  });
  afterAll(async () => {
    await tb?.close();
    await fake?.close();
  });

  async function setup(expiresIn = 120) {
    const p = `e${++n}-${kind}`;
    expect(
      (
        await tb.admin("POST", "/admin/providers", {
          name: p,
          token_url: fake.url,
          client_id: "cid",
          client_secret: "s3cret-provider",
          auth_style: "body",
          body_format: "form",
          refresh_ahead: 60,
        })
      ).status,
    ).toBe(201);
    const t = fake.issue();
    const c = await tb.admin("POST", "/admin/connections", { provider: p, ...t, expires_in: expiresIn });
    return { provider: p, id: c.body.id as string, ...t };
  }

  it("signs webhooks, retries a failed delivery with the same event id, and logs deliveries", async () => {
    const receiver = await startReceiver([500]);
    try {
      const hook = await tb.admin("POST", "/admin/webhooks", {
        url: receiver.url,
        events: ["needs_reauth", "degraded"],
      });
      expect(hook.status).toBe(201);
      expect(hook.body.secret).toMatch(/^egw_/);
      const raw = await tb.db.db.query("SELECT secret FROM broker_webhooks WHERE id = $1", [hook.body.id]);
      expect((raw.rows[0] as { secret: Buffer }).secret.toString("latin1")).not.toContain(hook.body.secret);

      const c = await setup();
      clock.advance(60);
      fake.script({ kind: "status", status: 400, body: { error: "invalid_grant" } });
      const worker = new BrokerWorker(tb.broker.ctx);
      while ((await worker.round()) > 0);
      expect(await dispatchWebhooks(tb.broker.ctx)).toBe(1);
      expect(receiver.received).toHaveLength(1);
      let log = (await tb.admin("GET", `/admin/webhooks/${hook.body.id}/deliveries`)).body;
      expect(log[0]).toMatchObject({
        status: "pending",
        attempts: 1,
        last_status: 500,
        event_type: "needs_reauth",
      });
      // Not due again until its backoff passes.
      expect(await dispatchWebhooks(tb.broker.ctx)).toBe(0);
      clock.advance(5);
      expect(await dispatchWebhooks(tb.broker.ctx)).toBe(1);
      expect(receiver.received).toHaveLength(2);
      log = (await tb.admin("GET", `/admin/webhooks/${hook.body.id}/deliveries`)).body;
      expect(log[0]).toMatchObject({ status: "delivered", attempts: 2, last_status: 200 });

      const [first, second] = receiver.received as [Received, Received];
      expect(first.headers["evergreen-event-id"]).toBe(second.headers["evergreen-event-id"]);
      const sig = second.headers["evergreen-signature"] as string;
      expect(verifyWebhook(hook.body.secret, second.body, sig)).toBe(true);
      expect(verifyWebhook(hook.body.secret, `${second.body} `, sig)).toBe(false);
      expect(JSON.parse(second.body)).toMatchObject({
        type: "needs_reauth",
        connection_id: c.id,
        status: "needs_reauth",
        reason: "invalid_grant",
        id: second.headers["evergreen-event-id"],
      });
      expect(second.body).not.toContain(c.access_token);
      expect(second.body).not.toContain(c.refresh_token);
      const metric = await tb.broker.ctx.metrics.registry.getSingleMetricAsString(
        "evergreen_broker_webhook_deliveries_total",
      );
      expect(metric).toContain('outcome="delivered"} 1');
      expect(metric).toContain('outcome="retry"} 1');
      await tb.admin("DELETE", `/admin/webhooks/${hook.body.id}`);
    } finally {
      await receiver.close();
    }
  });

  it("queues a webhook for a successful refresh in the same statement that writes it", async () => {
    const receiver = await startReceiver([]);
    try {
      const hook = await tb.admin("POST", "/admin/webhooks", { url: receiver.url, events: ["refreshed"] });
      const c = await setup(3600);
      const refreshed = await tb.admin("POST", `/admin/connections/${c.id}/refresh`);
      expect(refreshed.body).toMatchObject({ outcome: "refreshed", generation: 2 });
      expect(await dispatchWebhooks(tb.broker.ctx)).toBe(1);
      const [got] = receiver.received as [Received];
      expect(verifyWebhook(hook.body.secret, got.body, got.headers["evergreen-signature"] as string)).toBe(
        true,
      );
      expect(JSON.parse(got.body)).toMatchObject({
        type: "refreshed",
        connection_id: c.id,
        provider: c.provider,
        generation: 2,
        status: "active",
        upstream_status: 200,
      });
      const events = (await tb.admin("GET", `/admin/connections/${c.id}/events`)).body;
      expect(events[0]).toMatchObject({
        type: "refreshed",
        generation: 2,
        upstream_status: 200,
        error: null,
      });
      expect(events[0].event_id).toBe(got.headers["evergreen-event-id"]);
      await tb.admin("DELETE", `/admin/webhooks/${hook.body.id}`);
    } finally {
      await receiver.close();
    }
  });

  it("re-seals every token and secret under the newest key (keys rotate-broker)", async () => {
    const c = await setup(3600);
    const dev = parseKeyRing(undefined).current.key.toString("base64");
    const fresh = Buffer.alloc(32, 7).toString("base64");
    const rotated = parseKeyRing(`k2:${fresh},dev:${dev}`);
    const counts = await rotateBrokerKeys(tb.db.db, rotated, 2);
    expect(counts.connections).toBeGreaterThanOrEqual(1);
    expect(counts.providers).toBeGreaterThanOrEqual(1);
    const { rows } = await tb.db.db.query<{
      id: string;
      key_id: string;
      access_token: Buffer;
      refresh_token: Buffer;
    }>("SELECT id, key_id, access_token, refresh_token FROM broker_connections");
    expect(rows.every((r) => r.key_id === "k2")).toBe(true);
    const onlyNew = parseKeyRing(`k2:${fresh}`);
    const mine = rows.find((r) => r.id === c.id)!;
    expect(openString(onlyNew, c.id, "access_token", mine.access_token)).toBe(c.access_token);
    expect(openString(onlyNew, c.id, "refresh_token", mine.refresh_token)).toBe(c.refresh_token);
    expect(await rotateBrokerKeys(tb.db.db, rotated, 2)).toEqual({
      connections: 0,
      providers: 0,
      webhooks: 0,
    });
    // A sealed token copied to another row does not open there (the row id is bound in).
    expect(() => openString(onlyNew, "another-row", "access_token", mine.access_token)).toThrow();
    // Put the rest of the file's rows back under the development key for the other tests.
    await rotateBrokerKeys(tb.db.db, parseKeyRing(`dev:${dev},k2:${fresh}`));
  });

  it("loads providers from a JSON file (secret from the environment) and refuses a bad one", async () => {
    const file = join(tmpdir(), `providers-${kind}-${Date.now()}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        providers: [
          { name: `file-${kind}`, template: "xero", client_id: "x", client_secret_env: "XERO_SECRET" },
          { name: `file2-${kind}`, token_url: fake.url, response: { access_token: "authorization.token" } },
        ],
      }),
    );
    const ctx = tb.broker.ctx;
    const names = await loadProvidersFile(ctx.db, ctx.ring, clock, file, { XERO_SECRET: "from-env" });
    expect(names).toEqual([`file-${kind}`, `file2-${kind}`]);
    const p = await tb.admin("GET", `/admin/providers/file-${kind}`);
    expect(p.body).toMatchObject({ auth_style: "basic", has_client_secret: true });
    // Loading again replaces (idempotent at every start).
    expect(await loadProvidersFile(ctx.db, ctx.ring, clock, file, { XERO_SECRET: "from-env" })).toHaveLength(
      2,
    );
    writeFileSync(file, JSON.stringify([{ name: "bad name!", token_url: fake.url }]));
    await expect(loadProvidersFile(ctx.db, ctx.ring, clock, file, {})).rejects.toThrow(/provider 1/);
    writeFileSync(file, "{not json");
    await expect(loadProvidersFile(ctx.db, ctx.ring, clock, file, {})).rejects.toThrow(/JSON/);
  });
});

describe("broker settings and the worker loop", () => {
  it("refuses an upstream timeout that is not shorter than the lease", () => {
    expect(() =>
      loadBrokerConfig({ EVERGREEN_BROKER_LEASE_MS: "5000", EVERGREEN_BROKER_UPSTREAM_TIMEOUT_MS: "5000" }),
    ).toThrow(/strictly less/);
    expect(() => loadBrokerConfig({ EVERGREEN_BROKER_BATCH: "0" })).toThrow(/positive/);
    expect(loadBrokerConfig({})).toMatchObject({
      pollMs: 1000,
      leaseMs: 30000,
      upstreamTimeoutMs: 10000,
      batch: 20,
    });
  });

  it("wakes on NOTIFY: a connection created due is refreshed long before the next poll", async () => {
    const fake = await startFakeProvider();
    const tb = await startTestBroker({ env: { EVERGREEN_BROKER_POLL_MS: "600000" } });
    try {
      await tb.admin("POST", "/admin/providers", { name: "wake", token_url: fake.url });
      tb.broker.startWorker();
      // Let the first (empty) round finish so the worker is asleep on its 10-minute poll.
      await new Promise((r) => setTimeout(r, 500));
      // Already expired: due at once, so only the notification can explain a prompt refresh.
      const c = await tb.admin("POST", "/admin/connections", {
        provider: "wake",
        ...fake.issue(),
        expires_in: 0,
      });
      let generation = 1;
      const deadline = Date.now() + 20_000;
      while (generation === 1 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        generation = (await tb.admin("GET", `/admin/connections/${c.body.id}`)).body.generation;
      }
      expect(generation).toBe(2);
    } finally {
      await tb.close();
      await fake.close();
    }
  });
});
