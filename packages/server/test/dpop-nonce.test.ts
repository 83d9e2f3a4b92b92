/**
 * Server nonces (RFC 9449 §8): stateless, rotating, the previous one still accepted; the issuer
 * requiring them on request. And the proof replay cache shared through Redis between issuers.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DPOP_NONCE_PERIOD_SECONDS, DpopNonces } from "../src/dpop/nonce.ts";
import { RedisDpopReplayStore } from "../src/dpop/redis-replay-store.ts";
import { MemoryDpopReplayStore } from "../src/dpop/replay-store.ts";
import { type DpopKey, dpopKey, makeProof } from "./dpop-keys.ts";
import { ManualClock, type TestIssuer, createTestDatabase, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  expectOAuthError,
  postForm,
} from "./helpers.ts";

const REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";

describe("stateless DPoP nonces", () => {
  it("rotate each period, accept the previous one, refuse older, forged or foreign ones", () => {
    const clock = new ManualClock(new Date("2026-01-01T00:00:10Z"));
    const nonces = new DpopNonces(Buffer.alloc(32, 1), clock);
    const first = nonces.issue();
    expect(nonces.isValid(first)).toBe(true);
    expect(nonces.issue()).toBe(first); // same slot, same nonce: no storage needed
    clock.advance(DPOP_NONCE_PERIOD_SECONDS);
    const second = nonces.issue();
    expect(second).not.toBe(first);
    expect(nonces.isValid(first)).toBe(true);
    expect(nonces.isValid(second)).toBe(true);
    clock.advance(DPOP_NONCE_PERIOD_SECONDS);
    expect(nonces.isValid(first)).toBe(false);
    expect(nonces.isValid(second)).toBe(true);

    const foreign = new DpopNonces(Buffer.alloc(32, 2), clock);
    expect(nonces.isValid(foreign.issue())).toBe(false);
    const raw = Buffer.from(second, "base64url");
    raw[raw.length - 1]! ^= 1;
    expect(nonces.isValid(raw.toString("base64url"))).toBe(false);
    expect(nonces.isValid("")).toBe(false);
    expect(nonces.isValid("not a nonce at all!")).toBe(false);
    expect(nonces.isValid(`${second}=`)).toBe(false);
  });
});

describe("the jti replay store", () => {
  it("memory: refuses a key until it expires, and stays within its bound", async () => {
    const store = new MemoryDpopReplayStore(3);
    expect(await store.use("a", 2000, 1000)).toBe(true);
    expect(await store.use("a", 2000, 1500)).toBe(false);
    expect(await store.use("a", 3000, 2000)).toBe(true); // expired, may be seen anew
    for (const k of ["b", "c", "d", "e"]) expect(await store.use(k, 9000, 2000)).toBe(true);
    expect(store.size).toBeLessThanOrEqual(3);
    expect(await store.use("e", 9000, 2100)).toBe(false);
  });

  it("Redis: a proof used in one process is refused in another", async () => {
    const failures: unknown[] = [];
    const onFallback = (err: unknown) => failures.push(err);
    const a = new RedisDpopReplayStore(REDIS_URL, { commandTimeoutMs: 2000, onFallback });
    const b = new RedisDpopReplayStore(REDIS_URL, { commandTimeoutMs: 2000, onFallback });
    try {
      expect(await a.waitConnected(5000)).toBe(true);
      expect(await b.waitConnected(5000)).toBe(true);
      const key = `test:${Math.random()}`;
      const now = Date.now();
      const answers = await Promise.all([a.use(key, now + 5000, now), b.use(key, now + 5000, now)]);
      expect(failures.map(String)).toEqual([]);
      expect(answers.filter(Boolean)).toHaveLength(1);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("the issuer requiring DPoP nonces (EVERGREEN_DPOP_REQUIRE_NONCE=1), two processes sharing Redis", () => {
  // Two processes behind one public address: proofs name that address, not either socket.
  const PUBLIC = "https://auth.example.test";
  let one: TestIssuer;
  let two: TestIssuer;
  let clock: ManualClock;
  let app: TestClient;
  let user: TestUser;
  let key: DpopKey;

  beforeAll(async () => {
    clock = new ManualClock();
    const db = await createTestDatabase("pglite");
    const env = { EVERGREEN_DPOP_REQUIRE_NONCE: "1", REDIS_URL, ISSUER: PUBLIC };
    one = await startTestIssuer({ db, clock, env });
    two = await startTestIssuer({ db, clock, env });
    app = await createClient(one);
    user = await createUser(one);
    key = await dpopKey();
  });
  afterAll(async () => {
    await two?.close();
    await one?.close();
    await one?.db.close();
  });

  const proofWith = (nonce?: string) => makeProof(key, { htu: `${PUBLIC}/token`, now: clock.now(), nonce });
  const login = async (ti: TestIssuer, proof: string | Promise<string>) =>
    postForm(
      ti,
      "/token",
      { grant_type: "password", username: user.username, password: user.password },
      app,
      { dpop: await proof },
    );

  it("answers use_dpop_nonce with a nonce, accepts the retry, and the other process accepts the nonce", async () => {
    const first = await login(one, proofWith());
    expectOAuthError(first, 400, "use_dpop_nonce");
    const nonce = first.headers.get("dpop-nonce");
    expect(nonce).toBeTruthy();
    const retry = await login(one, proofWith(nonce!));
    expect(retry.status, retry.text).toBe(200);
    expect(retry.body.token_type).toBe("DPoP");
    expect(retry.headers.get("dpop-nonce")).toBeTruthy();
    const there = await login(two, proofWith(nonce!));
    expect(there.status, there.text).toBe(200);
  });

  it("a stale nonce (two periods later) is refused with a fresh one", async () => {
    const nonce = (await login(one, proofWith())).headers.get("dpop-nonce")!;
    clock.advance(2 * DPOP_NONCE_PERIOD_SECONDS);
    const stale = await login(one, proofWith(nonce));
    expectOAuthError(stale, 400, "use_dpop_nonce");
    expect(stale.headers.get("dpop-nonce")).not.toBe(nonce);
    expect((await login(one, proofWith(stale.headers.get("dpop-nonce")!))).status).toBe(200);
  });

  it("a proof accepted by one process is refused by the other (jti shared through Redis)", async () => {
    const nonce = (await login(one, proofWith())).headers.get("dpop-nonce")!;
    const proof = await proofWith(nonce);
    expect((await login(one, proof)).status).toBe(200);
    expectOAuthError(await login(two, proof), 400, "invalid_dpop_proof");
    const fresh = await proofWith(nonce);
    const both = await Promise.all([login(one, fresh), login(two, fresh)]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 400]);
  });
});
