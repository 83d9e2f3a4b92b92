/**
 * Two Chromium tabs on localStorage, both needing a refresh at once, round after round.
 * Chromium hands a localStorage write to other tabs asynchronously: the tab that gets the Web
 * Lock right after another tab's refresh may still read the old tokens from storage. The
 * refresh endpoint does not rotate (a legacy JSON endpoint), so a tab that acts on that stale
 * read shows up as a second refresh instead of hiding behind an issuer's grace window.
 */
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`SKIPPED cross-tab test: ${CHROMIUM} is absent`);

declare const crossTab: {
  signIn(): Promise<void>;
  tokens(n: number): Promise<string[]>;
  takeEvents(): string[];
  setOffset(ms: number): void;
};

const ROUNDS = 40;
const TTL = 60;

describe.skipIf(!hasChromium)("cross-tab refresh on localStorage (Chromium)", { timeout: 300_000 }, () => {
  let server: Server;
  let url: string;
  let browser: Browser;
  /** Refresh requests the endpoint answered, each with the refresh token it was given. */
  const refreshes: string[] = [];
  let issued = 0;

  beforeAll(async () => {
    const bundle = await build({
      entryPoints: [fileURLToPath(new URL("./support/cross-tab-page.ts", import.meta.url))],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
    });
    const page = bundle.outputFiles[0]?.text ?? "";
    server = createServer(async (req, res) => {
      // No Date header: the tabs keep the test's time (their device clock plus the jumps).
      res.sendDate = false;
      if (req.url === "/page.js") {
        res.writeHead(200, { "content-type": "text/javascript" });
        return res.end(page);
      }
      if (req.url === "/refresh" && req.method === "POST") {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const body = JSON.parse(Buffer.concat(chunks).toString() || "{}") as { refresh?: string };
        refreshes.push(body.refresh ?? "");
        // A little server time, so the other tab is surely waiting for the lock meanwhile.
        await new Promise((resolve) => setTimeout(resolve, 20));
        res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" });
        return res.end(JSON.stringify({ access: `at-${++issued}`, expires_in: TTL }));
      }
      res.writeHead(200, { "content-type": "text/html" });
      res.end('<!doctype html><script type="module" src="/page.js"></script>');
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
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
    await new Promise((resolve) => server?.close(resolve));
  });

  it("one refresh per round across both tabs, one `refreshed` event per tab per round", async () => {
    const context = await browser.newContext();
    const open = async () => {
      const tab = await context.newPage();
      await tab.goto(url);
      await tab.waitForFunction(() => typeof (globalThis as { crossTab?: unknown }).crossTab === "object");
      return tab;
    };
    const [tabA, tabB] = [await open(), await open()] as [Page, Page];
    await tabA.evaluate(() => crossTab.signIn());
    expect(await tabB.evaluate(() => crossTab.tokens(1))).toEqual(["at-0"]); // B uses A's sign-in
    expect(await tabB.evaluate(() => crossTab.takeEvents())).toEqual([]);

    const perRound: number[] = [];
    const tokens: number[] = [];
    const events: string[][] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Both tabs' access token expires; then both want a token at once, several callers each.
      const offset = round * (TTL + 1) * 1000;
      await Promise.all([tabA, tabB].map((tab) => tab.evaluate((ms) => crossTab.setOffset(ms), offset)));
      const before = refreshes.length;
      const [a, b] = await Promise.all([
        tabA.evaluate(() => crossTab.tokens(5)),
        tabB.evaluate(() => crossTab.tokens(5)),
      ]);
      perRound.push(refreshes.length - before);
      tokens.push(new Set([...a, ...b]).size);
      const [eventsA, eventsB] = [
        await tabA.evaluate(() => crossTab.takeEvents()),
        await tabB.evaluate(() => crossTab.takeEvents()),
      ];
      events.push([...eventsA, ...eventsB].sort());
    }
    // Per round: one refresh request; one token for every caller in both tabs; `refreshed`
    // "this" in the tab that refreshed and "other" (once, not twice) in the other one.
    const round = (i: number) => ({ refreshes: perRound[i], tokens: tokens[i], events: events[i] });
    const rounds = Array.from({ length: ROUNDS }, (_, i) => round(i));
    const bad = rounds
      .map((r, i) => ({ round: i + 1, ...r }))
      .filter((r) => r.refreshes !== 1 || r.tokens !== 1 || r.events?.join() !== "other,this");
    expect(bad).toEqual([]);
    expect(refreshes.every((token) => token === "rt-legacy")).toBe(true);
    await context.close();
  });
});
