/**
 * DPoP in the SDK, in one process: what a proof contains and that its signature verifies, where
 * keys come from, the nonce retry with a body that must be sent twice, and which requests of a
 * session carry proofs. (The SDK against a real DPoP server: oidc-provider-interop.test.ts.)
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  createDpopProof,
  createSession,
  dpopFetch,
  type FetchLike,
  jwkThumbprint,
  memoryDpopKeys,
  memoryStorage,
  storageDpopKeys,
} from "../src/index.ts";
import { json } from "./support/fake-endpoint.ts";

const decode = (part: string) => JSON.parse(Buffer.from(part, "base64url").toString());

/** Verifies a proof's signature with the key in its own header; returns header and payload. */
async function verifyProof(proof: string) {
  const [h, p, s] = proof.split(".") as [string, string, string];
  const header = decode(h);
  const key = await crypto.subtle.importKey(
    "jwk",
    header.jwk,
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["verify"],
  );
  const ok = await crypto.subtle.verify(
    { name: "ECDSA", hash: "SHA-256" },
    key,
    Buffer.from(s, "base64url"),
    new TextEncoder().encode(`${h}.${p}`),
  );
  return { ok, header, payload: decode(p) };
}

describe("DPoP proofs and keys", () => {
  it("a proof: typ dpop+jwt, ES256, the public JWK only, htm, htu without query or fragment, iat, random jti, ath, nonce", async () => {
    const pair = await memoryDpopKeys().keyPair();
    const claims = { htm: "post", htu: "https://rs.example/api/items?page=2#top", iat: 1_700_000_000 };
    const proof = await createDpopProof(pair, { ...claims, nonce: "n-1", accessToken: "token-abc" });
    const { ok, header, payload } = await verifyProof(proof);
    expect(ok).toBe(true);
    expect(header).toMatchObject({ typ: "dpop+jwt", alg: "ES256" });
    expect(Object.keys(header.jwk).sort()).toEqual(["crv", "kty", "x", "y"]);
    expect(payload).toMatchObject({
      htm: "POST",
      htu: "https://rs.example/api/items",
      iat: 1_700_000_000,
      nonce: "n-1",
    });
    expect(payload.ath).toBe(createHash("sha256").update("token-abc").digest("base64url"));
    expect(payload.jti).toMatch(/^[\w-]{43}$/);
    const second = decode((await createDpopProof(pair, claims)).split(".")[1]!);
    expect(second.jti).not.toBe(payload.jti);
    expect(second).not.toHaveProperty("ath");
    expect(second).not.toHaveProperty("nonce");
    // A method fetch does not normalise is signed as it is sent.
    expect(decode((await createDpopProof(pair, { ...claims, htm: "patch" })).split(".")[1]!).htm).toBe(
      "patch",
    );
  });

  it("memory keys are non-extractable and stable; stored keys are the same pair for every reader", async () => {
    const keys = memoryDpopKeys();
    const pair = await keys.keyPair();
    expect(pair.privateKey.extractable).toBe(false);
    await expect(crypto.subtle.exportKey("jwk", pair.privateKey)).rejects.toThrow();
    expect(await keys.keyPair()).toBe(pair);

    const storage = memoryStorage();
    const a = await storageDpopKeys(storage, "k").keyPair();
    const b = await storageDpopKeys(storage, "k").keyPair(); // another process reading the same store
    expect(await jwkThumbprint(a)).toBe(await jwkThumbprint(b));
    expect(b.privateKey.extractable).toBe(false);
    expect(await jwkThumbprint(await storageDpopKeys(storage, "other").keyPair())).not.toBe(
      await jwkThumbprint(a),
    );
  });

  it("retries once with the nonce a 401 use_dpop_nonce carried, replaying a Request body; a second refusal is returned", async () => {
    const received: { nonce: string | undefined; body: string; ath: string | undefined }[] = [];
    let serverNonce = "n-1";
    let rotateEveryTime = false;
    const resource: FetchLike = async (input, init) => {
      const request = new Request(input, init);
      const proof = await verifyProof(request.headers.get("dpop")!);
      expect(proof.ok).toBe(true);
      received.push({ nonce: proof.payload.nonce, body: await request.text(), ath: proof.payload.ath });
      if (rotateEveryTime) serverNonce = `${serverNonce}+`;
      if (proof.payload.nonce === serverNonce) return json(200, { ok: true }, { "dpop-nonce": serverNonce });
      return new Response(null, {
        status: 401,
        headers: { "www-authenticate": 'DPoP error="use_dpop_nonce"', "dpop-nonce": serverNonce },
      });
    };
    const send = dpopFetch(memoryDpopKeys(), { fetch: resource });
    const request = new Request("https://rs.example/items", {
      method: "POST",
      body: "payload",
      headers: { authorization: "DPoP at-1" },
    });
    expect((await send(request)).status).toBe(200);
    const ath = createHash("sha256").update("at-1").digest("base64url");
    expect(received).toEqual([
      { nonce: undefined, body: "payload", ath },
      { nonce: "n-1", body: "payload", ath },
    ]);
    // The nonce is kept for the origin: the next request needs no retry.
    received.length = 0;
    expect((await send("https://rs.example/other", { headers: { authorization: "DPoP at-1" } })).status).toBe(
      200,
    );
    expect(received.map((r) => r.nonce)).toEqual(["n-1"]);
    // A server that refuses every nonce: one retry, then its answer.
    rotateEveryTime = true;
    received.length = 0;
    expect((await send("https://rs.example/items")).status).toBe(401);
    expect(received).toHaveLength(2);
  });

  it("a session proves on token requests and DPoP-bound resource requests, on the issuer's clock; Bearer tokens go without", async () => {
    const serverNow = Date.parse("2030-01-01T00:00:00Z"); // the device clock is years behind
    let tokenType = "DPoP";
    const seen: { path: string; authorization: string | null; iat?: number; ath?: string }[] = [];
    const server: FetchLike = async (input, init) => {
      const request = new Request(input, init);
      const proof = request.headers.get("dpop");
      const payload = proof ? (await verifyProof(proof)).payload : undefined;
      const path = new URL(request.url).pathname;
      seen.push({
        path,
        authorization: request.headers.get("authorization"),
        iat: payload?.iat,
        ath: payload?.ath,
      });
      const date = { date: new Date(serverNow).toUTCString() };
      if (path === "/token") {
        return json(
          200,
          {
            access_token: `at-${seen.length}`,
            token_type: tokenType,
            expires_in: 600,
            refresh_token: `rt-${seen.length}`,
          },
          date,
        );
      }
      return json(200, {}, date);
    };
    const session = createSession({
      tokenEndpoint: "https://as.example/token",
      origins: ["https://rs.example"],
      clientId: "app",
      fetch: server,
      dpop: memoryDpopKeys(),
      autoRefresh: false,
    });
    await session.loginWithPassword("alice", "pw");
    await session.refresh();
    await session.fetch("https://rs.example/items");
    tokenType = "Bearer";
    await session.refresh();
    await session.fetch("https://rs.example/items");
    session.dispose();
    expect(seen.map((s) => [s.path, s.authorization?.split(" ")[0] ?? null, s.iat !== undefined])).toEqual([
      ["/token", null, true],
      ["/token", null, true],
      ["/items", "DPoP", true],
      ["/token", null, true],
      ["/items", "Bearer", false],
    ]);
    expect(seen[2]?.ath).toBe(createHash("sha256").update("at-2").digest("base64url"));
    // After the first response, proofs carry the issuer's time, not the device's.
    expect(Math.abs(seen[1]!.iat! - serverNow / 1000)).toBeLessThan(5);
  });
});
