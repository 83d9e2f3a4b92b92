/**
 * The demo end to end in Debian's Chromium: the real issuer, the todo API and the web app as
 * `npm run demo` starts them (30 s access tokens, a refresh 5 s before expiry), two tabs on one
 * session. Time is injected, not slept: the issuer and the API run on a clock the test moves,
 * and the tabs on Playwright's fake clock, moved by the same amounts. The issuer dates its
 * answers by that clock, as the SDK reads the server's time from `Date`.
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { IssuerExtension } from "@evergreen/server";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LEGACY_CLIENT_ID, type RunningDemo, startDemo, WEB_CLIENT_ID } from "../src/demo.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium)
  console.warn(`SKIPPED todo browser tests: ${CHROMIUM} is absent (apt-get install -y chromium)`);

const TTL = 30;
const LEEWAY = 5;
const SCREENSHOTS = fileURLToPath(new URL("../../../docs/screenshots/", import.meta.url));

/** Real time plus the jumps the test makes: the issuer's and the API's clock. */
let offset = 0;
const clock = { now: () => new Date(Date.now() + offset) };

/** The issuer stamps `Date` from the test's clock (the SDK learns the server's time from it). */
const datedByClock: IssuerExtension = Object.assign(
  async (app: Parameters<IssuerExtension>[0]) => {
    app.addHook("onSend", async (_req, reply) => {
      reply.header("Date", clock.now().toUTCString());
    });
  },
  // Not encapsulated: the hook applies to every route of the issuer.
  { [Symbol.for("skip-override")]: true },
);

