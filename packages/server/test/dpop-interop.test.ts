/**
 * DPoP interoperability: oauth4webapi's `DPoP()` handle and openid-client's `getDPoPHandle`,
 * unmodified, against our issuer requiring nonces — code + PKCE, nonce retry, refresh with
 * rotation, the DPoP-bound token at /userinfo and at a guarded Fastify route (which asks for
 * its own nonce too). A stolen refresh token in another library instance's hands is useless.
 */
import Fastify, { type FastifyInstance } from "fastify";
import * as oauth from "oauth4webapi";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DpopNonces, createAccessTokenVerifier, requireAccessToken } from "../src/guard/index.ts";
import { CookieJar, browse, codeClientBody, hiddenField } from "./browser-flow.ts";
import { DATABASES, type TestIssuer, freePort, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  decodeJwt,
  family,
  familyOf,
} from "./helpers.ts";

const REGISTERED = "http://127.0.0.1/callback";
const CALLBACK = "http://127.0.0.1:49153/callback";

async function userSignsIn(url: URL, user: TestUser): Promise<URL> {
  const jar = new CookieJar();
  let page = await browse(jar, url.toString());
  for (let i = 0; i < 4 && page.status === 200; i++) {
    const login = page.html.includes('action="/authorize/login"');
    page = await browse(jar, new URL(login ? "/authorize/login" : "/authorize/consent", url).toString(), {
      csrf: hiddenField(page.html, "csrf"),
      request: hiddenField(page.html, "request"),
      ...(login ? { username: user.username, password: user.password } : { decision: "allow" }),
    });
  }
  expect(page.status, page.html).toBe(303);
  return new URL(page.location!);
}

/** What a client does on `use_dpop_nonce`: the handle has stored the nonce; try once more. */
async function withNonceRetry<T>(attempt: () => Promise<T>): Promise<{ value: T; retried: boolean }> {
  try {
    return { value: await attempt(), retried: false };
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    return { value: await attempt(), retried: true };
  }
}

