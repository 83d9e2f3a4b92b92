/**
 * The RFC 8252 loopback flow against the real issuer: the "browser" is a cookie jar that
 * follows redirects and posts the login and consent forms, and finally visits the app's
 * loopback listener as a browser would.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar, browse, hiddenField } from "../../server/test/browser-flow.ts";
import { AuthorizationError, loginWithLoopback } from "../src/node/index.ts";
import { type IssuerFixture, PASSWORD, startIssuerFixture } from "./support/issuer.ts";

describe("loginWithLoopback (RFC 8252)", () => {
  let fixture: IssuerFixture;
  let clientId: string;

  beforeAll(async () => {
    fixture = await startIssuerFixture();
    clientId = await fixture.client({
      grant_types: ["authorization_code", "refresh_token"],
      redirect_uris: ["http://127.0.0.1/callback"],
      scope: "openid offline_access",
      access_token_ttl: 600,
    });
  });
  afterAll(() => fixture?.close());

  /** A user in a browser who signs in and answers the consent page with `decision`. */
  const browser = (decision: "allow" | "deny") => async (url: string) => {
    const jar = new CookieJar();
    let page = await browse(jar, url);
    for (let i = 0; i < 3 && page.status === 200; i++) {
      const login = page.html.includes('action="/authorize/login"');
      page = await browse(jar, new URL(login ? "/authorize/login" : "/authorize/consent", url).toString(), {
        csrf: hiddenField(page.html, "csrf"),
        request: hiddenField(page.html, "request"),
        ...(login ? { username: fixture.username, password: PASSWORD } : { decision }),
      });
    }
    expect(page.status).toBe(303);
    const back = await fetch(page.location!); // the browser lands on the app's listener
    expect(back.status).toBe(200);
  };

  it("opens the browser, receives the code on 127.0.0.1, exchanges it, and closes the listener", async () => {
    let redirect = "";
    const tokens = await loginWithLoopback({
      issuer: fixture.issuer.url,
      client: { clientId },
      scope: "openid offline_access",
      openBrowser: async (url) => {
        redirect = new URL(url).searchParams.get("redirect_uri")!;
        expect(new URL(url).searchParams.get("code_challenge_method")).toBe("S256");
        await browser("allow")(url);
      },
    });
    expect(redirect).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    expect(tokens.refreshToken).toMatch(/^egr_/);
    expect(tokens.idToken).toBeTruthy();
    // the listener is gone
    await expect(fetch(redirect)).rejects.toThrow();
  });

  it("a denied consent surfaces as AuthorizationError access_denied", async () => {
    // another app: the consent given to the first one does not count here
    const other = await fixture.client({
      grant_types: ["authorization_code"],
      redirect_uris: ["http://127.0.0.1/callback"],
      scope: "openid",
    });
    await expect(
      loginWithLoopback({
        issuer: fixture.issuer.url,
        client: { clientId: other },
        scope: "openid",
        openBrowser: browser("deny"),
      }),
    ).rejects.toMatchObject({ name: "AuthorizationError", error: "access_denied" });
    expect(AuthorizationError).toBeTypeOf("function");
  });
});
