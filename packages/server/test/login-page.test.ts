import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CookieJar,
  authorizeUrl,
  browse,
  codeClientBody,
  hiddenField,
  pkcePair,
  redeem,
  signIn,
} from "./browser-flow.ts";
import { DATABASES, ManualClock, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  auditEvents,
  createClient,
  createUser,
  family,
  familyOf,
  sha256,
} from "./helpers.ts";

const CALLBACK = "https://app.example.test/callback";

describe.each(DATABASES)("login and consent pages on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let app: TestClient;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock, env: { EVERGREEN_RATE_LIMIT_FAILED_LOGINS: "3" } });
    app = await createClient(ti, codeClientBody([CALLBACK], { client_name: "Todo <app>" }));
  });
  afterAll(() => ti?.close());

  const start = (jar: CookieJar, extra: Record<string, string> = {}, client = app) =>
    browse(
      jar,
      authorizeUrl(ti, {
        response_type: "code",
        client_id: client.client_id,
        redirect_uri: CALLBACK,
        scope: "openid",
        state: "st",
        code_challenge: pkcePair().challenge,
        code_challenge_method: "S256",
        ...extra,
      }),
    );
  const loginForm = (page: { html: string }, username: string, password: string) => ({
    csrf: hiddenField(page.html, "csrf"),
    request: hiddenField(page.html, "request"),
    username,
    password,
  });
  const sessionCount = async () =>
    (await ti.db.query<{ n: number }>("SELECT count(*)::int AS n FROM login_sessions")).rows[0]!.n;

  it("the login page is self-contained, labelled, escaped and not frameable", async () => {
    const page = await start(new CookieJar(), { login_hint: 'ann"><script>' });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("cache-control")).toBe("no-store");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(page.html).toContain('<html lang="en">');
    expect(page.html).toContain('<label for="username">');
    expect(page.html).toContain('<label for="password">');
    expect(page.html).toContain('id="username"');
    expect(page.html).toContain('autocomplete="current-password"');
    // no external resources, no script
    expect(page.html).not.toMatch(/<script|<link|<img|src=|https?:\/\/(?!app\.example)/);
    // the client name and the login hint are escaped
    expect(page.html).toContain("Todo &lt;app&gt;");
    expect(page.html).toContain("ann&quot;&gt;&lt;script&gt;");
    expect(page.html).not.toContain("<script>");
  });

  it("a login without the CSRF cookie's token is refused and creates no session", async () => {
    const user = await createUser(ti);
    const jar = new CookieJar();
    const page = await start(jar);
    const before = await sessionCount();
    const forged = await browse(jar, `${ti.url}/authorize/login`, {
      ...loginForm(page, user.username, user.password),
      csrf: "A".repeat(43),
    });
    expect(forged.status).toBe(403);
    expect(forged.html).toContain("expired");
    const noCookie = await browse(
      new CookieJar(),
      `${ti.url}/authorize/login`,
      loginForm(page, user.username, user.password),
    );
    expect(noCookie.status).toBe(403);
    expect(await sessionCount()).toBe(before);
  });

  it("sets an HttpOnly, SameSite=Lax session cookie whose hash alone is stored", async () => {
    const user = await createUser(ti);
    const jar = new CookieJar();
    const page = await start(jar);
    const res = await fetch(`${ti.url}/authorize/login`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie: jar.header(), "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(loginForm(page, user.username, user.password)).toString(),
    });
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith("evergreen_session="))!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(cookie).not.toMatch(/Secure/); // the test issuer is http
    const value = cookie.split(";")[0]!.split("=")[1]!;
    const { rows } = await ti.db.query<{ hash: Buffer }>(
      "SELECT s.hash FROM login_sessions s JOIN users u ON u.id = s.user_id WHERE u.username = $1",
      [user.username],
    );
    expect(rows.map((r) => Buffer.from(r.hash).toString("hex"))).toEqual([sha256(value).toString("hex")]);
  });

  it("a wrong password shows an error, is audited, and locks the account after the limit", async () => {
    const user = await createUser(ti);
    const jar = new CookieJar();
    let page = await start(jar);
    for (let i = 0; i < 3; i++) {
      page = await browse(jar, `${ti.url}/authorize/login`, loginForm(page, user.username, "wrong"));
      expect(page.status).toBe(401);
      expect(page.html).toContain('role="alert"');
      expect(page.html).toContain("Incorrect username or password");
      expect(page.html).not.toContain("wrong");
    }
    expect((await auditEvents(ti.db, "login_failed")).filter((e) => e.user_id === user.id)).toHaveLength(3);
    // locked: even the right password is refused until the window ends
    page = await browse(jar, `${ti.url}/authorize/login`, loginForm(page, user.username, user.password));
    expect(page.status).toBe(429);
    expect(page.headers.get("retry-after")).toBeTruthy();
    clock.advance(16 * 60);
    page = await browse(jar, `${ti.url}/authorize/login`, loginForm(page, user.username, user.password));
    expect(page.status).toBe(200); // now the consent page
    expect(page.html).toContain('action="/authorize/consent"');
  });

  it("consent is remembered per client and scope; more scope asks again", async () => {
    const user = await createUser(ti);
    const first = await signIn(ti, { client: app, user, redirectUri: CALLBACK, scope: "openid" });
    expect(first.pages).toHaveLength(2);
    const again = await signIn(ti, {
      client: app,
      user,
      redirectUri: CALLBACK,
      scope: "openid",
      jar: first.jar,
    });
    expect(again.pages).toHaveLength(0);
    expect(again.params.get("code")).toBeTruthy();
    const more = await signIn(ti, {
      client: app,
      user,
      redirectUri: CALLBACK,
      scope: "openid email",
      jar: first.jar,
    });
    expect(more.pages).toHaveLength(1);
    expect(more.pages[0]).toContain("See your email address");
    // another client still asks
    const other = await createClient(ti, codeClientBody([CALLBACK]));
    const otherFlow = await signIn(ti, {
      client: other,
      user,
      redirectUri: CALLBACK,
      scope: "openid",
      jar: first.jar,
    });
    expect(otherFlow.pages).toHaveLength(1);
  });

  it("denying consent returns access_denied to the app", async () => {
    const user = await createUser(ti);
    const flow = await signIn(ti, { client: app, user, redirectUri: CALLBACK, consent: false });
    expect(flow.params.get("error")).toBe("access_denied");
    expect(flow.params.get("state")).toBe(flow.state);
    expect(flow.params.get("code")).toBeNull();
  });

  it("first-party clients with skip_consent never show the consent page", async () => {
    const user = await createUser(ti);
    const firstParty = await createClient(ti, codeClientBody([CALLBACK], { skip_consent: true }));
    const flow = await signIn(ti, { client: firstParty, user, redirectUri: CALLBACK });
    expect(flow.pages).toHaveLength(1);
    expect(flow.pages[0]).toContain('action="/authorize/login"');
  });

  it("prompt=none answers login_required, then consent_required, then a code", async () => {
    const user = await createUser(ti);
    const jar = new CookieJar();
    const noSession = await start(jar, { prompt: "none" });
    expect(noSession.status).toBe(303);
    expect(new URL(noSession.location!).searchParams.get("error")).toBe("login_required");
    // sign in, but leave at the consent page
    const page = await start(jar);
    const consent = await browse(
      jar,
      `${ti.url}/authorize/login`,
      loginForm(page, user.username, user.password),
    );
    expect(consent.html).toContain('action="/authorize/consent"');
    const noConsent = await start(jar, { prompt: "none" });
    expect(new URL(noConsent.location!).searchParams.get("error")).toBe("consent_required");
    await signIn(ti, { client: app, user, redirectUri: CALLBACK, scope: "openid", jar });
    const silent = await start(jar, { prompt: "none" });
    expect(silent.status).toBe(303);
    expect(new URL(silent.location!).searchParams.get("code")).toBeTruthy();
  });

  it("prompt=login and an exceeded max_age show the login page to a signed-in user; login_hint fills it", async () => {
    const user = await createUser(ti);
    const { jar } = await signIn(ti, { client: app, user, redirectUri: CALLBACK, scope: "openid" });
    const forced = await start(jar, { prompt: "login", login_hint: user.username });
    expect(forced.html).toContain('action="/authorize/login"');
    expect(forced.html).toContain(`value="${user.username}"`);
    const flow = await signIn(ti, {
      client: app,
      user,
      redirectUri: CALLBACK,
      scope: "openid",
      jar,
      extra: { prompt: "consent" },
    });
    expect(flow.pages).toHaveLength(1);
    expect(flow.pages[0]).toContain('action="/authorize/consent"');
    const within = await start(jar, { max_age: "300" });
    expect(within.status).toBe(303);
    clock.advance(301);
    const tooOld = await start(jar, { max_age: "300" });
    expect(tooOld.status).toBe(200);
    expect(tooOld.html).toContain('action="/authorize/login"');
    const reauth = await signIn(ti, {
      client: app,
      user,
      redirectUri: CALLBACK,
      scope: "openid",
      jar,
      extra: { max_age: "300" },
    });
    const res = await redeem(ti, app, reauth.params.get("code")!, CALLBACK, reauth.pkce.verifier);
    expect(res.status, res.text).toBe(200);
  });
});

