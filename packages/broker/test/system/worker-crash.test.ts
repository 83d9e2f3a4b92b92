/**
 * Workers that die or freeze in the middle of refreshes, against a strict provider (a reused
 * refresh token revokes the grant). Leases are short (3 s, upstream timeout 2 s) so they lapse
 * within the test.
 *
 * - SIGKILL with calls in flight: another worker takes over once the leases lapse; a connection
 *   is either still usable (its stored refresh token is the provider's current one: it refreshes
 *   again with no reuse) or, when the killed worker's rotation was lost with it, explicitly
 *   `needs_reauth` / `rotation_lost`. Nothing is left `refreshing`.
 * - SIGSTOP past the lease, another worker refreshes, SIGCONT: the paused worker's late write
 *   (a failure, or a full set of fresh tokens) is refused by the fence; it sends nothing more
 *   upstream.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConnectionView, expiresAtMs, waitFor } from "./support/broker-api.ts";
import {
  type BrokerSystem,
  type SeededConnection,
  createConnections,
  registerProvider,
  startBrokerSystem,
} from "./support/broker-system.ts";
import type { EvergreenProcess } from "./support/processes.ts";
import { sleep } from "./support/processes.ts";

const LEASE_MS = 3000;
const UPSTREAM_TIMEOUT_MS = 2000;
const SHORT_LEASES = {
  EVERGREEN_BROKER_LEASE_MS: String(LEASE_MS),
  EVERGREEN_BROKER_UPSTREAM_TIMEOUT_MS: String(UPSTREAM_TIMEOUT_MS),
  EVERGREEN_BROKER_POLL_MS: "250",
};

describe("a worker killed (SIGKILL) in the middle of refreshes", () => {
  const COUNT = 60;
  let sys: BrokerSystem;
  let conns: SeededConnection[];
  let apiKey: string;
  let killAt = 0;
  let takeoverAt = 0;
  let views: ConnectionView[] = [];
  let generationsAtKill: number[] = [];

  beforeAll(async () => {
    sys = await startBrokerSystem({
      // slow enough that a kill catches calls in flight, well inside the upstream timeout
      provider: { latencyMs: [500, 1100], accessTokenTtl: 12 },
      env: SHORT_LEASES,
    });
    await registerProvider(sys.api, sys.provider, "crashy", { refresh_ahead: 4, default_ttl: 12 });
    apiKey = (await sys.api.createApiKey({ name: "crash-consumer", providers: ["crashy"] })).key;

    // B starts first and is frozen at once, so it is ready to take over the moment it resumes
    const b = await sys.addWorker("worker-b");
    b.signal("SIGSTOP");
    const a = await sys.addWorker("worker-a");
    conns = await createConnections(sys.api, sys.provider, "crashy", COUNT, () => 3 + Math.random() * 4);
    // A alone works through them: kill it while several of its calls are at the provider
    await waitFor(
      "worker A to have calls in flight",
      async () => sys.provider.inFlight().length >= 5,
      60_000,
      20,
    );
    a.signal("SIGKILL");
    killAt = Date.now();
    await a.exited;
    generationsAtKill = (await sys.api.connections(conns.map((c) => c.id))).map((v) => Number(v.generation));
    b.signal("SIGCONT");
    takeoverAt = Date.now();

    // settle: every connection either refreshed by B after A's leases lapsed, or explicitly lost
    await waitFor(
      "every connection refreshed after the takeover or marked needs_reauth",
      async () => {
        views = await sys.api.connections(conns.map((c) => c.id));
        return views.every((v, i) => {
          if (v.status === "needs_reauth") return true;
          const g = sys.provider.grant(conns[i]!.grant.grantId);
          return v.status === "active" && g.refreshedAt.some((t) => t > takeoverAt + LEASE_MS);
        });
      },
      120_000,
      500,
    );
    await sys.workers.find((w) => w.name === "worker-b")!.stop();
    views = await sys.api.connections(conns.map((c) => c.id));
  }, 240_000);

  afterAll(async () => {
    await sys?.close();
  }, 60_000);

  it("really killed the worker mid-call (the provider rotated for a dead process)", () => {
    const lost = sys.provider.requests.filter((r) => r.outcome === "rotated" && r.clientGone);
    expect(lost.length, "rotations whose answer went to the killed worker").toBeGreaterThanOrEqual(1);
    expect(views.filter((v) => v.status === "needs_reauth").length).toBeGreaterThanOrEqual(lost.length);
  });

  it("left nothing refreshing, degraded or in error", () => {
    const statuses = new Set(views.map((v) => v.status));
    expect([...statuses].filter((s) => s !== "active" && s !== "needs_reauth")).toEqual([]);
  });

  it("marks exactly the connections whose rotation died with the worker needs_reauth / rotation_lost", () => {
    const around = (r: { receivedAt: number; answeredAt?: number; clientGone: boolean }) =>
      r.receivedAt <= killAt && (r.clientGone || r.answeredAt === undefined || r.answeredAt >= killAt - 3000);
    for (const [i, v] of views.entries()) {
      const g = sys.provider.grant(conns[i]!.grant.grantId);
      const reqs = sys.provider.requestsFor(g.id);
      // the provider rotated but the answer went to a dead process: the broker cannot hold those tokens
      const lostAtProvider = reqs.some((r) => r.outcome === "rotated" && r.clientGone);
      if (lostAtProvider) expect(v.status, `conn ${i}`).toBe("needs_reauth");
      if (v.status === "needs_reauth") {
        expect(v.reason, `conn ${i}`).toMatch(/rotation_lost/);
        // only a call in flight when the worker died can have been lost
        expect(reqs.some(around), `conn ${i}: needs_reauth without a call in flight at the kill`).toBe(true);
      }
      // a reuse at the provider only ever comes from the deliberate single retry of a lost rotation
      if (g.reuses > 0) {
        expect(v.status, `conn ${i} reused`).toBe("needs_reauth");
        expect(g.reuses).toBe(1);
      }
    }
  });

  it("kept every other connection usable: current refresh token, nothing lost, live token served", async () => {
    const active = views.map((v, i) => ({ v, i })).filter(({ v }) => v.status === "active");
    expect(active.length).toBeGreaterThan(COUNT / 2);
    for (const { v, i } of active) {
      const g = sys.provider.grant(conns[i]!.grant.grantId);
      expect(g.revokedAt, `conn ${i}`).toBeUndefined();
      expect(g.reuses, `conn ${i}`).toBe(0);
      // every rotation the provider made is the broker's: none was dropped on the floor
      expect(Number(v.generation), `conn ${i}`).toBe(g.refreshes + 1);
      expect(Number(v.generation), `conn ${i}`).toBeGreaterThan(generationsAtKill[i]!);
      const res = await sys.api.token(v.id, apiKey, 1);
      expect(res.status, res.text).toBe(200);
      expect(sys.provider.isLive(res.body.access_token)).toBe(true);
      expect(sys.provider.latestAccessToken(g.id).token).toBe(res.body.access_token);
      expect(expiresAtMs(res.body.expires_at)).toBeGreaterThan(Date.now());
    }
  });

  it("answers 409 {status, reason} for a lost connection, never a stale token", async () => {
    for (const v of views.filter((x) => x.status === "needs_reauth")) {
      const res = await sys.api.token(v.id, apiKey, 1);
      expect(res.status, res.text).toBe(409);
      expect(res.body).toMatchObject({ status: "needs_reauth" });
      expect(res.body.reason).toMatch(/rotation_lost/);
      expect(res.text).not.toMatch(/\b(at|rt)_/);
    }
  });
});

describe("a worker paused (SIGSTOP) past its lease, then resumed", () => {
  let sys: BrokerSystem;
  let dropped: SeededConnection; // A's request was lost on the way: the provider never saw it
  let answered: SeededConnection; // the provider rotated for A while A was frozen
  let apiKey: string;
  let a: EvergreenProcess;
  let afterB: { dropped: ConnectionView; answered: ConnectionView };

  beforeAll(async () => {
    sys = await startBrokerSystem({
      provider: { latencyMs: [5, 20], accessTokenTtl: 3600 },
      env: SHORT_LEASES,
    });
    await registerProvider(sys.api, sys.provider, "pausy", { refresh_ahead: 120, default_ttl: 3600 });
    apiKey = (await sys.api.createApiKey({ name: "pause-consumer", providers: ["pausy"] })).key;
    sys.provider.setMode("hold");
    // due within ~2 s (the refresh window is at most half the remaining lifetime)
    const created = await createConnections(sys.api, sys.provider, "pausy", 2, () => 4);
    dropped = created[0]!;
    answered = created[1]!;
    a = await sys.addWorker("worker-a");
    await waitFor(
      "worker A's two calls to reach the provider",
      async () => sys.provider.heldCount() === 2,
      60_000,
      20,
    );
    a.signal("SIGSTOP");
    sys.provider.setMode("ok");
    sys.provider.releaseHeld("drop", dropped!.grant.grantId);
    sys.provider.releaseHeld("process", answered!.grant.grantId);
    expect(sys.provider.grant(answered!.grant.grantId).refreshes).toBe(1);

    await sys.addWorker("worker-b");
    await waitFor(
      "worker B to resolve both connections",
      async () => {
        const [d, n] = await sys.api.connections([dropped!.id, answered!.id]);
        if (d!.status === "active" && Number(d!.generation) >= 2 && n!.status === "needs_reauth") {
          afterB = { dropped: d!, answered: n! };
          return afterB;
        }
        return undefined;
      },
      60_000,
      250,
    );
    // A resumes long after its lease and its upstream timeout; give it time to try its writes
    a.signal("SIGCONT");
    await sleep(UPSTREAM_TIMEOUT_MS + 4000);
  }, 240_000);

  afterAll(async () => {
    await sys?.close();
  }, 60_000);

  it("let B in only after A's lease lapsed", () => {
    for (const c of [dropped, answered]) {
      const [first, second] = sys.provider.requestsFor(c.grant.grantId);
      expect(second, "B's call").toBeDefined();
      expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(LEASE_MS - 1000);
    }
  });

  it("a request lost on the way: B's one retry with the stored token succeeds, A's late failure write is refused", async () => {
    const v = await sys.api.connection(dropped.id);
    expect(v.status).toBe("active");
    expect(v.generation).toEqual(afterB.dropped.generation);
    expect(v.failure_count).toBe(0);
    expect(v.expires_at).toEqual(afterB.dropped.expires_at);
    const g = sys.provider.grant(dropped.grant.grantId);
    expect(g.reuses).toBe(0);
    expect(g.revokedAt).toBeUndefined();
    expect(g.refreshes).toBe(1);
    // A sent nothing more after it resumed: exactly its lost call and B's
    expect(sys.provider.requestsFor(g.id).length).toBe(2);
    const res = await sys.api.token(dropped.id, apiKey, 60);
    expect(res.status, res.text).toBe(200);
    expect(res.body.access_token).toBe(sys.provider.latestAccessToken(g.id).token);
    expect(sys.provider.isLive(res.body.access_token)).toBe(true);
    const events = await sys.api.events(dropped.id);
    expect(events.filter((e) => e.type === "refreshed")).toHaveLength(1);
    expect(events.map((e) => e.type)).not.toContain("degraded");
  });

  it("a rotation A received while frozen: B marks it rotation_lost, A's late write of the fresh tokens is refused", async () => {
    const v = await sys.api.connection(answered.id);
    expect(v.status).toBe("needs_reauth");
    expect(v.reason).toMatch(/rotation_lost/);
    expect(v.generation).toEqual(afterB.answered.generation);
    const g = sys.provider.grant(answered.grant.grantId);
    // B's single deliberate retry with the stored token is the only reuse; nothing after it
    expect(g.reuses).toBe(1);
    expect(sys.provider.requestsFor(g.id).length).toBe(2);
    const res = await sys.api.token(answered.id, apiKey, 1);
    expect(res.status, res.text).toBe(409);
    expect(res.body).toMatchObject({ status: "needs_reauth" });
    const events = await sys.api.events(answered.id);
    expect(events.filter((e) => e.type === "refreshed")).toHaveLength(0);
    expect(events.map((e) => e.type)).toContain("needs_reauth");
  });
});