describe.each(DATABASES)("DPoP interop with oauth4webapi and openid-client on %s", (kind) => {
  let ti: TestIssuer;
  let app: TestClient;
  let user: TestUser;
  let rs: FastifyInstance;
  let rsUrl: string;

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind, env: { EVERGREEN_DPOP_REQUIRE_NONCE: "1" } });
    app = await createClient(ti, codeClientBody([REGISTERED], { dpop_bound_access_tokens: true }));
    user = await createUser(ti);
    const port = await freePort();
    rsUrl = `http://127.0.0.1:${port}`;
    const verify = createAccessTokenVerifier({
      issuer: ti.config.issuer,
      audience: ti.config.audience,
      jwksUri: `${ti.url}/jwks`,
    });
    rs = Fastify();
    const nonces = new DpopNonces(Buffer.alloc(32, 5));
    rs.get(
      "/items",
      { preHandler: requireAccessToken(verify, { dpop: { publicUrl: rsUrl, nonces, requireNonce: true } }) },
      async (req) => ({ sub: req.accessToken!.sub, items: ["a"] }),
    );
    await rs.listen({ port, host: "127.0.0.1" });
  });
  afterAll(async () => {
    await rs?.close();
    await ti?.close();
  });

  it("oauth4webapi: code + PKCE with DPoP() and nonce retry, refresh with rotation, userinfo, guarded route", async () => {
    const issuer = new URL(ti.url);
    const opts = { [oauth.allowInsecureRequests]: true };
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, opts));
    expect(as.dpop_signing_alg_values_supported).toContain("ES256");
    const c: oauth.Client = { client_id: app.client_id };
    const auth = oauth.None();
    const keyPair = await oauth.generateKeyPair("ES256");
    const DPoP = oauth.DPoP(c, keyPair);

    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const authUrl = new URL(as.authorization_endpoint!);
    for (const [k, v] of Object.entries({
      client_id: c.client_id,
      redirect_uri: CALLBACK,
      response_type: "code",
      scope: "openid offline_access",
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    }))
      authUrl.searchParams.set(k, v);
    const params = oauth.validateAuthResponse(as, c, await userSignsIn(authUrl, user), state);
    // The first proof has no nonce: the issuer answers use_dpop_nonce before touching the code.
    const first = await withNonceRetry(async () =>
      oauth.processAuthorizationCodeResponse(
        as,
        c,
        await oauth.authorizationCodeGrantRequest(as, c, auth, params, CALLBACK, verifier, { ...opts, DPoP }),
        { expectedNonce: nonce, requireIdToken: true },
      ),
    );
    expect(first.retried).toBe(true);
    const tokens = first.value;
    expect(tokens.token_type).toBe("dpop");
    const jkt = decodeJwt(tokens.access_token).payload.cnf.jkt;
    expect(jkt).toBeTruthy();
    const fam = await familyOf(ti.db, tokens.refresh_token!);

    // The nonce is remembered by the handle: no retry needed now.
    const rotated = await oauth.processRefreshTokenResponse(
      as,
      c,
      await oauth.refreshTokenGrantRequest(as, c, auth, tokens.refresh_token!, { ...opts, DPoP }),
    );
    expect(rotated.refresh_token).not.toBe(tokens.refresh_token);
    expect(rotated.token_type).toBe("dpop");
    expect(oauth.getValidatedIdTokenClaims(rotated)?.sub).toBe(user.id);

    // A thief with the refresh token and a key of their own gets nothing, and changes nothing.
    const thief = oauth.DPoP(c, await oauth.generateKeyPair("ES256"));
    const stolen = await withNonceRetry(async () =>
      oauth.processRefreshTokenResponse(
        as,
        c,
        await oauth.refreshTokenGrantRequest(as, c, auth, rotated.refresh_token!, { ...opts, DPoP: thief }),
      ),
    ).catch((err) => err);
    expect(stolen).toBeInstanceOf(oauth.ResponseBodyError);
    expect((stolen as oauth.ResponseBodyError).error).toBe("invalid_grant");
    expect((await family(ti.db, fam))?.revoked_at).toBeNull();

    const info = await oauth.processUserInfoResponse(
      as,
      c,
      user.id,
      await oauth.userInfoRequest(as, c, rotated.access_token, { ...opts, DPoP }),
    );
    expect(info.sub).toBe(user.id);

    const resource = await withNonceRetry(() =>
      oauth.protectedResourceRequest(
        rotated.access_token,
        "GET",
        new URL(`${rsUrl}/items`),
        undefined,
        undefined,
        {
          ...opts,
          DPoP,
        },
      ),
    );
    expect(resource.value.status).toBe(200);
    expect(await resource.value.json()).toEqual({ sub: user.id, items: ["a"] });

    const next = await oauth.processRefreshTokenResponse(
      as,
      c,
      await oauth.refreshTokenGrantRequest(as, c, auth, rotated.refresh_token!, { ...opts, DPoP }),
    );
    expect(next.refresh_token).toBeTruthy();
  });

  it("openid-client: getDPoPHandle through code + PKCE, refresh with rotation, userinfo and a guarded route", async () => {
    const insecure = { execute: [client.allowInsecureRequests] };
    const config = await client.discovery(new URL(ti.url), app.client_id, undefined, client.None(), insecure);
    const DPoP = client.getDPoPHandle(config, await client.randomDPoPKeyPair());
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const authUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: CALLBACK,
      scope: "openid profile offline_access",
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
    });
    const callback = await userSignsIn(authUrl, user);
    const tokens = await client.authorizationCodeGrant(
      config,
      callback,
      { pkceCodeVerifier: verifier, expectedState: state },
      undefined,
      { DPoP },
    );
    expect(tokens.token_type).toBe("dpop");
    const idt = tokens.claims()!;

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!, undefined, { DPoP });
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(refreshed.claims()?.sid).toBe(idt.sid);
    expect(refreshed.claims()?.auth_time).toBe(idt.auth_time);

    // Without the handle: a DPoP-bound client cannot refresh at all, and the token survives.
    await expect(client.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({
      error: "invalid_dpop_proof",
    });

    const info = await client.fetchUserInfo(config, refreshed.access_token, idt.sub, { DPoP });
    expect(info.preferred_username).toBe(user.username);

    const res = await client
      .fetchProtectedResource(
        config,
        refreshed.access_token,
        new URL(`${rsUrl}/items`),
        "GET",
        undefined,
        undefined,
        {
          DPoP,
        },
      )
      .catch(async (err) => {
        if (!oauth.isDPoPNonceError(err)) throw err;
        return client.fetchProtectedResource(
          config,
          refreshed.access_token,
          new URL(`${rsUrl}/items`),
          "GET",
          undefined,
          undefined,
          { DPoP },
        );
      });
    expect(res.status).toBe(200);

    const again = await client.refreshTokenGrant(config, refreshed.refresh_token!, undefined, { DPoP });
    expect(again.access_token).toBeTruthy();
  });
});
