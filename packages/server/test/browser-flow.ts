/**
 * The browser's part of the authorization code flow, without a browser: a cookie jar, manual
 * redirects, and the login and consent forms parsed from the HTML and posted as a user would.
 */
import { createHash, randomBytes } from "node:crypto";
import { expect } from "vitest";
import type { TestIssuer } from "./harness.ts";
import { type TestClient, type TestUser, encodeForm, token } from "./helpers.ts";

/** A minimal cookie jar: name → value, as the issuer sets them (one host, path /). */
export class CookieJar {
  readonly cookies = new Map<string, string>();
  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const maxAge = attrs.find((a) => a.trim().toLowerCase().startsWith("max-age="));
      if (maxAge && Number(maxAge.split("=")[1]) <= 0) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
}

export interface PageResult {
  status: number;
  headers: Headers;
  html: string;
  location?: string;
}

/** One request with the jar's cookies; redirects are returned, not followed. */
export async function browse(
  jar: CookieJar,
  url: string,
  form?: Record<string, string>,
): Promise<PageResult> {
  const res = await fetch(url, {
    method: form ? "POST" : "GET",
    redirect: "manual",
    headers: {
      cookie: jar.header(),
      ...(form ? { "content-type": "application/x-www-form-urlencoded" } : {}),
    },
    body: form ? encodeForm(form) : undefined,
  });
  jar.store(res);
  return {
    status: res.status,
    headers: res.headers,
    html: await res.text(),
    location: res.headers.get("location") ?? undefined,
  };
}

/** The value of a hidden field of the page's form. */
export function hiddenField(html: string, name: string): string {
  const m = html.match(new RegExp(`<input type="hidden" name="${name}" value="([^"]*)"`));
  if (!m) throw new Error(`no hidden field ${name} in page`);
  return m[1]!
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

/** An app registered for the code flow (public by default). */
export function codeClientBody(redirectUris: string[], extra: Record<string, unknown> = {}) {
  return {
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code", "refresh_token"],
    redirect_uris: redirectUris,
    scope: "openid profile email offline_access",
    ...extra,
  };
}

export function authorizeUrl(ti: TestIssuer, params: Record<string, string | undefined>): string {
  return `${ti.url}/authorize?${encodeForm(params)}`;
}

export interface SignInOptions {
  client: TestClient;
  user: TestUser;
  redirectUri: string;
  scope?: string;
  jar?: CookieJar;
  extra?: Record<string, string>;
  /** Click "Allow" if the consent page is shown (default true). */
  consent?: boolean;
}

/** Drives /authorize to its final redirect: signs in and consents as needed. */
export async function signIn(ti: TestIssuer, o: SignInOptions) {
  const jar = o.jar ?? new CookieJar();
  const pkce = pkcePair();
  const state = randomBytes(8).toString("hex");
  let page = await browse(
    jar,
    authorizeUrl(ti, {
      response_type: "code",
      client_id: o.client.client_id,
      redirect_uri: o.redirectUri,
      scope: o.scope ?? "openid offline_access",
      state,
      code_challenge: pkce.challenge,
      code_challenge_method: "S256",
      ...o.extra,
    }),
  );
  const pages: string[] = [];
  for (let i = 0; i < 4 && page.status === 200; i++) {
    pages.push(page.html);
    if (page.html.includes('action="/authorize/login"')) {
      page = await browse(jar, `${ti.url}/authorize/login`, {
        csrf: hiddenField(page.html, "csrf"),
        request: hiddenField(page.html, "request"),
        username: o.user.username,
        password: o.user.password,
      });
    } else if (page.html.includes('action="/authorize/consent"')) {
      page = await browse(jar, `${ti.url}/authorize/consent`, {
        csrf: hiddenField(page.html, "csrf"),
        request: hiddenField(page.html, "request"),
        decision: o.consent === false ? "deny" : "allow",
      });
    } else break;
  }
  expect(page.status, page.html).toBe(303);
  const location = new URL(page.location!);
  return { jar, pkce, state, location, params: location.searchParams, pages };
}

/** Redeems a code at /token. */
export function redeem(
  ti: TestIssuer,
  client: TestClient,
  code: string,
  redirectUri: string,
  verifier: string,
) {
  return token(
    ti,
    { grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: verifier },
    client,
  );
}