describe.each(DATABASES)("end_session_endpoint (RP-initiated logout) on %s", (kind) => {
  let ti: TestIssuer;
  let app: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind });
    app = await createClient(ti, codeClientBody([CALLBACK]));
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  const silent = (jar: CookieJar) =>
    browse(
      jar,
      authorizeUrl(ti, {
        response_type: "code",
        client_id: app.client_id,
        redirect_uri: CALLBACK,
        scope: "openid",
        prompt: "none",
        code_challenge: pkcePair().challenge,
        code_challenge_method: "S256",
      }),
    );

  async function signedIn() {
    const flow = await signIn(ti, {
      client: app,
      user,
      redirectUri: CALLBACK,
      scope: "openid offline_access",
    });
    const res = await redeem(ti, app, flow.params.get("code")!, CALLBACK, flow.pkce.verifier);
    expect(res.status, res.text).toBe(200);
    return { jar: flow.jar, tokens: res.body };
  }

  it("with id_token_hint: ends the login session, returns to the app with state, keeps app sessions", async () => {
    const { jar, tokens } = await signedIn();
    const url = `${ti.url}/end-session?${new URLSearchParams({
      id_token_hint: tokens.id_token,
      post_logout_redirect_uri: CALLBACK,
      state: "bye",
    })}`;
    const res = await browse(jar, url);
    expect(res.status).toBe(303);
    expect(res.location).toBe(`${CALLBACK}?state=bye`);
    expect(new URL((await silent(jar)).location!).searchParams.get("error")).toBe("login_required");
    expect((await family(ti.db, await familyOf(ti.db, tokens.refresh_token)))?.revoked_at).toBeNull();
  });

  it("revoke_refresh_tokens=true also revokes the families this login started", async () => {
    const { jar, tokens } = await signedIn();
    const fam = await familyOf(ti.db, tokens.refresh_token);
    const url = `${ti.url}/end-session?${new URLSearchParams({
      id_token_hint: tokens.id_token,
      revoke_refresh_tokens: "true",
    })}`;
    const res = await browse(jar, url);
    expect(res.status).toBe(200);
    expect(res.html).toContain("signed out");
    expect((await family(ti.db, fam))?.revoked_reason).toBe("logout");
  });

  it("without a hint the user confirms on a CSRF-protected page", async () => {
    const { jar } = await signedIn();
    const ask = await browse(jar, `${ti.url}/end-session`);
    expect(ask.status).toBe(200);
    expect(ask.html).toContain("Sign out?");
    // a forged POST (no matching CSRF token) only shows the page again
    const forged = await browse(jar, `${ti.url}/end-session`, { confirm: "yes", csrf: "x", request: "" });
    expect(forged.html).toContain("Sign out?");
    expect((await silent(jar)).location).toContain("code=");
    const done = await browse(jar, `${ti.url}/end-session`, {
      confirm: "yes",
      csrf: hiddenField(ask.html, "csrf"),
      request: hiddenField(ask.html, "request"),
    });
    expect(done.html).toContain("signed out");
    expect(new URL((await silent(jar)).location!).searchParams.get("error")).toBe("login_required");
  });

  it("refuses an unregistered post_logout_redirect_uri or a forged hint with an error page", async () => {
    const { jar, tokens } = await signedIn();
    for (const params of [
      { id_token_hint: tokens.id_token as string, post_logout_redirect_uri: "https://evil.example.test/" },
      { post_logout_redirect_uri: CALLBACK },
      { id_token_hint: `${tokens.id_token.slice(0, -4)}AAAA` },
    ] as Record<string, string>[]) {
      const res = await browse(jar, `${ti.url}/end-session?${new URLSearchParams(params)}`);
      expect(res.status, JSON.stringify(params)).toBe(400);
      expect(res.location).toBeUndefined();
    }
    expect((await silent(jar)).location).toContain("code=");
  });
});

