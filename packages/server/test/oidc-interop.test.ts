/**
 * Interoperability: the issuer driven by OAuth/OIDC client libraries nobody here wrote,
 * unmodified except `allowInsecureRequests` for http on loopback. The browser step is a
 * cookie jar following redirects and posting the login and consent forms.
 */
import * as oauth from "oauth4webapi";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar, browse, codeClientBody, hiddenField } from "./browser-flow.ts";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import { type TestClient, type TestUser, createClient, createUser, familyOf, family } from "./helpers.ts";

const REGISTERED = "http://127.0.0.1/callback";
// A native app's loopback listener, on whatever port it got (RFC 8252 §7.3).
const CALLBACK = "http://127.0.0.1:49152/callback";

/** Plays the user in a browser: from the authorization URL to the app's callback URL. */
async function userSignsIn(jar: CookieJar, url: URL, user: TestUser): Promise<URL> {
  let page = await browse(jar, url.toString());
  for (let i = 0; i < 4 && page.status === 200; i++) {
    const form: { path: string; fields: Record<string, string> } = page.html.includes(
      'action="/authorize/login"',
    )
      ? { path: "/authorize/login", fields: { username: user.username, password: user.password } }
      : { path: "/authorize/consent", fields: { decision: "allow" } };
    page = await browse(jar, new URL(form.path, url).toString(), {
      csrf: hiddenField(page.html, "csrf"),
      request: hiddenField(page.html, "request"),
      ...form.fields,
    });
  }
  expect(page.status, page.html).toBe(303);
  return new URL(page.location!);
}

describe.each(DATABASES)("interop with openid-client and oauth4webapi on %s", (kind) => {
  let ti: TestIssuer;
  let app: TestClient;
  let rs: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind });
    app = await createClient(ti, codeClientBody([REGISTERED], { client_name: "Native app" }));
    rs = await createClient(ti, {
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["client_credentials"],
      scope: "",
    });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  it("openid-client: discovery, code + PKCE, id_token, userinfo, refresh with rotation, introspection, revocation, logout", async () => {
    const insecure = { execute: [client.allowInsecureRequests] };
    const config = await client.discovery(new URL(ti.url), app.client_id, undefined, client.None(), insecure);
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const authUrl = client.buildAuthorizationUrl(config, {
      redirect_uri: CALLBACK,
      scope: "openid profile email offline_access",
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      nonce,
    });
    const jar = new CookieJar();
    const callback = await userSignsIn(jar, authUrl, user);
    const tokens = await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    const claims = tokens.claims()!;
    expect(claims.sub).toBe(user.id);
    expect(claims.aud).toBe(app.client_id);
    expect(claims.nonce).toBe(nonce);
    expect(tokens.refresh_token).toMatch(/^egr_/);

    const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(info.preferred_username).toBe(user.username);

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);

    const rsConfig = await client.discovery(
      new URL(ti.url),
      rs.client_id,
      undefined,
      client.ClientSecretBasic(rs.client_secret!),
      insecure,
    );
    const active = await client.tokenIntrospection(rsConfig, refreshed.access_token);
    expect(active.active).toBe(true);
    expect(active.sub).toBe(user.id);

    await client.tokenRevocation(config, refreshed.refresh_token!);
    expect((await client.tokenIntrospection(rsConfig, refreshed.access_token)).active).toBe(false);
    await expect(client.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({
      error: "invalid_grant",
    });

    const logout = client.buildEndSessionUrl(config, {
      id_token_hint: tokens.id_token!,
      post_logout_redirect_uri: CALLBACK,
      state: "after-logout",
    });
    const out = await browse(jar, logout.toString());
    expect(out.status).toBe(303);
    expect(out.location).toBe(`${CALLBACK}?state=after-logout`);
    // signed out: a silent sign-in now needs a login
    const silent = await browse(
      jar,
      client
        .buildAuthorizationUrl(config, {
          redirect_uri: CALLBACK,
          scope: "openid",
          code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
          code_challenge_method: "S256",
          prompt: "none",
        })
        .toString(),
    );
    expect(new URL(silent.location!).searchParams.get("error")).toBe("login_required");
  });

  it("oauth4webapi: discovery, code + PKCE, validated id_token, refresh with rotation, introspection, revocation", async () => {
    const issuer = new URL(ti.url);
    const opts = { [oauth.allowInsecureRequests]: true };
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, opts));
    const c: oauth.Client = { client_id: app.client_id };
    const auth = oauth.None();
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
    const callback = await userSignsIn(new CookieJar(), authUrl, user);
    const params = oauth.validateAuthResponse(as, c, callback, state);
    const response = await oauth.authorizationCodeGrantRequest(as, c, auth, params, CALLBACK, verifier, opts);
    const result = await oauth.processAuthorizationCodeResponse(as, c, response, {
      expectedNonce: nonce,
      requireIdToken: true,
    });
    const claims = oauth.getValidatedIdTokenClaims(result)!;
    expect(claims.sub).toBe(user.id);
    expect(claims.sid).toBeTruthy();
    expect(typeof claims.auth_time).toBe("number");

    const fam = await familyOf(ti.db, result.refresh_token!);
    const rotated = await oauth.processRefreshTokenResponse(
      as,
      c,
      await oauth.refreshTokenGrantRequest(as, c, auth, result.refresh_token!, opts),
    );
    expect(rotated.refresh_token).not.toBe(result.refresh_token);

    const rsClient: oauth.Client = { client_id: rs.client_id };
    const rsAuth = oauth.ClientSecretBasic(rs.client_secret!);
    const introspected = await oauth.processIntrospectionResponse(
      as,
      rsClient,
      await oauth.introspectionRequest(as, rsClient, rsAuth, rotated.refresh_token!, opts),
    );
    expect(introspected.active).toBe(false); // refresh tokens are introspectable only by their own client
    const atInfo = await oauth.processIntrospectionResponse(
      as,
      rsClient,
      await oauth.introspectionRequest(as, rsClient, rsAuth, rotated.access_token, opts),
    );
    expect(atInfo.active).toBe(true);

    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, c, auth, rotated.refresh_token!, opts),
    );
    expect((await family(ti.db, fam))?.revoked_at).not.toBeNull();
  });
});
