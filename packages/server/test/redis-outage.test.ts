/**
 * Redis taken away under two issuers that share rate limits through it, via a TCP proxy the
 * test controls. The token endpoint keeps answering (limits fall back to each process's
 * memory), the switch is logged once and counted, and once Redis is back the two processes
 * share one count again. (The harness sets a 2 s Redis timeout so a loaded machine does not
 * trip it; a frozen Redis trips any.)
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestDatabase, type TestIssuer, createTestDatabase, startTestIssuer } from "./harness.ts";
import { type TestUser, createClient, createUser, expectOAuthError, login } from "./helpers.ts";
import { TcpProxy } from "./tcp-proxy.ts";

const LIMIT = 6;

async function fallbackCount(ti: TestIssuer): Promise<number> {
  const text = await (await fetch(`${ti.url}/metrics`)).text();
  const match = /^evergreen_rate_limit_store_fallback_total (\d+)/m.exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

async function readyStatus(ti: TestIssuer): Promise<{ status: number; body: any }> {
  const res = await fetch(`${ti.url}/readyz`);
  return { status: res.status, body: await res.json() };
}

/** Polls until both issuers are ready (Redis reconnected); fails after `ms`. */
async function waitReady(issuers: TestIssuer[], ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const states = await Promise.all(issuers.map(readyStatus));
    if (states.every((s) => s.status === 200)) return;
    if (Date.now() > deadline)
      throw new Error(`not ready again: ${JSON.stringify(states.map((s) => s.body))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("Redis outage under two issuers sharing rate limits", () => {
  let testDb: TestDatabase;
  let proxy: TcpProxy;
  let a: TestIssuer;
  let b: TestIssuer;
  let user: TestUser;
  const linesA: Record<string, unknown>[] = [];

  /** A fresh public client: its limit is counted per client and IP, LIMIT per window. */
  async function freshClient() {
    return createClient(a);
  }

  /** LIMIT logins split across the two issuers; the next one is refused only if they share a count. */
  async function sharedCount(): Promise<boolean> {
    const client = await freshClient();
    for (let i = 0; i < LIMIT; i++) expect((await login(i % 2 ? b : a, client, user)).status).toBe(200);
    const next = await login(a, client, user);
    if (next.status === 429) return true;
    expect(next.status).toBe(200);
    return false;
  }

  beforeAll(async () => {
    testDb = await createTestDatabase("pglite");
    proxy = await TcpProxy.start(6379);
    const env = {
      REDIS_URL: proxy.wrap("redis://127.0.0.1:6379"),
      EVERGREEN_RATE_LIMIT_PER_CLIENT: String(LIMIT),
    };
    const logStream = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split("\n")) if (line.trim()) linesA.push(JSON.parse(line));
        done();
      },
    });
    a = await startTestIssuer({ db: testDb, env: { ...env, LOG_LEVEL: "info" }, logStream });
    b = await startTestIssuer({ db: testDb, env });
    user = await createUser(a);
    await waitReady([a, b]);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await proxy?.close();
    await testDb?.drop();
  });

  it("with Redis up, two issuers share one count (control)", async () => {
    expect(await sharedCount()).toBe(true);
    expect(await fallbackCount(a)).toBe(0);
  });

  it("Redis stopped: token requests keep answering from memory, logged once, counted; shared again once it is back", async () => {
    const count = (event: string) => linesA.filter((l) => l.event === event).length;
    const fallbacksLogged = count("rate_limit_store_fallback");
    const recoveriesLogged = count("rate_limit_store_recovered");
    await proxy.stop();
    const client = await freshClient();
    // Every request still gets an answer: the limits fail open to this process's memory.
    for (let i = 0; i < LIMIT; i++) expect((await login(a, client, user)).status).toBe(200);
    // Memory still limits: one process enforces the limit alone.
    expectOAuthError(await login(a, client, user), 429, "too_many_requests");
    const concurrent = await Promise.all(
      Array.from({ length: 8 }, async () => login(b, await freshClient(), user)),
    );
    for (const res of concurrent) expect(res.status).toBe(200);

    expect(await fallbackCount(a)).toBeGreaterThanOrEqual(LIMIT + 1);
    expect(await fallbackCount(b)).toBeGreaterThanOrEqual(8);
    const fallbackLines = linesA.filter((l) => l.event === "rate_limit_store_fallback");
    expect(fallbackLines.length).toBe(fallbacksLogged + 1);
    expect(Number(fallbackLines.at(-1)!.level)).toBe(40);
    // Not ready while a configured dependency is away, though requests are still answered.
    const ready = await readyStatus(a);
    expect(ready.status).toBe(503);
    expect(ready.body.checks).toMatchObject({ redis: "unreachable", database: "ok" });
    // The two processes now count separately.
    expect(await sharedCount()).toBe(false);

    await proxy.restore();
    await waitReady([a, b]);
    expect(await sharedCount()).toBe(true);
    expect(count("rate_limit_store_recovered")).toBe(recoveriesLogged + 1);
    // Still one fallback line for the whole outage.
    expect(count("rate_limit_store_fallback")).toBe(fallbacksLogged + 1);
  }, 120_000);

  it("Redis frozen: commands time out and the request is answered from memory, not stalled", async () => {
    const before = await fallbackCount(a);
    proxy.freeze();
    const client = await freshClient();
    const results = await Promise.all(Array.from({ length: 4 }, () => login(a, client, user)));
    for (const res of results) expect(res.status).toBe(200);
    expect(await fallbackCount(a)).toBeGreaterThan(before);

    await proxy.restore();
    // The connection never dropped: the next check simply finds Redis answering again.
    await waitReady([a, b]);
    expect(await sharedCount()).toBe(true);
  }, 120_000);
});
