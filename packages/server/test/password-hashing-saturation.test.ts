import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { HashingGate } from "../src/crypto/hashing-gate.ts";
import { type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  expectOAuthError,
  login,
  loginOk,
  refreshOk,
  snapshot,
} from "./helpers.ts";

/**
 * Password hashing is the cost an attacker multiplies: it runs behind a semaphore with a bounded
 * queue (503 temporarily_unavailable + Retry-After beyond it), unknown usernames cost a hash
 * like known ones, and password grants have their own per-address budget.
 * Saturation is produced by holding the semaphore, not by timing.
 */
describe("password hashing saturation", () => {
  let ti: TestIssuer;
  let app: TestClient;
  let user: TestUser;
  beforeAll(async () => {
    ti = await startTestIssuer({ env: { EVERGREEN_HASH_CONCURRENCY: "1", EVERGREEN_HASH_QUEUE: "1" } });
    app = await createClient(ti);
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  it("beyond concurrency + queue a login gets 503 temporarily_unavailable with Retry-After, and changes nothing", async () => {
    const gate = ti.issuer.ctx.hashing;
    const release = await gate.acquire(); // the only hashing slot
    let queued: ReturnType<typeof login> | undefined;
    try {
      queued = login(ti, app, user); // takes the only queue place
      await vi.waitFor(() => expect(gate.waiting).toBe(1), { timeout: 20_000, interval: 20 });
      const before = await snapshot(ti.db);
      const refused = await login(ti, app, user);
      expectOAuthError(refused, 503, "temporarily_unavailable");
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      // an unknown username is no cheaper: it waits for a hash too, and is refused the same way
      const unknown = await login(ti, app, { ...user, username: "nobody-at-all" });
      expectOAuthError(unknown, 503, "temporarily_unavailable");
      expect(await snapshot(ti.db)).toBe(before);
    } finally {
      release();
    }
    const done = await queued!;
    expect(done.status, done.text).toBe(200);
    // the gate is free again: logins and their refreshes work
    const again = await loginOk(ti, app, user);
    await refreshOk(ti, app, again.refresh_token!);
    expect(gate.waiting).toBe(0);
  });
});

describe("password grants per address", () => {
  let ti: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer({ env: { EVERGREEN_RATE_LIMIT_PASSWORD_PER_IP: "3" } });
  });
  afterAll(() => ti?.close());

  it("are limited to their own budget; refreshes are not counted against it", async () => {
    const app = await createClient(ti);
    const user = await createUser(ti);
    const first = await loginOk(ti, app, user);
    expectOAuthError(await login(ti, app, { ...user, password: "wrong-password" }), 400, "invalid_grant");
    await loginOk(ti, app, user);
    const refused = await login(ti, app, user);
    expectOAuthError(refused, 429, "too_many_requests");
    expect(refused.headers.get("retry-after")).toBeTruthy();
    await refreshOk(ti, app, first.refresh_token!);
  });
});

describe("HashingGate", () => {
  it("admits `concurrency` at once, queues up to the bound, hands slots on in order, refuses beyond", async () => {
    const gate = new HashingGate(2, 1);
    const a = await gate.acquire();
    const b = await gate.acquire();
    const order: string[] = [];
    const c = gate.acquire().then((release) => {
      order.push("c");
      return release;
    });
    expect(gate.waiting).toBe(1);
    await expect(gate.acquire()).rejects.toMatchObject({ error: "temporarily_unavailable", status: 503 });
    a();
    a(); // releasing twice frees one slot only
    const releaseC = await c;
    expect(order).toEqual(["c"]);
    const d = gate.acquire(); // queued behind b and c
    expect(gate.waiting).toBe(1);
    b();
    await expect(d).resolves.toBeTypeOf("function");
    expect(gate.waiting).toBe(0);
    releaseC();
  });
});
