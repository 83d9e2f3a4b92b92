/**
 * The user's part of a sign-in at the real issuer, without a browser: a cookie jar follows the
 * authorization URL, posts the login form and answers the consent page, and returns where the
 * issuer finally sends the browser (the app's redirect URI with the response).
 */
import { CookieJar, browse, hiddenField } from "../../../server/test/browser-flow.ts";

export interface SignedIn {
  /** The redirect back to the app, with `code` or `error`. */
  callback: string;
  /** The HTML of the pages shown on the way (login, consent). */
  pages: string[];
}

export async function signInAt(
  authorizationUrl: string,
  user: { username: string; password: string },
  decision: "allow" | "deny" = "allow",
  jar = new CookieJar(),
): Promise<SignedIn> {
  let page = await browse(jar, authorizationUrl);
  const pages: string[] = [];
  for (let i = 0; i < 4 && page.status === 200; i++) {
    pages.push(page.html);
    const login = page.html.includes('action="/authorize/login"');
    page = await browse(
      jar,
      new URL(login ? "/authorize/login" : "/authorize/consent", authorizationUrl).toString(),
      {
        csrf: hiddenField(page.html, "csrf"),
        request: hiddenField(page.html, "request"),
        ...(login ? user : { decision }),
      },
    );
  }
  if (page.status !== 303 || !page.location)
    throw new Error(`sign-in ended with ${page.status}: ${page.html}`);
  return { callback: page.location, pages };
}
