/**
 * Pushed authorization requests (RFC 9126): the client posts its request to /par, sends the
 * browser to /authorize with only client_id and request_uri. Driven by oauth4webapi and
 * openid-client, plus the refusals: bad requests, another client's or an expired request_uri.
 */
import * as oauth from "oauth4webapi";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runJanitor } from "../src/janitor.ts";
import { CookieJar, browse, codeClientBody, hiddenField, pkcePair } from "./browser-flow.ts";
import { DATABASES, ManualClock, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  expectOAuthError,
  postForm,
} from "./helpers.ts";

const REGISTERED = "http://127.0.0.1/callback";
const CALLBACK = "http://127.0.0.1:49154/callback";

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

describe.each(DATABASES)("pushed authorization requests on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let app: TestClient;
  let web: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
    app = await createClient(ti, codeClientBody([REGISTERED]));
    web = await createClient(
      ti,
      codeClientBody([REGISTERED], { token_endpoint_auth_method: "client_secret_basic" }),
    );
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  const push = (c: TestClient, extra: Record<string, string> = {}) =>
    postForm(
      ti,
      "/par",
      {
        response_type: "code",
        redirect_uri: CALLBACK,
        scope: "openid offline_access",
        code_challenge: pkcePair().challenge,
        code_challenge_method: "S256",
        state: "s1",
        ...extra,
      },
      c,
    );

  it("oauth4webapi: push, sign in with request_uri, redeem the code", async () => {
    const issuer = new URL(ti.url);
    const opts = { [oauth.allowInsecureRequests]: true };
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, opts));
    expect(as.pushed_authorization_request_endpoint).toBe(`${ti.url}/par`);
    const c: oauth.Client = { client_id: app.client_id };
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const pushed = await oauth.processPushedAuthorizationResponse(
      as,
      c,
      await oauth.pushedAuthorizationRequest(
        as,
        c,
        oauth.None(),
        {
          redirect_uri: CALLBACK,
          response_type: "code",
          scope: "openid offline_access",
          code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
          code_challenge_method: "S256",
          state,
        },
        opts,
      ),
    );
    expect(pushed.request_uri).toMatch(/^urn:ietf:params:oauth:request_uri:/);
    expect(pushed.expires_in).toBe(60);
    const authUrl = new URL(as.authorization_endpoint!);
    authUrl.searchParams.set("client_id", c.client_id);
    authUrl.searchParams.set("request_uri", pushed.request_uri);
    const params = oauth.validateAuthResponse(as, c, await userSignsIn(authUrl, user), state);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      c,
      await oauth.authorizationCodeGrantRequest(as, c, oauth.None(), params, CALLBACK, verifier, opts),
    );
    expect(tokens.refresh_token).toMatch(/^egr_/);
    expect(tokens.id_token).toBeTruthy();
  });

  it("openid-client: buildAuthorizationUrlWithPAR with a confidential client", async () => {
    const config = await client.discovery(
      new URL(ti.url),
      web.client_id,
      undefined,
      client.ClientSecretBasic(web.client_secret!),
      { execute: [client.allowInsecureRequests] },
    );
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = await client.buildAuthorizationUrlWithPAR(config, {
      redirect_uri: CALLBACK,
      scope: "openid offline_access",
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
    });
    expect([...url.searchParams.keys()].sort()).toEqual(["client_id", "request_uri"]);
    const tokens = await client.authorizationCodeGrant(config, await userSignsIn(url, user), {
      pkceCodeVerifier: verifier,
      expectedState: state,
    });
    expect(tokens.access_token).toBeTruthy();
    // The secret was never stored with the request.
    const { rows } = await ti.db.query<{ query: string }>("SELECT query FROM pushed_authorization_requests");
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.query).not.toContain(web.client_secret!);
  });

  it("refuses what /authorize would refuse, as JSON errors, and a wrong client secret", async () => {
    expectOAuthError(await push(app, { redirect_uri: "https://evil.example/cb" }), 400, "invalid_request");
    expectOAuthError(await push(app, { code_challenge_method: "plain" }), 400, "invalid_request");
    expectOAuthError(await push(app, { scope: "admin" }), 400, "invalid_scope");
    expectOAuthError(await push(app, { request_uri: "urn:x" }), 400, "invalid_request");
    expectOAuthError(await push({ ...web, client_secret: "wrong" }), 401, "invalid_client");
  });

  it("a request_uri works only for its own client and only for a minute; the janitor removes it", async () => {
    const res = await push(app);
    expect(res.status, res.text).toBe(201);
    const uri = res.body.request_uri as string;
    const open = (clientId: string) =>
      browse(
        new CookieJar(),
        `${ti.url}/authorize?client_id=${clientId}&request_uri=${encodeURIComponent(uri)}`,
      );
    const foreign = await open(web.client_id);
    expect(foreign.status).toBe(400);
    expect(foreign.location).toBeUndefined();
    expect((await open(app.client_id)).status).toBe(200); // the login page
    clock.advance(61);
    const late = await open(app.client_id);
    expect(late.status).toBe(400);
    expect(late.html).toContain("expired");
    await runJanitor(ti.db, clock, 3600);
    const { rows } = await ti.db.query("SELECT 1 FROM pushed_authorization_requests WHERE client_id = $1", [
      app.client_id,
    ]);
    expect(rows).toHaveLength(0);
  });

  it("a client with require_pushed_authorization_requests is sent back with invalid_request unless it pushed", async () => {
    const strict = await createClient(
      ti,
      codeClientBody([REGISTERED], { require_pushed_authorization_requests: true }),
    );
    const shown = await ti.admin("GET", `/admin/clients/${strict.client_id}`);
    expect(shown.body.require_pushed_authorization_requests).toBe(true);
    const direct = await browse(
      new CookieJar(),
      `${ti.url}/authorize?${new URLSearchParams({
        client_id: strict.client_id,
        response_type: "code",
        redirect_uri: CALLBACK,
        scope: "openid",
        state: "direct",
        code_challenge: pkcePair().challenge,
        code_challenge_method: "S256",
      })}`,
    );
    expect(direct.status).toBe(303);
    const back = new URL(direct.location!);
    expect(back.searchParams.get("error")).toBe("invalid_request");
    expect(back.searchParams.get("state")).toBe("direct");

    const pushed = await push(strict);
    expect(pushed.status, pushed.text).toBe(201);
    const page = await browse(
      new CookieJar(),
      `${ti.url}/authorize?client_id=${strict.client_id}&request_uri=${encodeURIComponent(pushed.body.request_uri)}`,
    );
    expect(page.status).toBe(200);
    expect(page.html).toContain('action="/authorize/login"');
    const bad = await ti.admin("PATCH", `/admin/clients/${strict.client_id}`, {
      require_pushed_authorization_requests: 1,
    });
    expect(bad.status).toBe(400);
  });
});
