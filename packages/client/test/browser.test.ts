/**
 * Two tabs of one page in Debian's Chromium, both needing a refresh at the same moment: Web
 * Locks + BroadcastChannel + localStorage make it one refresh, and both tabs keep working.
 * The issuer and the tabs share the test's time: tokens live a minute and the test jumps past
 * their expiry (no sleeping, no 2 s tokens that a busy machine lets expire between two steps).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type IssuerFixture, PASSWORD, startIssuerFixture, TOKEN_TTL } from "./support/issuer.ts";
import { startProxy, type TestProxy } from "./support/proxy.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(`SKIPPED browser tests: ${CHROMIUM} is absent (apt-get install -y chromium)`);
}

declare const evergreen: {
  login(username: string, password: string): Promise<void>;
  call(n: number): Promise<number[]>;
  refreshToken(): Promise<string | undefined>;
  events(): string[];
  setOffset(ms: number): void;
  locks(): boolean;
  indexedDB(): Promise<(string | null)[]>;
};

// A browser on a busy 2-core machine: generous budgets.
describe.skipIf(!hasChromium)("two browser tabs (Chromium)", { timeout: 180_000 }, () => {
  let fixture: IssuerFixture;
  let site: TestProxy;
  let browser: Browser;

  beforeAll(async () => {
    const bundle = await build({
      entryPoints: [fileURLToPath(new URL("./support/browser-page.ts", import.meta.url))],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
    });
    fixture = await startIssuerFixture();
    // One origin serves the page and proxies the issuer, so the tabs need no CORS.
    site = await startProxy(
      fixture.issuer.url,
      {
        "/": { type: "text/html", body: '<!doctype html><script type="module" src="/page.js"></script>' },
        "/page.js": { type: "text/javascript", body: bundle.outputFiles[0]?.text ?? "" },
      },
      { date: () => fixture.time.date() },
    );
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

  /** Jumps the shared time past the access tokens' expiry, in the issuer and in every tab. */
  async function expireAccessTokens(tabs: Page[]) {
    fixture.time.jump(TOKEN_TTL * 1000 + 1000);
    const offset = fixture.time.offset;
    await Promise.all(tabs.map((tab) => tab.evaluate((ms) => evergreen.setOffset(ms), offset)));
  }

  afterAll(async () => {
    await browser?.close();
    await site?.close();
    await fixture?.close();
  });

  it("one refresh for both tabs, and both keep working", async () => {
    const clientId = await fixture.client({ refresh_token_reuse_grace: 0 });
    const context = await browser.newContext();
    const open = async () => {
      const page = await context.newPage();
      await page.goto(`${site.url}/?client=${clientId}&offset=${fixture.time.offset}`);
      await page.waitForFunction(() => typeof (globalThis as { evergreen?: unknown }).evergreen === "object");
      return page;
    };
    const [tabA, tabB] = [await open(), await open()] as [Page, Page];
    expect(await tabA.evaluate(() => evergreen.locks())).toBe(true);
    await tabA.evaluate(([u, p]) => evergreen.login(u as string, p as string), [fixture.username, PASSWORD]);
    expect(await tabB.evaluate(() => evergreen.call(1))).toEqual([200]); // tab B uses tab A's login

    await expireAccessTokens([tabA, tabB]); // the access token both tabs hold has expired
    site.reset();
    const [statusesA, statusesB] = await Promise.all([
      tabA.evaluate(() => evergreen.call(10)),
      tabB.evaluate(() => evergreen.call(10)),
    ]);
    expect([...statusesA, ...statusesB]).toEqual(Array(20).fill(200));
    expect(site.refreshes()).toHaveLength(1);
    expect(site.unauthorized("/userinfo")).toHaveLength(0);

    // Both tabs hold the rotated refresh token and keep working.
    const [rtA, rtB] = await Promise.all([
      tabA.evaluate(() => evergreen.refreshToken()),
      tabB.evaluate(() => evergreen.refreshToken()),
    ]);
    expect(rtA).toBe(rtB);
    expect(rtA).not.toBe(site.refreshes()[0]?.form?.get("refresh_token"));
    expect(await tabA.evaluate(() => evergreen.call(2))).toEqual([200, 200]);
    expect(await tabB.evaluate(() => evergreen.call(2))).toEqual([200, 200]);
    const events = [
      ...(await tabA.evaluate(() => evergreen.events())),
      ...(await tabB.evaluate(() => evergreen.events())),
    ];
    expect(events.filter((e) => e === "refreshed:this")).toHaveLength(1);
    expect(events).not.toContain("expired");
    await context.close();
  });

  it("re-checks on `online`, shares the end of a session across tabs, and stores in IndexedDB", async () => {
    const clientId = await fixture.client();
    const context = await browser.newContext();
    const open = async () => {
      const page = await context.newPage();
      await page.goto(`${site.url}/?client=${clientId}&offset=${fixture.time.offset}`);
      await page.waitForFunction(() => typeof (globalThis as { evergreen?: unknown }).evergreen === "object");
      return page;
    };
    const [tabA, tabB] = [await open(), await open()] as [Page, Page];
    expect(await tabA.evaluate(() => evergreen.indexedDB())).toEqual(["stored in IndexedDB", null]);
    await tabA.evaluate(([u, p]) => evergreen.login(u as string, p as string), [fixture.username, PASSWORD]);
    await expireAccessTokens([tabA, tabB]);
    site.reset();
    // Back online after the token expired: the tab refreshes before any request needs it.
    await tabA.evaluate(() => window.dispatchEvent(new Event("online")));
    await expect.poll(() => site.successfulRefreshes().length, { timeout: 60_000 }).toBe(1);
    expect(site.seen.filter((r) => r.path === "/userinfo")).toHaveLength(0);

    // The issuer ends the session: the tab that finds out tells the other one.
    await fixture.issuer.admin("DELETE", `/admin/users/${fixture.userId}/sessions`);
    await expireAccessTokens([tabA, tabB]);
    await expect(tabA.evaluate(() => evergreen.call(1))).rejects.toThrow(/SessionExpiredError|expired/);
    await expect
      .poll(() => tabB.evaluate(() => evergreen.events()), { timeout: 60_000 })
      .toContain("expired");
    expect(await tabA.evaluate(() => evergreen.events())).toEqual(["refreshed:this", "expired"]);
    await context.close();
  });
});
