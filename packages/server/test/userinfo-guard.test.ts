import { generateKeyPairSync } from "node:crypto";
import { ManualClock } from "@evergreen/db";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAccessTokenVerifier } from "../src/guard/index.ts";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  decodeJwt,
  expectInvalidToken,
  loginOk,
  userinfo,
} from "./helpers.ts";

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

describe.each(DATABASES)("userinfo guard on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let app: TestClient;
  let user: TestUser;
  let good: { access_token: string; refresh_token?: string };

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
    app = await createClient(ti, { access_token_ttl: 600 });
    user = await createUser(ti);
    good = await loginOk(ti, app, user);
  });
  afterAll(() => ti?.close());

  /** Claims of a valid token, re-signed or altered by each test. */
  function claims(overrides: Record<string, unknown> = {}) {
    return { ...decodeJwt(good.access_token).payload, ...overrides };
  }
  function signWithIssuerKey(payload: Record<string, unknown>, header: Record<string, unknown> = {}) {
    const key = ti.issuer.ctx.keys.current();
    return new SignJWT(payload)
      .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: key.kid, ...header })
      .sign(key.privateKey);
  }

  it("the access token opens /userinfo", async () => {
    const res = await userinfo(ti, good.access_token);
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({
      sub: user.id,
      preferred_username: user.username,
      email: `${user.username}@example.test`,
    });
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  it("a correctly re-signed copy of a valid token is accepted (so the rejections below are specific)", async () => {
    const res = await userinfo(ti, await signWithIssuerKey(claims()));
    expect(res.status, res.text).toBe(200);
  });

  it("the refresh token does not open /userinfo", async () => {
    expectInvalidToken(await userinfo(ti, good.refresh_token!));
  });

  it("no credentials: 401 with a Bearer challenge and no error code", async () => {
    const res = await fetch(`${ti.url}/userinfo`);
    expect(res.status).toBe(401);
    const challenge = res.headers.get("www-authenticate") ?? "";
    expect(challenge).toMatch(/^Bearer realm=/);
    expect(challenge).not.toContain("error=");
  });

  it("an expired access token (clock moved past exp) is rejected", async () => {
    const fresh = await loginOk(ti, app, user);
    expect((await userinfo(ti, fresh.access_token)).status).toBe(200);
    clock.advance(601);
    try {
      const res = await userinfo(ti, fresh.access_token);
      expectInvalidToken(res);
      expect(res.headers.get("www-authenticate")).toContain("expired");
    } finally {
      clock.advance(-601);
    }
  });

  it("a tampered access token (payload changed, signature kept) is rejected", async () => {
    const [h, , s] = good.access_token.split(".");
    const forged = `${h}.${b64(claims({ sub: "00000000-0000-0000-0000-000000000001" }))}.${s}`;
    expectInvalidToken(await userinfo(ti, forged));
    // A flipped signature byte as well.
    const sig = Buffer.from(s!, "base64url");
    sig[0] = sig[0]! ^ 1;
    expectInvalidToken(
      await userinfo(ti, `${h}.${good.access_token.split(".")[1]}.${sig.toString("base64url")}`),
    );
  });

  it("garbage is rejected", async () => {
    expectInvalidToken(await userinfo(ti, "garbage"));
    expectInvalidToken(await userinfo(ti, "a.b.c"));
    expectInvalidToken(await userinfo(ti, `${b64({ alg: "EdDSA" })}.${b64({})}.`));
  });

  it("alg: none is rejected", async () => {
    const kid = ti.issuer.ctx.keys.current().kid;
    const unsigned = `${b64({ alg: "none", typ: "at+jwt", kid })}.${b64(claims())}.`;
    expectInvalidToken(await userinfo(ti, unsigned));
  });

  it("HS256 signed with the issuer's public key is rejected", async () => {
    const key = ti.issuer.ctx.keys.current();
    for (const secret of [
      Buffer.from(key.publicKey.export({ format: "pem", type: "spki" }) as string),
      Buffer.from(JSON.stringify(key.publicJwk)),
      Buffer.from(String(key.publicJwk.x), "base64url"),
    ]) {
      const forged = await new SignJWT(claims())
        .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: key.kid })
        .sign(new Uint8Array(secret));
      expectInvalidToken(await userinfo(ti, forged));
    }
  });

  it("a token signed by an unknown key (unknown kid) is rejected", async () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const forged = await new SignJWT(claims())
      .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: "not-a-known-kid" })
      .sign(privateKey);
    expectInvalidToken(await userinfo(ti, forged));
    // An attacker's key presented under the real kid fails the signature check too.
    const sameKid = await new SignJWT(claims())
      .setProtectedHeader({ alg: "EdDSA", typ: "at+jwt", kid: ti.issuer.ctx.keys.current().kid })
      .sign(privateKey);
    expectInvalidToken(await userinfo(ti, sameKid));
  });

  it("a wrong issuer, a wrong audience, a wrong typ or a missing claim is rejected", async () => {
    expectInvalidToken(await userinfo(ti, await signWithIssuerKey(claims({ iss: "https://evil.example" }))));
    expectInvalidToken(
      await userinfo(ti, await signWithIssuerKey(claims({ aud: "https://other-api.example" }))),
    );
    expectInvalidToken(await userinfo(ti, await signWithIssuerKey(claims(), { typ: "JWT" })));
    const { client_id: _drop, ...noClient } = claims();
    expectInvalidToken(await userinfo(ti, await signWithIssuerKey(noClient)));
  });

  it("a client_credentials token (subject is not a user) gets invalid_token at /userinfo", async () => {
    const svc = await createClient(ti, {
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["client_credentials"],
      // openid, so the subject check (not the scope check) is what refuses it
      scope: "openid api",
    });
    const res = await fetch(`${ti.url}/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${svc.client_id}:${svc.client_secret}`).toString("base64")}`,
      },
      body: "grant_type=client_credentials",
    });
    expect(res.status).toBe(200);
    const { access_token } = (await res.json()) as { access_token: string };
    expectInvalidToken(await userinfo(ti, access_token));
  });

  it("the exported guard verifies through the JWKS URL like a resource server", async () => {
    const verify = createAccessTokenVerifier({
      issuer: ti.config.issuer,
      audience: ti.config.audience,
      jwksUri: `${ti.url}/jwks`,
      clock,
    });
    const payload = await verify(`Bearer ${good.access_token}`);
    expect(payload.sub).toBe(user.id);
    await expect(verify(`Bearer ${good.refresh_token}`)).rejects.toMatchObject({ error: "invalid_token" });
    await expect(verify(`Bearer ${await signWithIssuerKey(claims({ aud: "x" }))}`)).rejects.toMatchObject({
      error: "invalid_token",
    });
    await expect(verify(undefined)).rejects.toMatchObject({ status: 401 });
  });
});
