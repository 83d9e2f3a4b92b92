import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES } from "../../server/test/harness.ts";
import type { BrokerContext } from "../src/context.ts";
import { type ClaimedRow, type ConnectionRow, connectionQueries } from "../src/queries.ts";
import { refreshClaimed } from "../src/refresh/attempt.ts";
import { BrokerWorker } from "../src/worker/worker.ts";
import { type TestBroker, startTestBroker } from "./support/broker-harness.ts";
import { type FakeProvider, startFakeProvider } from "./support/fake-provider.ts";

describe.each(DATABASES)("broker worker on %s", (kind) => {
  let tb: TestBroker;
  let fake: FakeProvider;
  let ctx: BrokerContext;
  const clock = new ManualClock(Date.parse("2031-03-01T00:00:00Z"));
  let key: string;
  let n = 0;

  beforeAll(async () => {
    fake = await startFakeProvider();
    fake.nowMs = () => clock.now().getTime();
    tb = await startTestBroker({ database: kind, clock, random: () => 0.5 });
    ctx = tb.broker.ctx;
    key = (await tb.admin("POST", "/admin/api-keys", { name: "svc" })).body.key;
  });
  afterAll(async () => {
    await tb?.close();
    await fake?.close();
  });

  /** A provider of its own (refresh_ahead 60 s) and one connection expiring in `expiresIn`. */
  async function setup(expiresIn = 600, extra: Record<string, unknown> = {}) {
    const p = `w${++n}-${kind}`;
    const res = await tb.admin("POST", "/admin/providers", {
      name: p,
      token_url: fake.url,
      client_id: "cid",
      auth_style: "body",
      body_format: "form",
      refresh_ahead: 60,
      ...extra,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const t = fake.issue();
    const c = await tb.admin("POST", "/admin/connections", { provider: p, ...t, expires_in: expiresIn });
    expect(c.status).toBe(201);
    return { provider: p, id: c.body.id as string, ...t };
  }

  async function row(id: string): Promise<ConnectionRow> {
    const { rows } = await tb.db.db.query<ConnectionRow>(connectionQueries.byId({ id }));
    return rows[0]!;
  }

  async function events(
    id: string,
  ): Promise<{ type: string; upstream_status: number | null; error: string | null }[]> {
    return (await tb.admin("GET", `/admin/connections/${id}/events`)).body;
  }

  /** Claims only `id` as some other worker would (the claim the worker makes, for one row). */
  async function claim(id: string, owner = "other-worker"): Promise<ClaimedRow> {
    const now = clock.now();
    const { rows } = await tb.db.db.query<ClaimedRow>(
      connectionQueries.claimOne({
        id,
        now,
        owner,
        lease_until: new Date(now.getTime() + ctx.config.leaseMs),
        need_before: new Date("9999-12-31T00:00:00Z"),
      }),
    );
    expect(rows[0]).toBeDefined();
    return rows[0]!;
  }

  /** Runs worker rounds until nothing is due (other tests' connections may be due too). */
  async function drain(worker = new BrokerWorker(ctx)): Promise<void> {
    while ((await worker.round()) > 0);
  }

  it("refreshes a connection when it becomes due, ahead of expiry with jitter, and not before", async () => {
    const c = await setup(600);
    const created = await row(c.id);
    // 600 s lifetime, refresh_ahead 60 s, jitter up to 10% of the window (random pinned at 0.5: 3 s).
    expect(created.expires_at.getTime() - created.next_refresh_at.getTime()).toBe(63_000);
    await drain();
    expect((await row(c.id)).generation).toBe(1);
    clock.advance(540);
    await drain();
    const after = await row(c.id);
    expect(after).toMatchObject({
      status: "active",
      generation: 2,
      failure_count: 0,
      lease_token: null,
      intent_at: null,
    });
    expect(after.expires_at.getTime()).toBe(clock.now().getTime() + 3600_000);
    const token = await tb.token(c.id, key, 60);
    expect(token.body.access_token).not.toBe(c.access_token);
    expect(token.body.generation).toBe(2);
    const metrics = await ctx.metrics.registry.getSingleMetricAsString("evergreen_broker_refreshes_total");
    expect(metrics).toContain(`provider="${c.provider}",outcome="refreshed"} 1`);
  });

  it("refuses a late write from a worker whose lease was taken over (the fence)", async () => {
    const c = await setup(30);
    const stale = await claim(c.id, "paused-worker");
    clock.advance(ctx.config.leaseMs / 1000 + 1);
    const steals = (await ctx.metrics.leaseSteals.get()).values[0]?.value ?? 0;
    // The intent was never committed by the paused worker, so the thief's attempt is a normal one.
    await drain();
    const after = await row(c.id);
    expect(after.generation).toBe(2);
    expect((await ctx.metrics.leaseSteals.get()).values[0]?.value).toBe(steals + 1);
    const late = await refreshClaimed(ctx, stale);
    expect(late).toEqual({ outcome: "fenced" });
    const final = await row(c.id);
    expect(final.generation).toBe(2);
    expect(final.access_token.equals(after.access_token)).toBe(true);
    expect(fake.reuse).toBe(0);
  });

  it("refuses the late write of a worker stalled mid-call, and says the rotation was lost", async () => {
    const c = await setup(30);
    const stalled = await claim(c.id, "stalled-worker");
    const reuse = fake.reuse;
    // The stalled worker's request reaches the provider (which rotates); before its answer is
    // written, its lease lapses and another worker takes over.
    const thief = new BrokerWorker(ctx);
    const stalledCtx: BrokerContext = {
      ...ctx,
      fetch: async (input, init) => {
        const res = await fetch(input, init);
        clock.advance(ctx.config.leaseMs / 1000 + 1);
        await drain(thief);
        return res;
      },
    };
    const late = await refreshClaimed(stalledCtx, stalled);
    expect(late).toEqual({ outcome: "fenced" });
    const after = await row(c.id);
    // The thief found the unresolved intent, retried once with the stored token, and the provider
    // (strict) refused it: explicit needs_reauth, never a silent loss.
    expect(after).toMatchObject({ status: "needs_reauth", reason: "rotation_lost", generation: 1 });
    expect(fake.reuse).toBe(reuse + 1);
    expect((await events(c.id)).map((e) => e.type)).toEqual(["needs_reauth", "refresh_failed"]);
    const consumer = await tb.token(c.id, key, 0);
    expect(consumer.status).toBe(409);
    expect(consumer.body).toEqual({ status: "needs_reauth", reason: "rotation_lost" });
  });

  it("recovers an intent left by a dead worker with one retry of the stored refresh token", async () => {
    const c = await setup(30);
    const dead = await claim(c.id, "dead-worker");
    const at = clock.now();
    await tb.db.db.query(
      connectionQueries.markIntent({
        id: c.id,
        lease_token: dead.lease_token!,
        generation: dead.generation,
        now: at,
        lease_until: new Date(at.getTime() + ctx.config.leaseMs),
      }),
    );
    // It died before its request left: the retry succeeds and nothing is left refreshing.
    clock.advance(ctx.config.leaseMs / 1000 + 1);
    expect((await row(c.id)).status).toBe("refreshing");
    await drain();
    expect(await row(c.id)).toMatchObject({
      status: "active",
      generation: 2,
      intent_at: null,
      lease_token: null,
    });
  });

  it("degrades on 500 with capped backoff while the valid token keeps being served; recovers after", async () => {
    const c = await setup(120);
    clock.advance(60);
    fake.script({ kind: "status", status: 500, body: { error: "server_error" } });
    await drain();
    const failed = await row(c.id);
    expect(failed).toMatchObject({
      status: "degraded",
      reason: "upstream_unavailable",
      failure_count: 1,
      generation: 1,
    });
    expect(failed.last_error).toBe("upstream 500 server_error");
    // First backoff step is 2 s, jittered between half and all of it (random pinned at 0.5).
    expect(failed.next_refresh_at.getTime() - clock.now().getTime()).toBe(1500);
    expect(failed.intent_at).toBeNull();
    const served = await tb.token(c.id, key, 30);
    expect(served.status).toBe(200);
    expect(served.body.access_token).toBe(c.access_token);
    // The current token cannot cover 100 s while backing off: 503 with Retry-After, no upstream call.
    const calls = fake.calls;
    const short = await tb.token(c.id, key, 100);
    expect(short.status).toBe(503);
    expect(short.headers.get("retry-after")).toBe("2");
    expect(short.body).toEqual({ status: "degraded", reason: "upstream_unavailable" });
    expect(fake.calls).toBe(calls);

    fake.script({ kind: "status", status: 502 });
    clock.advance(2);
    await drain();
    const twice = await row(c.id);
    expect(twice.failure_count).toBe(2);
    expect(twice.next_refresh_at.getTime() - clock.now().getTime()).toBe(3000);

    clock.advance(4);
    await drain();
    expect(await row(c.id)).toMatchObject({
      status: "active",
      failure_count: 0,
      generation: 2,
      last_error: null,
    });
    expect((await events(c.id)).map((e) => e.type)).toEqual([
      "recovered",
      "refreshed",
      "refresh_failed",
      "degraded",
      "refresh_failed",
    ]);
  });

  it("honours Retry-After on 429, and degrades on garbage and timeouts keeping the intent", async () => {
    const c = await setup(120);
    clock.advance(60);
    fake.script({ kind: "status", status: 429, headers: { "retry-after": "120" } });
    await drain();
    const limited = await row(c.id);
    expect(limited).toMatchObject({ status: "degraded", reason: "rate_limited" });
    expect(limited.next_refresh_at.getTime() - clock.now().getTime()).toBe(120_000);

    clock.advance(120);
    fake.script({ kind: "garbage" });
    await drain();
    const garbage = await row(c.id);
    expect(garbage).toMatchObject({ status: "degraded", failure_count: 2, generation: 1 });
    expect(garbage.last_error).toMatch(/^unparseable response \(200\)/);
    // A 200 we could not read may have rotated the token: the next attempt is a recovery.
    expect(garbage.intent_at).not.toBeNull();
    const before = await row(c.id);
    expect(before.access_token.equals(garbage.access_token)).toBe(true);

    clock.advance(10);
    fake.script({ kind: "hang" });
    await drain();
    const hung = await row(c.id);
    expect(hung.last_error).toBe("timeout after 2000 ms");
    expect(hung).toMatchObject({ status: "degraded", failure_count: 3 });
    expect(hung.intent_at).not.toBeNull();

    clock.advance(20);
    await drain();
    expect(await row(c.id)).toMatchObject({
      status: "active",
      failure_count: 0,
      generation: 2,
      intent_at: null,
    });
  });

  it("leaves a saturated provider's connections unclaimed, and hands back a claim beyond its limit", async () => {
    const c1 = await setup(120, { max_concurrency: 1 });
    const t2 = fake.issue();
    const c2 = (
      await tb.admin("POST", "/admin/connections", { provider: c1.provider, ...t2, expires_in: 120 })
    ).body.id as string;
    const reuseBefore = fake.reuse;
    clock.advance(60);
    // A call of this provider is in flight elsewhere in this process: its one slot is taken.
    ctx.limits.configure(c1.provider, 1);
    const held = ctx.limits.tryAcquire(c1.provider)!;
    expect(ctx.limits.tryAcquire(c1.provider)).toBeNull();
    const worker = new BrokerWorker(ctx);
    await worker.round();
    for (const id of [c1.id, c2]) {
      expect(await row(id)).toMatchObject({ generation: 1, lease_token: null, intent_at: null });
    }
    held();
    // Both are claimed together; the one the provider has no slot for goes straight back.
    await worker.round();
    const after = [await row(c1.id), await row(c2)].sort((a, b) => b.generation - a.generation);
    expect(after[0]).toMatchObject({ generation: 2, status: "active", lease_token: null });
    expect(after[1]).toMatchObject({
      generation: 1,
      status: "refreshing",
      lease_token: null,
      intent_at: null,
    });
    await drain(worker);
    expect(await row(c2)).toMatchObject({ generation: 2, status: "active", lease_token: null });
    expect(fake.reuse).toBe(reuseBefore);
  });

  it("needs re-authorisation at once on invalid_client, with events and no further attempts", async () => {
    const c = await setup(120);
    clock.advance(60);
    fake.script({ kind: "status", status: 401, body: { error: "invalid_client" } });
    await drain();
    expect(await row(c.id)).toMatchObject({
      status: "needs_reauth",
      reason: "invalid_client",
      failure_count: 1,
    });
    clock.advance(3600);
    await drain();
    expect(await row(c.id)).toMatchObject({ status: "needs_reauth", failure_count: 1 });
    expect((await events(c.id)).map((e) => e.type)).toEqual(["needs_reauth", "refresh_failed"]);
  });

  it("uses the JWT exp, or the provider's default TTL, when the provider gives no expiry", async () => {
    const c = await setup(30, { default_ttl: 900 });
    fake.script({ kind: "no_expiry" });
    const res = await tb.admin("POST", `/admin/connections/${c.id}/refresh`);
    expect(res.body.outcome).toBe("refreshed");
    expect(new Date(res.body.expires_at).getTime()).toBe(clock.now().getTime() + 900_000);
  });

  it("never writes a token to a log line", async () => {
    const logs = tb.logs();
    expect(logs.length).toBeGreaterThan(0);
    for (const t of fake.issued) expect(logs).not.toContain(t);
    expect(logs).not.toContain(key);
  });
});
