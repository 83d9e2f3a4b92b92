/**
 * The whole browser redirect sign-in in Debian's Chromium: the app page calls loginWithRedirect,
 * the browser goes to the real issuer, the user signs in and allows, the issuer sends the
 * browser back, and handleRedirectCallback completes the sign-in and cleans the address bar.
 * Also: DPoP keys in IndexedDB are non-extractable, survive a reload, and are one for two tabs.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type IssuerFixture, PASSWORD, startIssuerFixture } from "./support/issuer.ts";
import { startProxy, type TestProxy } from "./support/proxy.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium)
  console.warn(`SKIPPED redirect browser tests: ${CHROMIUM} is absent (apt-get install -y chromium)`);

interface DpopKey {
  extractable: boolean;
  thumbprint: string;
  proof: string;
}
declare const evergreen: {
  login(loginHint: string): Promise<void>;
  callback: Promise<Record<string, unknown>> | null;
  dpopKey(database: string): Promise<DpopKey>;
};

describe.skipIf(!hasChromium)("redirect sign-in in Chromium", { timeout: 180_000 }, () => {
  let fixture: IssuerFixture;
  let site: TestProxy;
  let browser: Browser;
  let clientId: string;

  beforeAll(async () => {
    const bundle = await build({
      entryPoints: [fileURLToPath(new URL("./support/redirect-page.ts", import.meta.url))],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
    });
    fixture = await startIssuerFixture();
    const html = { type: "text/html", body: '<!doctype html><script type="module" src="/page.js"></script>' };
    // The app's own origin: its page and callback. The issuer is another origin (CORS).
    site = await startProxy(fixture.issuer.url, {
      "/": html,
      "/callback": html,
      "/page.js": { type: "text/javascript", body: bundle.outputFiles[0]?.text ?? "" },
    });
    clientId = await fixture.client({
      grant_types: ["authorization_code", "refresh_token"],
      redirect_uris: [`${site.url}/callback`],
      scope: "openid offline_access",
      access_token_ttl: 600,
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await fixture?.close();
  });

  it("page → issuer sign-in and consent → callback: signed in, code and state gone from the address bar", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const callbacks: string[] = [];
    page.on("request", (request) => {
      if (request.isNavigationRequest() && request.url().startsWith(`${site.url}/callback?`))
        callbacks.push(request.url());
    });
    await page.goto(`${site.url}/?issuer=${encodeURIComponent(fixture.issuer.url)}&client=${clientId}`);
    await page.waitForFunction(() => typeof (globalThis as { evergreen?: unknown }).evergreen === "object");
    await Promise.all([
      page.waitForURL((url) => url.href.startsWith(`${fixture.issuer.url}/authorize`), { timeout: 60_000 }),
      page.evaluate((hint) => evergreen.login(hint), fixture.username),
    ]);
    const authorize = new URL(page.url()).searchParams;
    expect(authorize.get("code_challenge_method")).toBe("S256");
    expect(authorize.get("scope")).toBe("openid offline_access");
    expect(await page.inputValue("#username")).toBe(fixture.username); // login_hint
    await page.fill("#password", PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL((url) => url.pathname.startsWith("/authorize"), { timeout: 60_000 });
    if (await page.locator('button[value="allow"]').count()) await page.click('button[value="allow"]');
    await page.waitForURL((url) => url.href.startsWith(`${site.url}/callback`), { timeout: 60_000 });
    await page.waitForFunction(() => typeof (globalThis as { evergreen?: unknown }).evergreen === "object");
    const result = await page.evaluate(() => evergreen.callback);
    expect(result).toMatchObject({
      href: `${site.url}/callback`,
      status: 200,
      sub: fixture.userId,
      inProgress: [],
    });
    expect(result?.["refreshToken"]).toMatch(/^egr_/);
    expect(page.url()).toBe(`${site.url}/callback`);

    // The issuer's redirect, opened again (history, a shared link): the sign-in was used up.
    expect(callbacks).toHaveLength(1);
    expect(new URL(callbacks[0]!).searchParams.get("iss")).toBe(fixture.issuer.url);
    await page.goto(callbacks[0]!);
    await page.waitForFunction(() => typeof (globalThis as { evergreen?: unknown }).evergreen === "object");
    expect(await page.evaluate(() => evergreen.callback)).toEqual({
      error: "AuthorizationError: invalid_state: no sign-in in progress for this state",
    });
    await context.close();
  });

  it("DPoP keys in IndexedDB: non-extractable, the same after a reload and for two tabs, proofs that verify", async () => {
    const context = await browser.newContext();
    const open = async () => {
      const page = await context.newPage();
      await page.goto(`${site.url}/?issuer=${encodeURIComponent(fixture.issuer.url)}&client=${clientId}`);
      await page.waitForFunction(() => typeof (globalThis as { evergreen?: unknown }).evergreen === "object");
      return page;
    };
    const [a, b] = [await open(), await open()];
    // Both tabs ask for the key of a database that has none: one key comes out.
    const [fromA, fromB] = await Promise.all([
      a.evaluate(() => evergreen.dpopKey("dpop-test")),
      b.evaluate(() => evergreen.dpopKey("dpop-test")),
    ]);
    expect(fromA.extractable).toBe(false);
    expect(fromA.thumbprint).toBe(fromB.thumbprint);
    await a.reload();
    await a.waitForFunction(() => typeof (globalThis as { evergreen?: unknown }).evergreen === "object");
    const reloaded = await a.evaluate(() => evergreen.dpopKey("dpop-test"));
    expect(reloaded.thumbprint).toBe(fromA.thumbprint);

    // The proof Chromium signed verifies with the key in its header.
    const [h, p, s] = reloaded.proof.split(".") as [string, string, string];
    const header = JSON.parse(Buffer.from(h, "base64url").toString());
    const key = await crypto.subtle.importKey(
      "jwk",
      header.jwk,
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["verify"],
    );
    const valid = await crypto.subtle.verify(
      { name: "ECDSA", hash: "SHA-256" },
      key,
      Buffer.from(s, "base64url"),
      new TextEncoder().encode(`${h}.${p}`),
    );
    expect(valid).toBe(true);
    expect(JSON.parse(Buffer.from(p, "base64url").toString())).toMatchObject({
      htm: "GET",
      htu: `${site.url}/`,
    });
    await context.close();
  });
});
