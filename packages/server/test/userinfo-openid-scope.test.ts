import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestIssuer, startTestIssuer } from "./harness.ts";
import { createClient, createUser, loginOk, userinfo } from "./helpers.ts";

/** OIDC Core §5.3: /userinfo answers only for access tokens that carry the openid scope. */
describe("/userinfo requires openid", () => {
  let ti: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer();
  });
  afterAll(() => ti?.close());

  it("a token without openid gets 403 insufficient_scope (RFC 6750 §3.1) naming the scope", async () => {
    const app = await createClient(ti, { scope: "openid profile api" });
    const user = await createUser(ti);
    const without = await loginOk(ti, app, user, { scope: "profile api" });
    const res = await userinfo(ti, without.access_token);
    expect(res.status, res.text).toBe(403);
    expect(res.body.error).toBe("insufficient_scope");
    const challenge = res.headers.get("www-authenticate") ?? "";
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain('scope="openid"');
    expect(res.body.preferred_username).toBeUndefined();

    const withOpenid = await loginOk(ti, app, user, { scope: "openid" });
    const ok = await userinfo(ti, withOpenid.access_token);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ sub: user.id, preferred_username: user.username });
  });
});
