import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type HttpResult,
  createClient,
  createUser,
  expectOAuthError,
  loginOk,
  postForm,
  snapshot,
  userinfo,
} from "./helpers.ts";

function expect429(res: HttpResult) {
  expectOAuthError(res, 429, "too_many_requests");
  expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
}

/** /revoke, /introspect and /userinfo each have a per-address budget (they had none). */
describe("rate limits on /revoke, /introspect and /userinfo", () => {
  let ti: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer({ env: { EVERGREEN_RATE_LIMIT_ENDPOINT_PER_IP: "3" } });
  });
  afterAll(() => ti?.close());

  it("each answers 429 with Retry-After past its budget, independently of the others and of /token", async () => {
    const app = await createClient(ti);
    const rs = await createClient(ti, {
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["client_credentials"],
    });
    const user = await createUser(ti);
    const session = await loginOk(ti, app, user);

    for (let i = 0; i < 3; i++)
      expect((await postForm(ti, "/revoke", { token: `egr_unknown${i}` }, app)).status).toBe(200);
    const before = await snapshot(ti.db);
    expect429(await postForm(ti, "/revoke", { token: session.refresh_token! }, app));
    expect(await snapshot(ti.db)).toBe(before); // the refused revocation did nothing

    for (let i = 0; i < 3; i++)
      expect((await postForm(ti, "/introspect", { token: "x" }, rs)).status).toBe(200);
    expect429(await postForm(ti, "/introspect", { token: session.access_token }, rs));

    for (let i = 0; i < 3; i++) expect((await userinfo(ti, session.access_token)).status).toBe(200);
    const refused = await fetch(`${ti.url}/userinfo`, {
      headers: { authorization: `Bearer ${session.access_token}` },
    });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBeTruthy();

    // /token keeps its own budget
    await loginOk(ti, app, user);
  });
});
