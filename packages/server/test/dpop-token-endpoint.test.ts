/**
 * DPoP at the token endpoint (RFC 9449 §4, §5): proofs checked in full, DPoP-bound access
 * tokens, public clients' refresh tokens bound to the key, and a stolen bound refresh token
 * that neither refreshes nor disturbs its owner's session.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeClientBody, redeem, signIn } from "./browser-flow.ts";
import { type DpopKey, type ProofOptions, dpopKey, makeProof, rawRequest } from "./dpop-keys.ts";
import { DATABASES, ManualClock, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type FormInput,
  type TestClient,
  type TestUser,
  auditEvents,
  createClient,
  createUser,
  decodeJwt,
  encodeForm,
  expectOAuthError,
  family,
  familyOf,
  liveTokens,
  postForm,
  snapshot,
  tokenRow,
} from "./helpers.ts";

const CALLBACK = "https://app.example.test/callback";

describe.each(DATABASES)("DPoP at the token endpoint on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let app: TestClient;
  let user: TestUser;
  let key: DpopKey;
  let other: DpopKey;

  const proof = (k: DpopKey, o: Partial<ProofOptions> = {}) =>
    makeProof(k, { htu: `${ti.url}/token`, now: clock.now(), ...o });
  const tokenWith = async (params: FormInput, client: TestClient, dpop?: string | Promise<string>) =>
    postForm(ti, "/token", params, client, dpop ? { dpop: await dpop } : {});
  const passwordLogin = (client: TestClient, dpop?: string | Promise<string>) =>
    tokenWith({ grant_type: "password", username: user.username, password: user.password }, client, dpop);
  const refreshWith = (client: TestClient, rt: string, dpop?: string | Promise<string>) =>
    tokenWith({ grant_type: "refresh_token", refresh_token: rt }, client, dpop);

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
    app = await createClient(ti);
    user = await createUser(ti);
    key = await dpopKey("ES256");
    other = await dpopKey("ES256");
  });
  afterAll(() => ti?.close());

  it("a password login with a proof gets a DPoP-bound access token and a refresh token bound to the key", async () => {
    const res = await passwordLogin(app, proof(key));
    expect(res.status, res.text).toBe(200);
    expect(res.body.token_type).toBe("DPoP");
    expect(res.headers.get("dpop-nonce")).toMatch(/^[A-Za-z0-9_-]{30,}$/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(decodeJwt(res.body.access_token).payload.cnf).toEqual({ jkt: key.jkt });
    const fam = await familyOf(ti.db, res.body.refresh_token);
    const { rows } = await ti.db.query<{ dpop_jkt: string }>("SELECT dpop_jkt FROM families WHERE id = $1", [
      fam,
    ]);
    expect(rows[0]!.dpop_jkt).toBe(key.jkt);

    // Without a proof: a Bearer token, no binding, no nonce.
    const plain = await passwordLogin(app);
    expect(plain.body.token_type).toBe("Bearer");
    expect(plain.headers.get("dpop-nonce")).toBeNull();
    expect(decodeJwt(plain.body.access_token).payload.cnf).toBeUndefined();
  });

  it("refreshes a bound family only with the same key; without it nothing changes and the owner carries on", async () => {
    const first = (await passwordLogin(app, proof(key))).body;
    const fam = await familyOf(ti.db, first.refresh_token);
    const before = await snapshot(ti.db);

    // The thief: the token without any proof, then with a key of their own.
    expectOAuthError(await refreshWith(app, first.refresh_token), 400, "invalid_grant");
    expectOAuthError(await refreshWith(app, first.refresh_token, proof(other)), 400, "invalid_grant");
    expect(await snapshot(ti.db)).toBe(before);

    const second = await refreshWith(app, first.refresh_token, proof(key));
    expect(second.status, second.text).toBe(200);
    expect(second.body.token_type).toBe("DPoP");
    expect(second.body.refresh_token).not.toBe(first.refresh_token);
    expect(decodeJwt(second.body.access_token).payload.cnf).toEqual({ jkt: key.jkt });

    // Long after the grace window, the thief presents the old (rotated) token: with the right
    // key that would be reuse and end the family; without it, it is refused and changes nothing.
    clock.advance(120);
    expectOAuthError(await refreshWith(app, first.refresh_token, proof(other)), 400, "invalid_grant");
    expectOAuthError(await refreshWith(app, first.refresh_token), 400, "invalid_grant");
    expect((await family(ti.db, fam))?.revoked_at).toBeNull();
    expect(await auditEvents(ti.db, "refresh_token_reuse", fam)).toHaveLength(0);
    const third = await refreshWith(app, second.body.refresh_token, proof(key));
    expect(third.status, third.text).toBe(200);
    expect(await liveTokens(ti.db, fam)).toBe(1);

    // The owner's own key presenting a used token is still reuse.
    expectOAuthError(await refreshWith(app, first.refresh_token, proof(key)), 400, "invalid_grant");
    expect((await family(ti.db, fam))?.revoked_reason).toBe("refresh_token_reuse");
  });

  it("a retry inside the grace window with the same key gets the same pair; another key does not", async () => {
    const first = (await passwordLogin(app, proof(key))).body;
    const a = await refreshWith(app, first.refresh_token, proof(key));
    expect(a.status, a.text).toBe(200);
    const b = await refreshWith(app, first.refresh_token, proof(key));
    expect(b.status, b.text).toBe(200);
    expect(b.body.refresh_token).toBe(a.body.refresh_token);
    expect(b.body.access_token).toBe(a.body.access_token);
    expect(b.body.token_type).toBe("DPoP");
    expectOAuthError(await refreshWith(app, first.refresh_token, proof(other)), 400, "invalid_grant");
    expect((await family(ti.db, await familyOf(ti.db, first.refresh_token)))?.revoked_at).toBeNull();
  });

  it("concurrent refreshes with the right and a wrong key: the right ones share one successor, the wrong ones change nothing", async () => {
    const first = (await passwordLogin(app, proof(key))).body;
    const fam = await familyOf(ti.db, first.refresh_token);
    const proofs = await Promise.all(Array.from({ length: 8 }, (_, i) => proof(i % 2 === 0 ? key : other)));
    const results = await Promise.all(proofs.map((p) => refreshWith(app, first.refresh_token, p)));
    const good = results.filter((_, i) => i % 2 === 0);
    const bad = results.filter((_, i) => i % 2 === 1);
    for (const r of good) expect(r.status, r.text).toBe(200);
    expect(new Set(good.map((r) => r.body.refresh_token)).size).toBe(1);
    for (const r of bad) expectOAuthError(r, 400, "invalid_grant");
    expect(await liveTokens(ti.db, fam)).toBe(1);
    expect((await family(ti.db, fam))?.revoked_at).toBeNull();
  });

  it("a non-rotating client's bound token slides only with its key", async () => {
    const steady = await createClient(ti, { rotate_refresh_tokens: false });
    const first = (await passwordLogin(steady, proof(key))).body;
    const row = await tokenRow(ti.db, first.refresh_token);
    expectOAuthError(await refreshWith(steady, first.refresh_token, proof(other)), 400, "invalid_grant");
    expect((await tokenRow(ti.db, first.refresh_token))?.expires_at).toEqual(row?.expires_at);
    clock.advance(5);
    const ok = await refreshWith(steady, first.refresh_token, proof(key));
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.refresh_token).toBeUndefined();
    expect(ok.body.token_type).toBe("DPoP");
  });

  it("the same proof twice is refused, also when sent concurrently", async () => {
    const p = await proof(key);
    const once = await passwordLogin(app, p);
    expect(once.status, once.text).toBe(200);
    expectOAuthError(await passwordLogin(app, p), 400, "invalid_dpop_proof");

    const q = await proof(key);
    const burst = await Promise.all(Array.from({ length: 6 }, () => passwordLogin(app, q)));
    expect(burst.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of burst.filter((r) => r.status !== 200)) expectOAuthError(r, 400, "invalid_dpop_proof");
  });

  it("refuses every malformed or mismatched proof with invalid_dpop_proof and changes nothing", async () => {
    const now = Math.floor(clock.now().getTime() / 1000);
    const { privateKey: hmacLike } = await dpopKey("ES256");
    const cases: Record<string, Promise<string> | string> = {
      "wrong typ": proof(key, { typ: "JWT" }),
      "htm GET": proof(key, { htm: "GET" }),
      "htu of another endpoint": proof(key, { htu: `${ti.url}/revoke` }),
      "htu of another host": proof(key, { htu: "https://elsewhere.example/token" }),
      "iat too old": proof(key, { iat: now - 61 }),
      "iat in the future": proof(key, { iat: now + 61 }),
      "no jti": proof(key, { jti: null }),
      "a private key in jwk": proof(key, { jwk: key.privateJwk }),
      "signature of another key": proof(key, { signWith: hmacLike }),
      "alg none": `${Buffer.from(JSON.stringify({ alg: "none", typ: "dpop+jwt", jwk: key.publicJwk })).toString("base64url")}.${Buffer.from(JSON.stringify({ htm: "POST", htu: `${ti.url}/token`, iat: now, jti: "x" })).toString("base64url")}.`,
      "not a JWT": "hello",
      "two proofs in one header": (async () => `${await proof(key)}, ${await proof(key)}`)(),
    };
    const before = await snapshot(ti.db);
    for (const [name, p] of Object.entries(cases)) {
      const res = await passwordLogin(app, p);
      expect(res.body?.error, `${name}: ${res.text}`).toBe("invalid_dpop_proof");
      expectOAuthError(res, 400, "invalid_dpop_proof");
    }
    expect(await snapshot(ti.db)).toBe(before);

    // HS256 over a symmetric jwk: never an allowed algorithm.
    const { SignJWT } = await import("jose");
    const secret = new Uint8Array(32).fill(7);
    const hs = await new SignJWT({ htm: "POST", htu: `${ti.url}/token`, iat: now, jti: "hs" })
      .setProtectedHeader({
        alg: "HS256",
        typ: "dpop+jwt",
        // A symmetric "key" in the header, which jose's types (rightly) do not allow.
        jwk: { kty: "oct", k: Buffer.from(secret).toString("base64url") } as never,
      })
      .sign(secret);
    expectOAuthError(await passwordLogin(app, hs), 400, "invalid_dpop_proof");

    // A query string on htu is ignored (RFC 9449 §4.3); within the window is fine.
    const ok = await passwordLogin(app, proof(key, { htu: `${ti.url}/token?x=1`, iat: now - 50 }));
    expect(ok.status, ok.text).toBe(200);
  });

  it("refuses two DPoP headers", async () => {
    const body = encodeForm({
      grant_type: "password",
      username: user.username,
      password: user.password,
      client_id: app.client_id,
    });
    const res = await rawRequest(
      `${ti.url}/token`,
      "POST",
      {
        "content-type": "application/x-www-form-urlencoded",
        dpop: [await proof(key), await proof(key)],
      },
      body,
    );
    expect(res.status, res.text).toBe(400);
    expect(res.body.error).toBe("invalid_dpop_proof");
  });

  it("accepts EdDSA, Ed25519 (oauth4webapi's name), RS256 and PS256 proofs", async () => {
    for (const alg of ["EdDSA", "Ed25519", "RS256", "PS256", "ES384"]) {
      const k = await dpopKey(alg);
      const res = await passwordLogin(app, proof(k));
      expect(res.status, `${alg}: ${res.text}`).toBe(200);
      expect(decodeJwt(res.body.access_token).payload.cnf.jkt).toBe(k.jkt);
    }
  });

  it("confidential clients: DPoP-bound access tokens, refresh tokens bound to client authentication only (RFC 9449 §5)", async () => {
    const conf = await createClient(ti, {
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["password", "refresh_token", "client_credentials"],
      scope: "read",
    });
    const res = await passwordLogin(conf, proof(key));
    expect(res.body.token_type).toBe("DPoP");
    const fam = await familyOf(ti.db, res.body.refresh_token);
    const { rows } = await ti.db.query<{ dpop_jkt: string | null }>(
      "SELECT dpop_jkt FROM families WHERE id = $1",
      [fam],
    );
    expect(rows[0]!.dpop_jkt).toBeNull();
    const plain = await refreshWith(conf, res.body.refresh_token);
    expect(plain.status, plain.text).toBe(200);
    expect(plain.body.token_type).toBe("Bearer");
    const bound = await refreshWith(conf, plain.body.refresh_token, proof(other));
    expect(bound.body.token_type).toBe("DPoP");
    expect(decodeJwt(bound.body.access_token).payload.cnf).toEqual({ jkt: other.jkt });

    const cc = await tokenWith({ grant_type: "client_credentials" }, conf, proof(key));
    expect(cc.status, cc.text).toBe(200);
    expect(cc.body.token_type).toBe("DPoP");
    expect(decodeJwt(cc.body.access_token).payload.cnf).toEqual({ jkt: key.jkt });
  });

  it("a client registered with dpop_bound_access_tokens must send a proof", async () => {
    const strict = await createClient(ti, { dpop_bound_access_tokens: true });
    const shown = await ti.admin("GET", `/admin/clients/${strict.client_id}`);
    expect(shown.body.dpop_bound_access_tokens).toBe(true);
    expectOAuthError(await passwordLogin(strict), 400, "invalid_dpop_proof");
    const ok = await passwordLogin(strict, proof(key));
    expect(ok.status, ok.text).toBe(200);
    expect(ok.body.token_type).toBe("DPoP");

    const bad = await ti.admin("PATCH", `/admin/clients/${strict.client_id}`, {
      dpop_bound_access_tokens: "yes",
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error_description).toBe("dpop_bound_access_tokens must be a boolean");
    const off = await ti.admin("PATCH", `/admin/clients/${strict.client_id}`, {
      dpop_bound_access_tokens: false,
    });
    expect(off.body.dpop_bound_access_tokens).toBe(false);
  });

  it("code flow: dpop_jkt binds the code to a key; the refresh returns an ID token of the same login", async () => {
    const web = await createClient(ti, codeClientBody([CALLBACK]));
    const flow = await signIn(ti, {
      client: web,
      user,
      redirectUri: CALLBACK,
      scope: "openid profile offline_access",
      extra: { dpop_jkt: key.jkt, nonce: "n-1" },
    });
    const code = flow.params.get("code")!;
    const wrong = await postForm(
      ti,
      "/token",
      { grant_type: "authorization_code", code, redirect_uri: CALLBACK, code_verifier: flow.pkce.verifier },
      web,
      { dpop: await proof(other) },
    );
    expectOAuthError(wrong, 400, "invalid_grant");

    const again = await signIn(ti, {
      client: web,
      user,
      jar: flow.jar,
      redirectUri: CALLBACK,
      scope: "openid profile offline_access",
      extra: { dpop_jkt: key.jkt, nonce: "n-2" },
    });
    const unproven = await redeem(ti, web, again.params.get("code")!, CALLBACK, again.pkce.verifier);
    expectOAuthError(unproven, 400, "invalid_grant");

    const third = await signIn(ti, {
      client: web,
      user,
      jar: flow.jar,
      redirectUri: CALLBACK,
      scope: "openid profile offline_access",
      extra: { dpop_jkt: key.jkt, nonce: "n-3" },
    });
    const res = await postForm(
      ti,
      "/token",
      {
        grant_type: "authorization_code",
        code: third.params.get("code")!,
        redirect_uri: CALLBACK,
        code_verifier: third.pkce.verifier,
      },
      web,
      { dpop: await proof(key) },
    );
    expect(res.status, res.text).toBe(200);
    expect(res.body.token_type).toBe("DPoP");
    const login = decodeJwt(res.body.id_token).payload;
    expect(login.nonce).toBe("n-3");

    clock.advance(30);
    const refreshed = await refreshWith(web, res.body.refresh_token, proof(key));
    expect(refreshed.status, refreshed.text).toBe(200);
    const idt = decodeJwt(refreshed.body.id_token).payload;
    expect(idt.sub).toBe(user.id);
    expect(idt.aud).toBe(web.client_id);
    expect(idt.sid).toBe(login.sid);
    expect(idt.auth_time).toBe(login.auth_time);
    expect(idt.iat).toBeGreaterThan(login.iat);
    expect(idt.nonce).toBeUndefined();
    expect(idt.preferred_username).toBe(user.username);

    // Narrowed to a scope without openid: no ID token.
    const narrowed = await tokenWith(
      { grant_type: "refresh_token", refresh_token: refreshed.body.refresh_token, scope: "offline_access" },
      web,
      proof(key),
    );
    expect(narrowed.status, narrowed.text).toBe(200);
    expect(narrowed.body.id_token).toBeUndefined();
  });

  it("a password session's refresh returns no ID token (there was none at login)", async () => {
    const first = (await passwordLogin(app)).body;
    const res = await refreshWith(app, first.refresh_token!);
    expect(res.status).toBe(200);
    expect(res.body.id_token).toBeUndefined();
  });

  it("announces dpop_signing_alg_values_supported in both discovery documents", async () => {
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
      const doc = await (await fetch(ti.url + path)).json();
      expect(doc.dpop_signing_alg_values_supported).toEqual(
        expect.arrayContaining(["ES256", "EdDSA", "RS256", "PS256"]),
      );
      expect(doc.dpop_signing_alg_values_supported).not.toContain("HS256");
    }
  });
});
