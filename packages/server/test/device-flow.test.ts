import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar, browse, hiddenField } from "./browser-flow.ts";
import { DATABASES, ManualClock, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  decodeJwt,
  expectOAuthError,
  postForm,
  refreshOk,
  sha256,
  token,
} from "./helpers.ts";

const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

describe.each(DATABASES)("device authorization grant (RFC 8628) on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let tv: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
    tv = await createClient(ti, {
      client_name: "Living-room TV",
      token_endpoint_auth_method: "none",
      grant_types: [DEVICE_GRANT, "refresh_token"],
      scope: "openid offline_access",
    });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  const authorize = async (scope = "openid offline_access") => {
    const res = await postForm(ti, "/device_authorization", { scope }, tv);
    expect(res.status, res.text).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    return res.body as {
      device_code: string;
      user_code: string;
      verification_uri: string;
      verification_uri_complete: string;
      expires_in: number;
      interval: number;
    };
  };
  const poll = (deviceCode: string, client: TestClient = tv) =>
    token(ti, { grant_type: DEVICE_GRANT, device_code: deviceCode }, client);

  /** The person at the verification page on their phone. */
  async function userDecides(d: { verification_uri_complete: string; user_code: string }, decision: string) {
    const jar = new CookieJar();
    const page = await browse(jar, d.verification_uri_complete);
    expect(page.status).toBe(200);
    expect(page.html).toContain(`value="${d.user_code}"`);
    expect(page.html).toContain('<label for="user_code">');
    const consent = await browse(jar, `${ti.url}/device`, {
      csrf: hiddenField(page.html, "csrf"),
      user_code: d.user_code.toLowerCase(),
      username: user.username,
      password: user.password,
    });
    expect(consent.status, consent.html).toBe(200);
    expect(consent.html).toContain("Living-room TV");
    const done = await browse(jar, `${ti.url}/device/confirm`, {
      csrf: hiddenField(consent.html, "csrf"),
      user_code: hiddenField(consent.html, "user_code"),
      decision,
    });
    expect(done.status).toBe(200);
    return done;
  }

  it("the device polls, the user approves on another screen, the device gets a session", async () => {
    const d = await authorize();
    expect(d.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(d.verification_uri).toBe(`${ti.config.issuer}/device`);
    expect(d.expires_in).toBe(600);
    expect(d.interval).toBe(5);
    // stored only as hashes
    const stored = JSON.stringify(
      (await ti.db.query("SELECT * FROM device_codes WHERE hash = $1", [sha256(d.device_code)])).rows,
    );
    expect(stored).not.toContain(d.device_code);
    expect(stored).not.toContain(d.user_code.replace("-", ""));

    expectOAuthError(await poll(d.device_code), 400, "authorization_pending");
    const fast = await poll(d.device_code);
    expectOAuthError(fast, 400, "slow_down");
    clock.advance(10);
    expectOAuthError(await poll(d.device_code), 400, "authorization_pending");

    const done = await userDecides(d, "allow");
    expect(done.html).toContain("Device connected");
    clock.advance(10);
    const res = await poll(d.device_code);
    expect(res.status, res.text).toBe(200);
    expect(res.body.refresh_token).toMatch(/^egr_/);
    expect(decodeJwt(res.body.id_token).payload.sub).toBe(user.id);
    expect(decodeJwt(res.body.access_token).payload.client_id).toBe(tv.client_id);
    await refreshOk(ti, tv, res.body.refresh_token);
    // redeemed once
    clock.advance(10);
    expectOAuthError(await poll(d.device_code), 400, "invalid_grant");
  });

  it("a denied request answers access_denied; an expired one expired_token", async () => {
    const denied = await authorize();
    expect((await userDecides(denied, "deny")).html).toContain("denied");
    expectOAuthError(await poll(denied.device_code), 400, "access_denied");
    const late = await authorize();
    clock.advance(601);
    expectOAuthError(await poll(late.device_code), 400, "expired_token");
    // the person arriving late is told so
    const jar = new CookieJar();
    const page = await browse(jar, late.verification_uri_complete);
    const res = await browse(jar, `${ti.url}/device`, {
      csrf: hiddenField(page.html, "csrf"),
      user_code: late.user_code,
      username: user.username,
      password: user.password,
    });
    expect(res.status).toBe(400);
    expect(res.html).toContain("not valid or has expired");
    // and a forged form (no CSRF token of this browser) is refused
    const forged = await browse(new CookieJar(), `${ti.url}/device`, {
      csrf: "x",
      user_code: late.user_code,
    });
    expect(forged.status).toBe(403);
  });

  it("a wrong user code, another client's device code, a client without the grant", async () => {
    const d = await authorize();
    const jar = new CookieJar();
    const page = await browse(jar, `${ti.url}/device`);
    const wrong = await browse(jar, `${ti.url}/device`, {
      csrf: hiddenField(page.html, "csrf"),
      user_code: "BBBB-BBBB",
      username: user.username,
      password: user.password,
    });
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain("not valid or has expired");
    const other = await createClient(ti, {
      token_endpoint_auth_method: "none",
      grant_types: [DEVICE_GRANT],
      scope: "openid",
    });
    expectOAuthError(await poll(d.device_code, other), 400, "invalid_grant");
    const noGrant = await createClient(ti);
    expectOAuthError(await postForm(ti, "/device_authorization", {}, noGrant), 400, "unauthorized_client");
    expectOAuthError(
      await postForm(ti, "/device_authorization", { scope: "admin" }, tv),
      400,
      "invalid_scope",
    );
  });

  it("concurrent polls of an approved code: exactly one session", async () => {
    const d = await authorize();
    await userDecides(d, "allow");
    clock.advance(10);
    const results = await Promise.all(Array.from({ length: 4 }, () => poll(d.device_code)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) expectOAuthError(r, 400, "invalid_grant");
  });
});