describe.skipIf(!hasChromium)("the todo demo in Chromium", { timeout: 300_000 }, () => {
  let demo: RunningDemo;
  let browser: Browser;
  const dataDir = join(tmpdir(), `evergreen-todo-${process.pid}-${Date.now()}`);

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    demo = await startDemo({
      dataDir,
      issuerPort: 0,
      port: 0,
      clock,
      accessTokenTtl: TTL,
      refreshLeeway: LEEWAY,
      issuerExtensions: [datedByClock],
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
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await demo?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** Refreshes the issuer performed for a client (one audit event per successful refresh grant). */
  const issuerRefreshes = async (clientId: string, type = "refresh") =>
    (
      await demo.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM audit_events WHERE type = $1 AND client_id = $2",
        [type, clientId],
      )
    ).rows[0]!.n;

  async function newContext(): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
    // Fake timers and Date in every tab, starting at the test's time and running with real time.
    await context.clock.install({ time: clock.now() });
    return context;
  }

  async function openTab(context: BrowserContext): Promise<Page> {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(demo.appUrl);
    (page as Page & { errors?: string[] }).errors = errors;
    return page;
  }

  async function signIn(page: Page, mode: "standard" | "legacy") {
    await page.locator("#username").fill(demo.username);
    await page.locator("#password").fill(demo.password);
    await page.locator(`input[name=mode][value=${mode}]`).check();
    await page.locator("#signin-button").click();
    await page.locator("#app").waitFor({ state: "visible" });
  }

  async function addList(page: Page, name: string) {
    await page.locator("#new-list-name").fill(name);
    await page.locator("#new-list-name").press("Enter");
    await page.locator("#list-title", { hasText: name }).waitFor();
  }

  async function addItem(page: Page, text: string) {
    await page.locator("#new-item-text").fill(text);
    await page.locator("#new-item-text").press("Enter");
    await page.locator("#items li .text", { hasText: text }).waitFor();
  }

  /** The tokens the tabs share: the SDK's stored session, read from the page's IndexedDB. */
  const stored = (page: Page) =>
    page.evaluate(async () => {
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const request = indexedDB.open("evergreen-todo", 1);
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      const values = await new Promise<unknown[]>((resolve, reject) => {
        const request = db.transaction("tokens", "readonly").objectStore("tokens").getAll();
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      db.close();
      const record = values.length === 1 ? JSON.parse(String(values[0])) : null;
      return record?.tokens as { refreshToken?: string; expiresAt?: number } | undefined;
    });

  /**
   * Moves every clock to just past the moment the stored access token is due for a refresh
   * (LEEWAY seconds before it expires), and no further: exactly one refresh point is crossed.
   */
  async function pastNextRefreshPoint(context: BrowserContext, page: Page) {
    const tokens = await stored(page);
    const due = tokens!.expiresAt! - LEEWAY * 1000;
    const jump = Math.max(0, due - clock.now().getTime()) + 500;
    offset += jump;
    await context.clock.fastForward(jump);
    return jump;
  }

  const log = (page: Page, kind: string) => page.locator(`#activity li[data-kind="${kind}"]`);

  it("signs in, works with lists and items past two token lifetimes, one refresh per lifetime across two tabs", async () => {
    const context = await newContext();
    const tabA = await openTab(context);
    await tabA.locator("#signin").waitFor({ state: "visible" });
    await tabA.locator("#username").fill(demo.username);
    await tabA.screenshot({ path: join(SCREENSHOTS, "todo-signin.png") });
    await signIn(tabA, "standard");
    await expect.poll(() => log(tabA, "signin").count()).toBe(1);
    expect(await log(tabA, "signin").first().textContent()).toMatch(
      /RateLimit-Limit \d+ · RateLimit-Remaining \d+/,
    );

    await addList(tabA, "Groceries");
    await addItem(tabA, "milk");
    await addItem(tabA, "eggs");
    await tabA.locator("#items li", { hasText: "milk" }).locator("input[type=checkbox]").check();
    await expect.poll(() => tabA.locator("#items li.done").count()).toBe(1);
    await addList(tabA, "Chores");
    await addItem(tabA, "laundry");

    // The second tab signs in with nothing: it shares the first tab's session.
    const tabB = await openTab(context);
    await tabB.locator("#lists li", { hasText: "Groceries" }).waitFor();
    await tabB.locator("#lists li button.open", { hasText: "Groceries" }).click();
    await tabB.locator("#items li", { hasText: "eggs" }).waitFor();
    expect(await issuerRefreshes(WEB_CLIENT_ID)).toBe(0);

    // Three refresh points: 3 × 25 s of token time, past two 30 s lifetimes. Each one is one
    // refresh by one tab; the tabs take turns adding items with whatever token is current.
    let jumped = 0;
    for (let round = 1; round <= 3; round++) {
      jumped += await pastNextRefreshPoint(context, tabA);
      await expect.poll(() => issuerRefreshes(WEB_CLIENT_ID), { timeout: 60_000 }).toBe(round);
      const tab = round % 2 === 1 ? tabB : tabA;
      await addItem(tab, `item ${round}`);
    }
    expect(jumped).toBeGreaterThan(2 * TTL * 1000);
    await tabA.locator("#lists li button.open", { hasText: "Chores" }).click();
    await addItem(tabA, "dishes");
    await tabB.locator("#items li", { hasText: "milk" }).locator("input[type=checkbox]").uncheck();
    await expect.poll(() => tabB.locator("#items li.done").count()).toBe(0);

    // Exactly one refresh per lifetime, at the issuer and in the tabs' logs together; the other
    // tab picked each one up instead of refreshing again. No 401, no replay, no error.
    expect(await issuerRefreshes(WEB_CLIENT_ID)).toBe(3);
    const [refreshesA, refreshesB] = [await log(tabA, "refresh").count(), await log(tabB, "refresh").count()];
    const activity = async () =>
      JSON.stringify({
        A: await tabA.locator("#activity li").allTextContents(),
        B: await tabB.locator("#activity li").allTextContents(),
        issuer: (await demo.db.query("SELECT at, type FROM audit_events ORDER BY at")).rows,
      });
    expect(refreshesA + refreshesB, await activity()).toBe(3);
    const pickedUp = (await log(tabA, "other-tab").count()) + (await log(tabB, "other-tab").count());
    expect(pickedUp, await activity()).toBe(3);
    const refreshLines = [
      ...(await log(tabA, "refresh").allTextContents()),
      ...(await log(tabB, "refresh").allTextContents()),
    ];
    for (const line of refreshLines) {
      expect(line).toMatch(
        /refreshed: #[0-9a-f]{8} → #[0-9a-f]{8} \(rotated.*RateLimit-Limit \d+ · RateLimit-Remaining \d+ · RateLimit-Reset \d+ s/,
      );
    }
    expect(await issuerRefreshes(WEB_CLIENT_ID, "refresh_replayed")).toBe(0);
    expect(await issuerRefreshes(WEB_CLIENT_ID, "refresh_token_reuse")).toBe(0);
    expect(demo.stats.unauthorized).toBe(0);
    for (const tab of [tabA, tabB]) {
      expect(await log(tab, "error").count()).toBe(0);
      expect(await tab.locator("#error").isHidden()).toBe(true);
      expect((tab as Page & { errors?: string[] }).errors).toEqual([]);
    }
    // The database holds what the tabs did.
    const rows = await demo.db.query<{ name: string; text: string; done: boolean }>(
      `SELECT l.name, i.text, i.done FROM todo_lists l JOIN todo_items i ON i.list_id = l.id
        ORDER BY l.seq, i.seq`,
    );
    expect(rows.rows.map((r) => `${r.name}:${r.text}:${r.done}`)).toEqual([
      "Groceries:milk:false",
      "Groceries:eggs:false",
      "Groceries:item 1:false",
      "Groceries:item 3:false",
      "Chores:laundry:false",
      "Chores:item 2:false",
      "Chores:dishes:false",
    ]);
    await tabA.screenshot({ path: join(SCREENSHOTS, "todo-lists.png") });
    await tabB.screenshot({ path: join(SCREENSHOTS, "todo-second-tab.png") });

    // A refresh whose answer is lost on the way: the SDK asks again with the same refresh token
    // and the issuer, inside its grace window, answers with the very same successor.
    await tabA.locator("#lose-response").check();
    await tabA.locator("#refresh-now").click();
    await log(tabA, "replay").waitFor({ timeout: 60_000 });
    expect(await log(tabA, "replay").textContent()).toMatch(
      /grace replay: (#[0-9a-f]{8}) was already used; the issuer answered with the same successor #[0-9a-f]{8}RateLimit/,
    );
    expect(await log(tabA, "lost").count()).toBe(1);
    expect(await issuerRefreshes(WEB_CLIENT_ID, "refresh_replayed")).toBe(1);
    expect(await issuerRefreshes(WEB_CLIENT_ID)).toBe(4);
    await addItem(tabA, "after the replay");
    await tabA.screenshot({ path: join(SCREENSHOTS, "todo-grace-replay.png") });
    expect(demo.stats.unauthorized).toBe(0);
    await context.close();
  });

  it("legacy mode: POST /refresh/ {refresh} → {access}, the refresh token kept, one refresh per lifetime", async () => {
    const context = await newContext();
    const tabA = await openTab(context);
    await signIn(tabA, "legacy");
    await expect(tabA.locator("#mode-badge").textContent()).resolves.toBe("legacy /refresh/");
    await addList(tabA, "Legacy list");
    await addItem(tabA, "first");
    const tabB = await openTab(context);
    await tabB.locator("#lists li", { hasText: "Legacy list" }).waitFor();
    await tabB.locator("#lists li button.open", { hasText: "Legacy list" }).click();

    const refreshToken = (await stored(tabA))?.refreshToken;
    expect(refreshToken).toMatch(/^egr_/);
    const before = demo.stats.legacyRefreshes;
    for (let round = 1; round <= 3; round++) {
      await pastNextRefreshPoint(context, tabA);
      await expect.poll(() => demo.stats.legacyRefreshes - before, { timeout: 60_000 }).toBe(round);
      await addItem(round % 2 === 1 ? tabB : tabA, `legacy ${round}`);
      // No refresh token came back: both tabs still hold the one from the sign-in.
      expect((await stored(tabA))?.refreshToken).toBe(refreshToken);
      expect((await stored(tabB))?.refreshToken).toBe(refreshToken);
    }
    const activity = async () =>
      JSON.stringify({
        A: await tabA.locator("#activity li").allTextContents(),
        B: await tabB.locator("#activity li").allTextContents(),
        issuer: (
          await demo.db.query("SELECT at, type FROM audit_events WHERE client_id = $1 ORDER BY at", [
            LEGACY_CLIENT_ID,
          ])
        ).rows,
      });
    expect(demo.stats.legacyRefreshes - before, await activity()).toBe(3);
    expect(await issuerRefreshes(LEGACY_CLIENT_ID)).toBe(3);
    expect(demo.stats.unauthorized).toBe(0);
    const entries = (await log(tabA, "refresh").allTextContents()).concat(
      await log(tabB, "refresh").allTextContents(),
    );
    expect(entries).toHaveLength(3);
    for (const entry of entries) {
      expect(entry).toMatch(
        /refreshed at \/refresh\/: new access token; no refresh token came back, so #[0-9a-f]{8} is kept/,
      );
      expect(entry).toMatch(/RateLimit-Limit \d+/);
    }
    for (const tab of [tabA, tabB]) expect(await log(tab, "error").count()).toBe(0);
    await tabA.screenshot({ path: join(SCREENSHOTS, "todo-legacy.png") });

    // Signing out revokes the refresh token at the issuer: the legacy endpoint refuses it after.
    await tabA.locator("#signout").click();
    await tabA.locator("#signin").waitFor({ state: "visible" });
    const res = await fetch(`${demo.appUrl}/refresh/`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refresh: refreshToken }),
    });
    expect(res.status).toBe(401);
    await context.close();
  });
});
