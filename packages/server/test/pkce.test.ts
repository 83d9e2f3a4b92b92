import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar, authorizeUrl, browse, codeClientBody, pkcePair, redeem, signIn } from "./browser-flow.ts";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  expectOAuthError,
  token,
} from "./helpers.ts";

const CALLBACK = "https://app.example.test/cb";

describe.each(DATABASES)("PKCE (RFC 7636) on %s", (kind) => {
  let ti: TestIssuer;
  let app: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind });
    app = await createClient(ti, codeClientBody([CALLBACK]));
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  const authorizeError = async (extra: Record<string, string>) => {
    const page = await browse(
      new CookieJar(),
      authorizeUrl(ti, { response_type: "code", client_id: app.client_id, redirect_uri: CALLBACK, ...extra }),
    );
    expect(page.status).toBe(303);
    return new URL(page.location!).searchParams;
  };

  it("refuses a request without a challenge, with plain, or with a malformed one", async () => {
    const { challenge } = pkcePair();
    expect((await authorizeError({})).get("error")).toBe("invalid_request");
    expect((await authorizeError({ code_challenge: challenge })).get("error")).toBe("invalid_request");
    const plain = await authorizeError({ code_challenge: challenge, code_challenge_method: "plain" });
    expect(plain.get("error")).toBe("invalid_request");
    expect(plain.get("error_description")).toMatch(/S256/);
    expect(
      (await authorizeError({ code_challenge: "short", code_challenge_method: "S256" })).get("error"),
    ).toBe("invalid_request");
  });

  it("a wrong or missing verifier does not redeem the code", async () => {
    const flow = await signIn(ti, { client: app, user, redirectUri: CALLBACK });
    const code = flow.params.get("code")!;
    const missing = await token(ti, { grant_type: "authorization_code", code, redirect_uri: CALLBACK }, app);
    expectOAuthError(missing, 400, "invalid_request");
    const wrong = await redeem(ti, app, code, CALLBACK, pkcePair().verifier);
    expectOAuthError(wrong, 400, "invalid_grant");
    // the failed attempt used the code up: even the right verifier fails now
    expectOAuthError(await redeem(ti, app, code, CALLBACK, flow.pkce.verifier), 400, "invalid_grant");
  });

  it("the verifier must be 43-128 unreserved characters", async () => {
    const flow = await signIn(ti, { client: app, user, redirectUri: CALLBACK });
    const res = await redeem(ti, app, flow.params.get("code")!, CALLBACK, "a b");
    expectOAuthError(res, 400, "invalid_grant");
  });
});
