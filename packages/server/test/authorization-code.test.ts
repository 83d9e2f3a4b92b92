import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar, authorizeUrl, browse, codeClientBody, pkcePair, redeem, signIn } from "./browser-flow.ts";
import { runJanitor } from "../src/janitor.ts";
import { DATABASES, ManualClock, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  decodeJwt,
  expectOAuthError,
  family,
  familyOf,
  refresh,
  refreshOk,
  sha256,
  snapshot,
} from "./helpers.ts";

const CALLBACK = "https://app.example.test/callback";

describe.each(DATABASES)("authorization code flow on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let app: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
    app = await createClient(ti, codeClientBody([CALLBACK], { client_name: "Todo app" }));
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  it("signs in, consents and returns a code with state and iss; the code buys a session", async () => {
    const flow = await signIn(ti, {
      client: app,
      user,
      redirectUri: CALLBACK,
      scope: "openid offline_access",
    });
    expect(flow.pages[0]).toContain("Sign in");
    expect(flow.pages[0]).toContain("Todo app");
    expect(flow.pages[1]).toContain("Allow");
    expect(`${flow.location.origin}${flow.location.pathname}`).toBe(CALLBACK);
    expect(flow.params.get("state")).toBe(flow.state);
    expect(flow.params.get("iss")).toBe(ti.config.issuer);
    const code = flow.params.get("code")!;
    expect(code).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // stored only as its hash
    const stored = await ti.db.query<{ hash: Buffer; redirect_uri: string }>(
      "SELECT hash, redirect_uri FROM authorization_codes WHERE client_id = $1",
      [app.client_id],
    );
    expect(stored.rows.map((r) => Buffer.from(r.hash).toString("hex"))).toContain(
      sha256(code).toString("hex"),
    );
    expect(JSON.stringify(stored.rows)).not.toContain(code);

    const res = await redeem(ti, app, code, CALLBACK, flow.pkce.verifier);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.body.token_type).toBe("Bearer");
    expect(res.body.scope).toBe("openid offline_access");
    expect(res.body.refresh_token).toMatch(/^egr_/);
    const at = decodeJwt(res.body.access_token).payload;
    expect(at.sub).toBe(user.id);
    expect(at.client_id).toBe(app.client_id);
    // the family came from the same path as password logins: it refreshes and rotates
    expect(at.sid).toBe(await familyOf(ti.db, res.body.refresh_token));
    const next = await refreshOk(ti, app, res.body.refresh_token);
    expect(next.refresh_token).not.toBe(res.body.refresh_token);
  });

  it("a code used twice fails and revokes the session the first use started", async () => {
    const flow = await signIn(ti, { client: app, user, redirectUri: CALLBACK });
    const code = flow.params.get("code")!;
    const first = await redeem(ti, app, code, CALLBACK, flow.pkce.verifier);
    expect(first.status, first.text).toBe(200);
    const fam = await familyOf(ti.db, first.body.refresh_token);
    const second = await redeem(ti, app, code, CALLBACK, flow.pkce.verifier);
    expectOAuthError(second, 400, "invalid_grant");
    expect((await family(ti.db, fam))?.revoked_reason).toBe("code_reuse");
    expectOAuthError(await refresh(ti, app, first.body.refresh_token), 400, "invalid_grant");
  });

  it("two concurrent redemptions of one code: at most one succeeds and its session is revoked", async () => {
    const flow = await signIn(ti, { client: app, user, redirectUri: CALLBACK });
    const code = flow.params.get("code")!;
    const results = await Promise.all(
      Array.from({ length: 4 }, () => redeem(ti, app, code, CALLBACK, flow.pkce.verifier)),
    );
    const ok = results.filter((r) => r.status === 200);
    expect(ok.length).toBeLessThanOrEqual(1);
    for (const r of results.filter((x) => x.status !== 200)) expectOAuthError(r, 400, "invalid_grant");
    for (const r of ok) {
      const fam = await familyOf(ti.db, r.body.refresh_token);
      expect((await family(ti.db, fam))?.revoked_at).not.toBeNull();
    }
  });

  it("a password change ends the browser login and voids the codes it issued", async () => {
    const jar = new CookieJar();
    const first = await signIn(ti, { client: app, user, redirectUri: CALLBACK, jar });
    // Signed in: a second request goes straight back to the app with a code, no login page.
    const again = await signIn(ti, { client: app, user, redirectUri: CALLBACK, jar });
    expect(again.pages.some((p) => p.includes('action="/authorize/login"'))).toBe(false);

    const changed = await ti.admin("PATCH", `/admin/users/${user.id}`, { password: `${user.password}-new` });
    expect(changed.status).toBe(200);

    // The code issued before the change buys nothing...
    const res = await redeem(ti, app, first.params.get("code")!, CALLBACK, first.pkce.verifier);
    expectOAuthError(res, 400, "invalid_grant");
    // ...and the cookie no longer signs the user in: the login page is shown again.
    const page = await browse(
      jar,
      authorizeUrl(ti, {
        response_type: "code",
        client_id: app.client_id,
        redirect_uri: CALLBACK,
        scope: "openid",
        state: "s",
        code_challenge: pkcePair().challenge,
        code_challenge_method: "S256",
      }),
    );
    expect(page.status).toBe(200);
    expect(page.html).toContain('action="/authorize/login"');
    user.password = `${user.password}-new`;
  });

  it("a code expires after 60 seconds", async () => {
    const flow = await signIn(ti, { client: app, user, redirectUri: CALLBACK });
    clock.advance(61);
    const res = await redeem(ti, app, flow.params.get("code")!, CALLBACK, flow.pkce.verifier);
    expectOAuthError(res, 400, "invalid_grant");
  });

  it("a code is bound to its client and redirect URI", async () => {
    const other = await createClient(ti, codeClientBody([CALLBACK]));
    const flow = await signIn(ti, { client: app, user, redirectUri: CALLBACK });
    const code = flow.params.get("code")!;
    const before = await snapshot(ti.db);
    // another client cannot redeem it (and does not use it up)
    expectOAuthError(await redeem(ti, other, code, CALLBACK, flow.pkce.verifier), 400, "invalid_grant");
    expect(await snapshot(ti.db)).toBe(before);
    // a different redirect URI fails, and the attempt uses the code up
    expectOAuthError(
      await redeem(ti, app, code, `${CALLBACK}/other`, flow.pkce.verifier),
      400,
      "invalid_grant",
    );
    expectOAuthError(await redeem(ti, app, code, CALLBACK, flow.pkce.verifier), 400, "invalid_grant");
  });

  it("an unknown client or an unregistered redirect URI gets an error page, never a redirect", async () => {
    const pkce = pkcePair();
    const base = { response_type: "code", code_challenge: pkce.challenge, code_challenge_method: "S256" };
    for (const params of [
      { ...base, client_id: "no-such-client", redirect_uri: CALLBACK },
      { ...base, client_id: app.client_id, redirect_uri: "https://evil.example.test/callback" },
      { ...base, client_id: app.client_id, redirect_uri: `${CALLBACK}?x=1` },
      { ...base, client_id: app.client_id },
      { ...base, redirect_uri: CALLBACK },
    ]) {
      const page = await browse(new CookieJar(), authorizeUrl(ti, params));
      expect(page.status, JSON.stringify(params)).toBe(400);
      expect(page.location).toBeUndefined();
      expect(page.headers.get("content-type")).toMatch(/^text\/html/);
      expect(page.html).toContain("not valid");
    }
  });

  it("other request errors go back to the app with error, state and iss", async () => {
    const pkce = pkcePair();
    const base = {
      client_id: app.client_id,
      redirect_uri: CALLBACK,
      state: "s-1",
      code_challenge: pkce.challenge,
      code_challenge_method: "S256",
    };
    const cases: [Record<string, string>, string][] = [
      [{ ...base, response_type: "token" }, "unsupported_response_type"],
      [{ ...base, response_type: "code", scope: "admin" }, "invalid_scope"],
      [{ ...base, response_type: "code", prompt: "none login" }, "invalid_request"],
      [{ ...base, response_type: "code", max_age: "-1" }, "invalid_request"],
      [{ ...base, response_type: "code", request: "eyJ" }, "request_not_supported"],
    ];
    for (const [params, error] of cases) {
      const page = await browse(new CookieJar(), authorizeUrl(ti, params));
      expect(page.status, error).toBe(303);
      const loc = new URL(page.location!);
      expect(`${loc.origin}${loc.pathname}`).toBe(CALLBACK);
      expect(loc.searchParams.get("error")).toBe(error);
      expect(loc.searchParams.get("state")).toBe("s-1");
      expect(loc.searchParams.get("iss")).toBe(ti.config.issuer);
    }
    const noCodeFlow = await createClient(ti, { redirect_uris: [CALLBACK] });
    const page = await browse(
      new CookieJar(),
      authorizeUrl(ti, { ...base, client_id: noCodeFlow.client_id, response_type: "code" }),
    );
    expect(new URL(page.location!).searchParams.get("error")).toBe("unauthorized_client");
  });

  it("native apps: loopback redirect on any port, private-use schemes exactly", async () => {
    const native = await createClient(
      ti,
      codeClientBody(["http://127.0.0.1/callback", "http://[::1]/cb", "com.example.todo:/oauth"]),
    );
    for (const uri of [
      "http://127.0.0.1:53124/callback",
      "http://[::1]:8123/cb",
      "com.example.todo:/oauth",
    ]) {
      const flow = await signIn(ti, { client: native, user, redirectUri: uri });
      expect(flow.location.toString().startsWith(uri), flow.location.toString()).toBe(true);
      const res = await redeem(ti, native, flow.params.get("code")!, uri, flow.pkce.verifier);
      expect(res.status, res.text).toBe(200);
    }
    const pkce = pkcePair();
    for (const uri of [
      "http://127.0.0.1:53124/other",
      "http://localhost:53124/callback",
      "https://127.0.0.1:53124/callback",
      "com.example.todo:/oauth/x",
    ]) {
      const page = await browse(
        new CookieJar(),
        authorizeUrl(ti, {
          response_type: "code",
          client_id: native.client_id,
          redirect_uri: uri,
          code_challenge: pkce.challenge,
          code_challenge_method: "S256",
        }),
      );
      expect(page.status, uri).toBe(400);
      expect(page.location).toBeUndefined();
    }
  });

  it("confidential clients authenticate to redeem a code", async () => {
    const web = await createClient(
      ti,
      codeClientBody([CALLBACK], { token_endpoint_auth_method: "client_secret_basic" }),
    );
    const flow = await signIn(ti, { client: web, user, redirectUri: CALLBACK });
    const code = flow.params.get("code")!;
    const unauthenticated = await redeem(ti, { ...web, method: "none" }, code, CALLBACK, flow.pkce.verifier);
    expectOAuthError(unauthenticated, 401, "invalid_client");
    const res = await redeem(ti, web, code, CALLBACK, flow.pkce.verifier);
    expect(res.status, res.text).toBe(200);
  });

  it("the janitor deletes expired codes and dead login sessions after the retention period", async () => {
    const flow = await signIn(ti, { client: app, user, redirectUri: CALLBACK });
    const count = async (table: string) =>
      (await ti.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n;
    expect(await count("authorization_codes")).toBeGreaterThan(0);
    expect(await count("login_sessions")).toBeGreaterThan(0);
    const kept = await runJanitor(ti.db, clock, 3600);
    expect(kept.codesDeleted).toBe(0);
    clock.advance(2 * 86400);
    const report = await runJanitor(ti.db, clock, 3600);
    expect(report.codesDeleted).toBeGreaterThan(0);
    expect(report.loginSessionsDeleted).toBeGreaterThan(0);
    expect(await count("authorization_codes")).toBe(0);
    expect(await count("login_sessions")).toBe(0);
    // a deleted code is simply unknown
    const res = await redeem(ti, app, flow.params.get("code")!, CALLBACK, flow.pkce.verifier);
    expectOAuthError(res, 400, "invalid_grant");
  });
});
