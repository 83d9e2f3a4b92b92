/**
 * The SDK's DPoP against Evergreen's own issuer (token endpoint and /userinfo), with server
 * nonces required: redirect sign-in with a proof, DPoP-bound tokens, nonce retries, one refresh
 * for many requests, and a stolen refresh token refused. Skipped, with a message, while the
 * issuer does not announce DPoP (`dpop_signing_alg_values_supported`).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createSession,
  discover,
  dpopFetch,
  type FetchLike,
  memoryDpopKeys,
  memoryStorage,
  refreshTokens,
  TokenEndpointError,
} from "../src/index.ts";
import { type IssuerFixture, PASSWORD, startIssuerFixture, TOKEN_TTL } from "./support/issuer.ts";
import { signInAt } from "./support/sign-in.ts";

const REDIRECT_URI = "https://app.example.test/callback";

let fixture: IssuerFixture;
let supported = false;
beforeAll(async () => {
  fixture = await startIssuerFixture({ EVERGREEN_DPOP_REQUIRE_NONCE: "1" });
  const metadata = await discover(fixture.issuer.url);
  supported = Array.isArray(metadata["dpop_signing_alg_values_supported"]);
  if (!supported) console.warn("SKIPPED Evergreen DPoP tests: this issuer does not announce DPoP");
}, 120_000);
afterAll(() => fixture?.close());

const seen: { path: string; status: number; grantType: string | null; nonce: boolean }[] = [];
beforeEach(() => {
  seen.length = 0;
});
/** Records each request; the issuer runs on the test's time, which its `Date` must carry too. */
const recording: FetchLike = async (input, init) => {
  const request = new Request(input, init);
  const proof = request.headers.get("dpop");
  const real = await fetch(input, init);
  const headers = new Headers(real.headers);
  headers.set("date", fixture.time.date());
  const response = new Response(real.body, { status: real.status, headers });
  seen.push({
    path: new URL(request.url).pathname,
    status: response.status,
    grantType: init?.body instanceof URLSearchParams ? init.body.get("grant_type") : null,
    nonce: proof ? "nonce" in JSON.parse(Buffer.from(proof.split(".")[1]!, "base64url").toString()) : false,
  });
  return response;
};

describe("DPoP against Evergreen's issuer", { timeout: 120_000 }, () => {
  it("binds the session's tokens to its key, with nonce retries, one refresh for many requests", async (context) => {
    if (!supported) return context.skip();
    const clientId = await fixture.client({
      grant_types: ["authorization_code", "refresh_token"],
      redirect_uris: [REDIRECT_URI],
      scope: "openid offline_access",
      dpop_bound_access_tokens: true,
    });
    const keys = memoryDpopKeys();
    const session = createSession({
      issuer: fixture.issuer.url,
      clientId,
      clock: fixture.time.device(),
      storage: memoryStorage(),
      transactionStore: memoryStorage(),
      dpop: keys,
      fetch: recording,
      autoRefresh: false,
    });
    let url = "";
    await session.loginWithRedirect({
      redirectUri: REDIRECT_URI,
      navigate: (to) => {
        url = to;
      },
    });
    const { callback } = await signInAt(url, { username: fixture.username, password: PASSWORD });
    await session.handleRedirectCallback(callback);
    const tokens = (await session.getTokens())!;
    expect(tokens.tokenType).toBe("DPoP");
    expect(seen.filter((s) => s.path === "/token").map((s) => [s.status, s.nonce])).toEqual([
      [400, false],
      [200, true],
    ]);

    const me = await session.fetch(`${fixture.issuer.url}/userinfo`);
    expect(me.status).toBe(200);
    expect((await me.json()).sub).toBe(fixture.userId);

    // Stolen: the refresh token without the key is refused.
    const stolen = await refreshTokens(`${fixture.issuer.url}/token`, { clientId }, tokens.refreshToken!, {
      fetch: dpopFetch(memoryDpopKeys()),
    }).catch((e: unknown) => e);
    expect(stolen).toBeInstanceOf(TokenEndpointError);

    fixture.time.jump(TOKEN_TTL * 1000 + 1000);
    seen.length = 0;
    const statuses = await Promise.all(
      Array.from({ length: 10 }, () => session.fetch(`${fixture.issuer.url}/userinfo`).then((r) => r.status)),
    );
    expect(statuses).toEqual(Array(10).fill(200));
    expect(seen.filter((s) => s.grantType === "refresh_token" && s.status === 200)).toHaveLength(1);
    expect((await session.getTokens())?.tokenType).toBe("DPoP");
    session.dispose();
  });
});
