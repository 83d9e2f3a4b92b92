import { Writable } from "node:stream";
import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  basicAuth,
  createClient,
  createUser,
  encodeForm,
  expectOAuthError,
  login,
  loginOk,
  post,
  postForm,
  refresh,
  refreshOk,
} from "./helpers.ts";

describe.each(DATABASES)("log redaction on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  const lines: string[] = [];

  beforeAll(async () => {
    clock = new ManualClock();
    const stream = new Writable({
      write(chunk, _enc, done) {
        lines.push(...chunk.toString().split("\n").filter(Boolean));
        done();
      },
    });
    ti = await startTestIssuer({ database: kind, clock, logStream: stream, env: { LOG_LEVEL: "trace" } });
  });
  afterAll(() => ti?.close());

  it("after login, refresh, failed login, reuse and more, no log line holds a secret", async () => {
    const secrets: string[] = [ti.adminToken];
    const app = await createClient(ti, { refresh_token_reuse_grace: 0 });
    const conf = await createClient(ti, { token_endpoint_auth_method: "client_secret_basic" });
    const post_ = await createClient(ti, { token_endpoint_auth_method: "client_secret_post" });
    secrets.push(
      conf.client_secret!,
      post_.client_secret!,
      basicAuth(conf.client_id, conf.client_secret!).slice(6),
    );
    const user = await createUser(ti);
    secrets.push(user.password);

    // login and refresh
    const t1 = await loginOk(ti, app, user);
    const t2 = await refreshOk(ti, app, t1.refresh_token!);
    const c1 = await loginOk(ti, conf, user);
    const c2 = await loginOk(ti, post_, user);
    secrets.push(t1.access_token, t1.refresh_token!, t2.access_token, t2.refresh_token!);
    secrets.push(c1.access_token, c1.refresh_token!, c2.access_token, c2.refresh_token!);

    // failed login with a password that must not appear either
    const wrongPassword = "Wr0ng-but-Secret-Password!";
    secrets.push(wrongPassword);
    expectOAuthError(await login(ti, app, { ...user, password: wrongPassword }), 400, "invalid_grant");

    // reuse of the rotated token (grace 0): detected and logged, without the token
    clock.advance(1);
    expectOAuthError(await refresh(ti, app, t1.refresh_token!), 400, "invalid_grant");

    // wrong client secrets, userinfo with tokens, revocation and introspection
    const wrongSecret = "egs_this-is-a-wrong-secret-value";
    secrets.push(wrongSecret);
    expectOAuthError(await login(ti, { ...conf, client_secret: wrongSecret }, user), 401, "invalid_client");
    await fetch(`${ti.url}/userinfo`, { headers: { authorization: `Bearer ${c1.access_token}` } });
    await fetch(`${ti.url}/userinfo`, { headers: { authorization: `Bearer ${c1.refresh_token}` } });
    await postForm(ti, "/introspect", { token: c1.refresh_token! }, conf);
    await postForm(ti, "/revoke", { token: c2.refresh_token! }, post_);
    // secrets in a query string and in a JSON body (both rejected) are not logged
    await post(`${ti.url}/token?refresh_token=${c1.refresh_token}&password=${user.password}`, "", {
      "content-type": "application/x-www-form-urlencoded",
    });
    await post(
      `${ti.url}/token`,
      JSON.stringify({ password: user.password, refresh_token: c1.refresh_token }),
      {
        "content-type": "application/json",
      },
    );
    await post(
      `${ti.url}/token`,
      encodeForm({ grant_type: "password", password: [user.password, user.password] }),
      {
        "content-type": "application/x-www-form-urlencoded",
      },
    );
    // the admin API with a password in its body
    await ti.admin("PATCH", `/admin/users/${user.id}`, { password: "another-Secret-Passw0rd" });
    secrets.push("another-Secret-Passw0rd");

    // logging was on and captured requests (otherwise this test would prove nothing)
    expect(lines.length).toBeGreaterThan(20);
    expect(lines.some((l) => l.includes('"url":"/token"'))).toBe(true);
    const reuse = lines.filter((l) => l.includes("refresh_token_reuse"));
    expect(reuse.length).toBe(1);
    expect(reuse[0]).toContain('"family_id"');

    for (const secret of secrets) {
      const leaking = lines.filter((l) => l.includes(secret));
      expect(leaking, `a log line contains a secret (${secret.slice(0, 6)}…)`).toEqual([]);
    }
    // nor any refresh token or client secret by prefix
    expect(lines.filter((l) => /egr_[\w-]{20}|egs_[\w-]{20}/.test(l))).toEqual([]);
  });
});
