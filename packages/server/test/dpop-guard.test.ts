/**
 * The guard with DPoP (RFC 9449 §7): a resource server accepts a DPoP-bound access token only
 * with `Authorization: DPoP` and a proof of the bound key for this very request, refuses it as
 * Bearer, and still accepts plain Bearer tokens as before. /userinfo is guarded the same way.
 */
import Fastify, { type FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DpopNonces,
  type DpopOptions,
  createAccessTokenVerifier,
  requireAccessToken,
} from "../src/guard/index.ts";
import { type DpopKey, type ProofOptions, dpopKey, makeProof, rawRequest } from "./dpop-keys.ts";
import { DATABASES, ManualClock, type TestIssuer, freePort, startTestIssuer } from "./harness.ts";
import {
  type HttpResult,
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  postForm,
} from "./helpers.ts";

async function get(url: string, headers: Record<string, string>, method = "GET"): Promise<HttpResult> {
  const res = await fetch(url, { method, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined, text };
}

describe.each(DATABASES)("DPoP at a guarded resource on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let app: TestClient;
  let user: TestUser;
  let key: DpopKey;
  let other: DpopKey;
  let rs: FastifyInstance;
  let rsUrl: string;
  let bound: string;
  let bearer: string;
  const nonces = () => new DpopNonces(Buffer.alloc(32, 9), clock);
  let rsNonces: DpopNonces;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
    app = await createClient(ti);
    user = await createUser(ti);
    key = await dpopKey();
    other = await dpopKey();
    rsNonces = nonces();
    const port = await freePort();
    rsUrl = `http://127.0.0.1:${port}`;
    const verify = createAccessTokenVerifier({
      issuer: ti.config.issuer,
      audience: ti.config.audience,
      jwksUri: `${ti.url}/jwks`,
      clock,
    });
    const dpop: DpopOptions = { publicUrl: rsUrl, clock };
    rs = Fastify();
    const reply = async (req: { accessToken?: { sub: string } }) => ({ sub: req.accessToken!.sub });
    rs.get("/items", { preHandler: requireAccessToken(verify, { dpop }) }, reply);
    rs.post("/items", { preHandler: requireAccessToken(verify, { dpop }) }, reply);
    rs.get("/admin", { preHandler: requireAccessToken(verify, { dpop, scopes: ["admin"] }) }, reply);
    rs.get(
      "/strict",
      { preHandler: requireAccessToken(verify, { dpop: { ...dpop, required: true } }) },
      reply,
    );
    rs.get(
      "/nonce",
      { preHandler: requireAccessToken(verify, { dpop: { ...dpop, nonces: rsNonces, requireNonce: true } }) },
      reply,
    );
    rs.get("/legacy", { preHandler: requireAccessToken(verify) }, reply);
    await rs.listen({ port, host: "127.0.0.1" });

    const proof = await makeProof(key, { htu: `${ti.url}/token`, now: clock.now() });
    const login = await postForm(
      ti,
      "/token",
      { grant_type: "password", username: user.username, password: user.password, scope: "openid profile" },
      app,
      { dpop: proof },
    );
    expect(login.body.token_type).toBe("DPoP");
    bound = login.body.access_token;
    const plain = await postForm(
      ti,
      "/token",
      { grant_type: "password", username: user.username, password: user.password, scope: "openid" },
      app,
    );
    bearer = plain.body.access_token;
  });
  afterAll(async () => {
    await rs?.close();
    await ti?.close();
  });

  const proofFor = (k: DpopKey, path: string, o: Partial<ProofOptions> = {}) =>
    makeProof(k, { htu: `${rsUrl}${path}`, htm: "GET", now: clock.now(), accessToken: bound, ...o });
  const dpopHeaders = async (p: string | Promise<string>, token = bound) => ({
    authorization: `DPoP ${token}`,
    dpop: await p,
  });
  const expectDpopError = (res: HttpResult, error: string, status = 401) => {
    expect(res.status, res.text).toBe(status);
    expect(res.body.error).toBe(error);
    const challenge = res.headers.get("www-authenticate") ?? "";
    expect(challenge).toMatch(new RegExp(`^DPoP .*error="${error}"`));
    expect(challenge).toMatch(/algs="[^"]*ES256[^"]*"/);
  };

  it("accepts a DPoP-bound token with a proof of its key for this request", async () => {
    const res = await get(`${rsUrl}/items?page=2`, await dpopHeaders(proofFor(key, "/items")));
    expect(res.status, res.text).toBe(200);
    expect(res.body.sub).toBe(user.id);
    const post = await get(
      `${rsUrl}/items`,
      await dpopHeaders(proofFor(key, "/items", { htm: "POST" })),
      "POST",
    );
    expect(post.status, post.text).toBe(200);
  });

  it("refuses the bound token as Bearer (RFC 9449 §7.2), on a DPoP-aware route and a legacy one", async () => {
    for (const path of ["/items", "/legacy"]) {
      const res = await get(`${rsUrl}${path}`, { authorization: `Bearer ${bound}` });
      expect(res.status, res.text).toBe(401);
      expect(res.body.error).toBe("invalid_token");
    }
  });

  it("still accepts plain Bearer tokens (backward compatible), except where DPoP is required", async () => {
    expect((await get(`${rsUrl}/items`, { authorization: `Bearer ${bearer}` })).status).toBe(200);
    expect((await get(`${rsUrl}/legacy`, { authorization: `Bearer ${bearer}` })).status).toBe(200);
    expectDpopError(await get(`${rsUrl}/strict`, { authorization: `Bearer ${bearer}` }), "invalid_token");
    // A bearer token is not bound: presenting it as DPoP proves nothing.
    const res = await get(
      `${rsUrl}/items`,
      await dpopHeaders(proofFor(key, "/items", { accessToken: bearer }), bearer),
    );
    expectDpopError(res, "invalid_token");
  });

  it("refuses each broken proof with invalid_dpop_proof", async () => {
    const now = Math.floor(clock.now().getTime() / 1000);
    const cases: Record<string, Promise<string>> = {
      "another key": proofFor(other, "/items"),
      "ath of another token": proofFor(key, "/items", { accessToken: bearer }),
      "no ath": proofFor(key, "/items", { accessToken: undefined }),
      "htm POST on a GET": proofFor(key, "/items", { htm: "POST" }),
      "htu of another path": proofFor(key, "/legacy"),
      "htu of the issuer": makeProof(key, {
        htu: `${ti.url}/items`,
        htm: "GET",
        accessToken: bound,
        now: clock.now(),
      }),
      "iat too old": proofFor(key, "/items", { iat: now - 120 }),
      "wrong typ": proofFor(key, "/items", { typ: "jwt" }),
    };
    for (const [name, p] of Object.entries(cases)) {
      const res = await get(`${rsUrl}/items`, await dpopHeaders(p));
      expect(res.body.error, `${name}: ${res.text}`).toBe("invalid_dpop_proof");
      expectDpopError(res, "invalid_dpop_proof");
    }
    expectDpopError(await get(`${rsUrl}/items`, { authorization: `DPoP ${bound}` }), "invalid_dpop_proof");
    const two = await rawRequest(`${rsUrl}/items`, "GET", {
      authorization: `DPoP ${bound}`,
      dpop: [await proofFor(key, "/items"), await proofFor(key, "/items")],
    });
    expectDpopError(two, "invalid_dpop_proof");
  });

  it("refuses a replayed proof, also among concurrent requests", async () => {
    const p = await proofFor(key, "/items");
    expect((await get(`${rsUrl}/items`, await dpopHeaders(p))).status).toBe(200);
    expectDpopError(await get(`${rsUrl}/items`, await dpopHeaders(p)), "invalid_dpop_proof");
    const q = await proofFor(key, "/items");
    const burst = await Promise.all(
      Array.from({ length: 6 }, async () => get(`${rsUrl}/items`, await dpopHeaders(q))),
    );
    expect(burst.filter((r) => r.status === 200)).toHaveLength(1);
  });

  it("checks iat against the guard's clock", async () => {
    const p = await proofFor(key, "/items");
    clock.advance(61);
    expectDpopError(await get(`${rsUrl}/items`, await dpopHeaders(p)), "invalid_dpop_proof");
    clock.advance(-61);
  });

  it("answers insufficient_scope with a DPoP challenge", async () => {
    const res = await get(`${rsUrl}/admin`, await dpopHeaders(proofFor(key, "/admin")));
    expect(res.status).toBe(403);
    expect(res.headers.get("www-authenticate")).toMatch(/^DPoP .*error="insufficient_scope"/);
  });

  it("asks for a nonce when it requires one, and accepts the retry", async () => {
    const first = await get(`${rsUrl}/nonce`, await dpopHeaders(proofFor(key, "/nonce")));
    expectDpopError(first, "use_dpop_nonce");
    const nonce = first.headers.get("dpop-nonce")!;
    expect(rsNonces.isValid(nonce)).toBe(true);
    const retry = await get(`${rsUrl}/nonce`, await dpopHeaders(proofFor(key, "/nonce", { nonce })));
    expect(retry.status, retry.text).toBe(200);
    expect(retry.headers.get("dpop-nonce")).toBeTruthy();
    // One MAC character changed. (Not the last one: it carries padding bits, and for one
    // nonce in 16 replacing it with "A" left the nonce as it was.)
    const valid = nonces().issue();
    const tampered = `${valid.slice(0, 12)}${valid[12] === "A" ? "B" : "A"}${valid.slice(13)}`;
    const forged = await get(
      `${rsUrl}/nonce`,
      await dpopHeaders(proofFor(key, "/nonce", { nonce: tampered })),
    );
    expectDpopError(forged, "use_dpop_nonce");
  });

  it("/userinfo takes the bound token as DPoP with a proof, and refuses it as Bearer", async () => {
    const ok = await get(`${ti.url}/userinfo`, {
      authorization: `DPoP ${bound}`,
      dpop: await makeProof(key, {
        htu: `${ti.url}/userinfo`,
        htm: "GET",
        accessToken: bound,
        now: clock.now(),
      }),
    });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.sub).toBe(user.id);
    expect(ok.headers.get("dpop-nonce")).toBeTruthy();
    const asBearer = await get(`${ti.url}/userinfo`, { authorization: `Bearer ${bound}` });
    expect(asBearer.status).toBe(401);
    expect(asBearer.body.error).toBe("invalid_token");
    const wrongKey = await get(`${ti.url}/userinfo`, {
      authorization: `DPoP ${bound}`,
      dpop: await makeProof(other, {
        htu: `${ti.url}/userinfo`,
        htm: "GET",
        accessToken: bound,
        now: clock.now(),
      }),
    });
    expectDpopError(wrongKey, "invalid_dpop_proof");
  });

  it("introspection reports the binding", async () => {
    const rsClient = await createClient(ti, {
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["client_credentials"],
      scope: "",
    });
    const res = await postForm(ti, "/introspect", { token: bound }, rsClient);
    expect(res.body).toMatchObject({ active: true, token_type: "DPoP", cnf: { jkt: key.jkt } });
    const plain = await postForm(ti, "/introspect", { token: bearer }, rsClient);
    expect(plain.body.token_type).toBe("Bearer");
    expect(plain.body.cnf).toBeUndefined();
  });
});
