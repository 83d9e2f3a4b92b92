/**
 * The login and consent pages in Debian's Chromium, driven by keyboard only (autofocus, Tab,
 * Enter) and found by their labels, as a screen-reader user would find them. Screenshots go
 * to docs/screenshots/ for the README and for review.
 */
import { existsSync, mkdirSync } from "node:fs";
import { type Server, createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authorizeUrl, codeClientBody, pkcePair, redeem } from "./browser-flow.ts";
import { type TestIssuer, startTestIssuer } from "./harness.ts";
import { type TestClient, type TestUser, createClient, createUser } from "./helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`SKIPPED login page browser test: ${CHROMIUM} is absent`);
const SCREENSHOTS = fileURLToPath(new URL("../../../docs/screenshots/", import.meta.url));

describe.skipIf(!hasChromium)("login and consent pages in Chromium", () => {
  let ti: TestIssuer;
  let app: TestClient;
  let user: TestUser;
  let browser: Browser;
  let callback: Server;
  let callbackUrl: string;

  beforeAll(async () => {
    ti = await startTestIssuer({ database: "pglite" });
    app = await createClient(
      ti,
      codeClientBody(["http://127.0.0.1/callback"], { client_name: "Evergreen Todo (desktop)" }),
    );
    user = await createUser(ti, "ada");
    // The native app's loopback listener.
    callback = createServer((_req, res) =>
      res.writeHead(200, { "content-type": "text/plain" }).end("signed in"),
    );
    await new Promise<void>((r) => callback.listen(0, "127.0.0.1", r));
    callbackUrl = `http://127.0.0.1:${(callback.address() as { port: number }).port}/callback`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    mkdirSync(SCREENSHOTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => callback?.close(r));
    await ti?.close();
  });

  it("signs in and consents with the keyboard alone, and the app receives a working code", async () => {
    const page = await browser.newPage({ viewport: { width: 520, height: 640 } });
    const pkce = pkcePair();
    await page.goto(
      authorizeUrl(ti, {
        response_type: "code",
        client_id: app.client_id,
        redirect_uri: callbackUrl,
        scope: "openid profile offline_access",
        state: "xyz",
        code_challenge: pkce.challenge,
        code_challenge_method: "S256",
      }),
    );
    await expect(page.title()).resolves.toBe("Sign in · Evergreen");
    // labelled fields, focus starts in the username field
    const username = page.getByLabel("Username");
    const password = page.getByLabel("Password");
    await expect(username.evaluate((el) => el === document.activeElement)).resolves.toBe(true);
    await page.screenshot({ path: `${SCREENSHOTS}login.png` });

    // a wrong password: the error is announced and the page keeps working
    await page.keyboard.type(user.username);
    await page.keyboard.press("Tab");
    await page.keyboard.type("not-the-password");
    await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
    await expect(page.getByRole("alert").textContent()).resolves.toContain("Incorrect username or password");
    await expect(password.evaluate((el) => el === document.activeElement)).resolves.toBe(true);
    await page.keyboard.type(user.password);
    await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);

    await expect(page.title()).resolves.toBe("Allow access · Evergreen");
    await expect(
      page.getByRole("button", { name: "Allow" }).evaluate((el) => el === document.activeElement),
    ).resolves.toBe(true);
    await page.screenshot({ path: `${SCREENSHOTS}consent.png` });
    await Promise.all([page.waitForURL((u) => u.pathname === "/callback"), page.keyboard.press("Enter")]);

    const back = new URL(page.url());
    expect(back.searchParams.get("state")).toBe("xyz");
    expect(back.searchParams.get("iss")).toBe(ti.config.issuer);
    const res = await redeem(
      ti,
      app,
      back.searchParams.get("code")!,
      `${back.origin}${back.pathname}`,
      pkce.verifier,
    );
    expect(res.status, res.text).toBe(200);
    expect(res.body.id_token).toBeTruthy();
    await page.close();
  }, 120_000);
});
