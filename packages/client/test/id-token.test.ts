/** validateIdToken (WebCrypto only) against ID tokens of the real issuer, EdDSA and ES256. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeClientBody, redeem, signIn } from "../../server/test/browser-flow.ts";
import { type TestIssuer, startTestIssuer } from "../../server/test/harness.ts";
import { type TestClient, type TestUser, createClient, createUser } from "../../server/test/helpers.ts";
import { validateIdToken } from "../src/index.ts";

const CALLBACK = "https://app.example.test/cb";

describe.each(["EdDSA", "ES256"])("validateIdToken with %s", (alg) => {
  let ti: TestIssuer;
  let app: TestClient;
  let user: TestUser;
  let idToken: string;

  beforeAll(async () => {
    ti = await startTestIssuer({ env: { EVERGREEN_SIGNING_ALG: alg } });
    app = await createClient(ti, codeClientBody([CALLBACK], { skip_consent: true }));
    user = await createUser(ti);
    const flow = await signIn(ti, { client: app, user, redirectUri: CALLBACK, extra: { nonce: "n-123" } });
    const res = await redeem(ti, app, flow.params.get("code")!, CALLBACK, flow.pkce.verifier);
    idToken = res.body.id_token;
  });
  afterAll(() => ti?.close());

  const expected = () => ({
    issuer: ti.url,
    clientId: app.client_id,
    nonce: "n-123",
    jwksUri: `${ti.url}/jwks`,
  });

  it("accepts the issuer's token and returns its claims", async () => {
    const claims = await validateIdToken(idToken, expected());
    expect(claims.sub).toBe(user.id);
  });

  it("rejects a changed payload, another audience, another nonce, an expired token", async () => {
    const [h, p, s] = idToken.split(".");
    const payload = JSON.parse(Buffer.from(p!, "base64url").toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: "someone-else" })).toString("base64url")}.${s}`;
    await expect(validateIdToken(forged, expected())).rejects.toThrow(/signature/);
    await expect(validateIdToken(idToken, { ...expected(), clientId: "other" })).rejects.toThrow(/aud/);
    await expect(validateIdToken(idToken, { ...expected(), nonce: "n-456" })).rejects.toThrow(/nonce/);
    await expect(
      validateIdToken(idToken, { ...expected(), now: () => (payload.exp + 3600) * 1000 }),
    ).rejects.toThrow(/expired/);
    await expect(validateIdToken(`${h}.${p}`, expected())).rejects.toThrow(/JWS/);
  });
});