describe("cookies behind an https issuer", () => {
  let ti: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer({ env: { ISSUER: "https://login.example.test" } });
  });
  afterAll(() => ti?.close());

  it("are marked Secure", async () => {
    const app = await createClient(ti, codeClientBody([CALLBACK]));
    const user = await createUser(ti);
    const res = await fetch(
      authorizeUrl(ti, {
        response_type: "code",
        client_id: app.client_id,
        redirect_uri: CALLBACK,
        code_challenge: pkcePair().challenge,
        code_challenge_method: "S256",
      }),
    );
    const html = await res.text();
    const csrfCookie = res.headers.getSetCookie().find((c) => c.startsWith("evergreen_csrf="))!;
    expect(csrfCookie).toMatch(/; Secure/);
    const login = await fetch(`${ti.url}/authorize/login`, {
      method: "POST",
      redirect: "manual",
      headers: { cookie: csrfCookie.split(";")[0]!, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        csrf: hiddenField(html, "csrf"),
        request: hiddenField(html, "request"),
        username: user.username,
        password: user.password,
      }).toString(),
    });
    expect(login.status).toBe(200);
    const session = login.headers.getSetCookie().find((c) => c.startsWith("evergreen_session="))!;
    expect(session).toMatch(/HttpOnly/);
    expect(session).toMatch(/; Secure/);
  });
});
