/**
 * Browser redirect sign-in (loginWithRedirect / handleRedirectCallback) against the real issuer,
 * in Node: navigation and the transaction store are injected, and the user's part at the issuer
 * is a cookie jar posting its login and consent forms.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AuthorizationError,
  createSession,
  InvalidResponseError,
  memoryStorage,
  type SessionOptions,
  type TokenStorage,
} from "../src/index.ts";
import { type IssuerFixture, PASSWORD, startIssuerFixture } from "./support/issuer.ts";
import { signInAt } from "./support/sign-in.ts";

const REDIRECT_URI = "https://app.example.test/callback";

/** A transaction store whose entries the test can list. */
function inspectableStore(): TokenStorage & { keys(): string[]; values: Map<string, string> } {
  const values = new Map<string, string>();
  return {
    values,
    keys: () => [...values.keys()],
    get: (key) => values.get(key) ?? null,
    set: (key, value) => void values.set(key, value),
    remove: (key) => void values.delete(key),
  };
}

describe("redirect sign-in against the real issuer", { timeout: 120_000 }, () => {
  let fixture: IssuerFixture;
  let clientId: string;

  beforeAll(async () => {
    fixture = await startIssuerFixture();
    clientId = await fixture.client({
      grant_types: ["authorization_code", "refresh_token"],
      redirect_uris: [REDIRECT_URI],
      scope: "openid profile offline_access",
    });
  }, 120_000);
  afterAll(() => fixture?.close());

  const user = () => ({ username: fixture.username, password: PASSWORD });

  /** A session whose `loginWithRedirect` records the URL it would navigate to. */
  function redirectSession(extra: Partial<SessionOptions> = {}) {
    const transactionStore = inspectableStore();
    const session = createSession({
      issuer: fixture.issuer.url,
      clientId,
      clock: fixture.time.device(),
      storage: memoryStorage(),
      transactionStore,
      autoRefresh: false,
      ...extra,
    });
    const navigated: string[] = [];
    const navigate = (url: string) => void navigated.push(url);
    return { session, transactionStore, navigated, navigate };
  }

  it("sends the user to /authorize with PKCE S256, state, nonce and the options, then signs in from the callback", async () => {
    const { session, transactionStore, navigated, navigate } = redirectSession();
    await session.loginWithRedirect({
      redirectUri: REDIRECT_URI,
      prompt: "login",
      loginHint: fixture.username,
      maxAge: 600,
      navigate,
    });
    expect(navigated).toHaveLength(1);
    const url = new URL(navigated[0]!);
    expect(`${url.origin}${url.pathname}`).toBe(`${fixture.issuer.url}/authorize`);
    const q = url.searchParams;
    expect(q.get("response_type")).toBe("code");
    expect(q.get("client_id")).toBe(clientId);
    expect(q.get("redirect_uri")).toBe(REDIRECT_URI);
    expect(q.get("scope")).toBe("openid offline_access");
    expect(q.get("code_challenge_method")).toBe("S256");
    expect(q.get("code_challenge")).toMatch(/^[\w-]{43}$/);
    expect(q.get("state")).toMatch(/^[\w-]{43}$/);
    expect(q.get("nonce")).toMatch(/^[\w-]{43}$/);
    expect(q.get("state")).not.toBe(q.get("nonce"));
    expect([q.get("prompt"), q.get("login_hint"), q.get("max_age")]).toEqual([
      "login",
      fixture.username,
      "600",
    ]);
    // The verifier stays in the transaction store, never in the URL.
    expect(transactionStore.keys()).toHaveLength(1);
    const saved = JSON.parse(transactionStore.values.get(transactionStore.keys()[0]!)!);
    expect(saved).toMatchObject({
      issuer: fixture.issuer.url,
      redirectUri: REDIRECT_URI,
      state: q.get("state"),
    });
    expect(navigated[0]).not.toContain(saved.codeVerifier);

    const { callback, pages } = await signInAt(navigated[0]!, user());
    expect(pages[0]).toContain(`value="${fixture.username}"`); // login_hint prefilled the form
    expect(callback.startsWith(`${REDIRECT_URI}?`)).toBe(true);
    expect(await session.handleRedirectCallback(callback)).toBe(session);

    const tokens = await session.getTokens();
    expect(tokens?.refreshToken).toMatch(/^egr_/);
    expect(tokens?.idToken).toBeTruthy();
    const me = await session.fetch(`${fixture.issuer.url}/userinfo`);
    expect(me.status).toBe(200);
    expect((await me.json()).sub).toBe(fixture.userId);
    const before = tokens?.refreshToken;
    expect((await session.refresh()).refreshToken).not.toBe(before); // lives on the refresh token

    // One use: the transaction is gone, and the same callback again is refused before any exchange.
    expect(transactionStore.keys()).toEqual([]);
    await expect(session.handleRedirectCallback(callback)).rejects.toMatchObject({
      name: "AuthorizationError",
      code: "invalid_state",
    });
    session.dispose();
  });

  it("refuses a callback whose state, iss or nonce does not match, and stores nothing", async () => {
    for (const tamper of ["state", "iss", "no-iss", "nonce"] as const) {
      const { session, transactionStore, navigated, navigate } = redirectSession();
      await session.loginWithRedirect({ redirectUri: REDIRECT_URI, navigate });
      const { callback } = await signInAt(navigated[0]!, user());
      const url = new URL(callback);
      if (tamper === "state") url.searchParams.set("state", "forged");
      if (tamper === "iss") url.searchParams.set("iss", "https://evil.example.test");
      if (tamper === "no-iss") url.searchParams.delete("iss");
      if (tamper === "nonce") {
        // The ID token will carry the nonce that was sent; the app expects another one.
        const key = transactionStore.keys()[0]!;
        const saved = JSON.parse(transactionStore.values.get(key)!);
        transactionStore.values.set(key, JSON.stringify({ ...saved, nonce: "another" }));
      }
      const failure = await session.handleRedirectCallback(url.toString()).catch((e: unknown) => e);
      if (tamper === "nonce") {
        expect(failure).toBeInstanceOf(InvalidResponseError);
        expect((failure as Error).message).toMatch(/nonce/);
      } else {
        expect(failure).toBeInstanceOf(AuthorizationError);
        expect((failure as AuthorizationError).code).toBe(
          tamper === "state" ? "invalid_state" : "invalid_issuer",
        );
      }
      expect(await session.getTokens()).toBeNull();
      session.dispose();
    }
  });

  it("an error response (consent denied) is an AuthorizationError with the issuer's error and description", async () => {
    const other = await fixture.client({
      grant_types: ["authorization_code", "refresh_token"],
      redirect_uris: [REDIRECT_URI],
      scope: "openid offline_access",
    });
    const { session, navigated, navigate, transactionStore } = redirectSession({ clientId: other });
    await session.loginWithRedirect({ redirectUri: REDIRECT_URI, navigate });
    const { callback } = await signInAt(navigated[0]!, user(), "deny");
    expect(new URL(callback).searchParams.get("error")).toBe("access_denied");
    const failure = (await session
      .handleRedirectCallback(callback)
      .catch((e: unknown) => e)) as AuthorizationError;
    expect(failure).toBeInstanceOf(AuthorizationError);
    expect(failure.error).toBe("access_denied");
    expect(failure.code).toBe("access_denied");
    expect(transactionStore.keys()).toEqual([]); // used up by the error too
    expect(await session.getTokens()).toBeNull();
    session.dispose();
  });

  it("without sessionStorage or a transactionStore, loginWithRedirect says what it needs", async () => {
    const session = createSession({ issuer: fixture.issuer.url, clientId, autoRefresh: false });
    await expect(
      session.loginWithRedirect({ redirectUri: REDIRECT_URI, navigate: () => {} }),
    ).rejects.toThrow(/sessionStorage or a `transactionStore`/);
    session.dispose();
  });
});
