/**
 * The dashboard in Debian's Chromium against a real issuer (with the broker's routes) on a
 * fresh database: sign in with the admin token, create a user and clients (a secret shown
 * once), watch a session's timeline grow while a test client refreshes over HTTP, revoke it
 * from the page (the next refresh fails), the audit log, keys, the broker's pages, a phone
 * screen, and sign-in through the issuer as an admin (and refusal for a non-admin). Every
 * page is saved to docs/screenshots/dashboard-*.png for the README.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { type Server, createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { brokerRoutes } from "@evergreen/broker";
import { type Database, ManualClock, migrate, openPglite } from "@evergreen/db";
import { type Issuer, buildIssuer, loadConfig } from "@evergreen/server";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardRoutes } from "../src/index.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`SKIPPED dashboard browser test: ${CHROMIUM} is absent`);
const SCREENSHOTS = fileURLToPath(new URL("../../../docs/screenshots/", import.meta.url));
const BUNDLE = fileURLToPath(new URL("../scripts/bundle-app.mjs", import.meta.url));
const ADMIN_TOKEN = "dashboard-test-admin-token-0123456789abcdef";

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

describe.skipIf(!hasChromium)("the dashboard in Chromium", () => {
  let db: Database;
  let issuer: Issuer;
  let url: string;
  let browser: Browser;
  let page: Page;
  let upstream: Server;
  let upstreamCalls = 0;
  const clock = new ManualClock();

  /** The admin API, as a test's own check of what the page did. */
  async function admin(method: string, path: string, body?: unknown) {
    const res = await fetch(url + path, {
      method,
      headers: {
        authorization: `Bearer ${ADMIN_TOKEN}`,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  }

  /** The token endpoint, as the test client (an app) calls it. */
  async function tokenRequest(params: Record<string, string>, headers: Record<string, string> = {}) {
    const res = await fetch(`${url}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(params).toString(),
    });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  }

  const shot = (name: string, p: Page = page) =>
    p.screenshot({ path: `${SCREENSHOTS}dashboard-${name}.png`, fullPage: true });

  async function go(link: string) {
    await page
      .getByRole("navigation", { name: "Dashboard" })
      .getByRole("link", { name: link, exact: true })
      .click();
    await page.getByRole("heading", { level: 1 }).first().waitFor();
  }

  beforeAll(async () => {
    execFileSync(process.execPath, [BUNDLE], { stdio: "inherit" });
    // An upstream OAuth provider for the broker: every refresh gets new tokens.
    upstream = createServer((_req, res) => {
      upstreamCalls += 1;
      res.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          access_token: `up-at-${upstreamCalls}`,
          refresh_token: `up-rt-${upstreamCalls}`,
          expires_in: 3600,
        }),
      );
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    db = await openPglite("memory://");
    await migrate(db);
    const port = await freePort();
    const config = loadConfig({ PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "silent" });
    issuer = await buildIssuer({
      config,
      db,
      clock,
      adminToken: ADMIN_TOKEN,
      logger: false,
      extensions: [brokerRoutes({ worker: false, env: {} }), dashboardRoutes({ registerClient: true })],
    });
    await issuer.app.listen({ port, host: "127.0.0.1" });
    url = `http://127.0.0.1:${port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    mkdirSync(SCREENSHOTS, { recursive: true });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await issuer?.close();
    await db?.close();
    await new Promise((r) => upstream?.close(r));
  });

  it("serves a page that loads nothing from elsewhere and runs no inline script", async () => {
    const res = await fetch(`${url}/dashboard`);
    expect(res.status).toBe(200);
    const csp = res.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain("unsafe-inline");
    const html = await res.text();
    expect(html).not.toMatch(/<script>|<style>|https?:\/\//);
  });

  it("signs in with the admin token and shows the overview", async () => {
    const outside: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith(url)) outside.push(r.url());
    });
    await page.goto(`${url}/dashboard`);
    await page.getByRole("heading", { name: "Evergreen dashboard" }).waitFor();
    await shot("sign-in");
    await page.getByLabel("Admin token").fill("wrong-token-wrong-token-wrong-token");
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await expect(page.getByRole("alert").first().textContent()).resolves.toContain("not the admin token");
    await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    await page.getByText("token requests", { exact: true }).waitFor();
    expect(outside).toEqual([]);
    // The token is in this tab's sessionStorage only: no cookie carries it.
    expect(await page.context().cookies()).toEqual([]);
  });

  it("creates a user", async () => {
    await go("Users");
    await page.getByLabel("Username").fill("alice");
    await page.getByLabel("Email (optional)").fill("alice@example.test");
    await page.getByLabel("Password", { exact: true }).fill("alice-password-1");
    await page.getByRole("button", { name: "Create user" }).click();
    await page.getByText("User alice created.").waitFor();
    const users = await admin("GET", "/admin/users?q=alice");
    expect(users.body).toHaveLength(1);
    expect(users.body[0]).toMatchObject({ username: "alice", email: "alice@example.test", is_admin: false });
    await admin("POST", "/admin/users", { username: "bob", password: "bob-password-1" });
    await page.getByLabel("Search", { exact: true }).fill("ali");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("cell", { name: "alice", exact: true }).waitFor();
    expect(await page.getByRole("cell", { name: "bob", exact: true }).count()).toBe(0);
    await page.getByLabel("Search", { exact: true }).fill("");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("cell", { name: "bob", exact: true }).waitFor();
    await shot("users");
  });

  it("creates clients with every setting explained, and shows a secret once", async () => {
    await go("Clients");
    await page.getByRole("link", { name: "New client" }).click();
    await page.getByRole("heading", { name: "New client" }).waitFor();
    await page.getByLabel("Client id").fill("todo-mobile");
    await page.getByLabel("Name", { exact: true }).fill("Todo (mobile)");
    await page.getByLabel("authorization_code").uncheck();
    await page.getByLabel("password", { exact: true }).check();
    await page.getByLabel("Access token lifetime").fill("60");
    await page.getByLabel("Reuse grace window").fill("10");
    // every lifetime and rotation setting carries its explanation
    for (const label of [
      "Access token lifetime",
      "Refresh idle lifetime",
      "Refresh absolute lifetime",
      "Reuse grace window",
    ]) {
      const describedBy = await page.getByLabel(label).getAttribute("aria-describedby");
      expect(await page.locator(`#${describedBy}`).textContent()).toBeTruthy();
    }
    await shot("client-form");
    await page.getByRole("button", { name: "Create client" }).click();
    await page.getByRole("heading", { name: "todo-mobile" }).waitFor();
    const created = await admin("GET", "/admin/clients/todo-mobile");
    expect(created.body).toMatchObject({
      client_name: "Todo (mobile)",
      token_endpoint_auth_method: "none",
      grant_types: ["refresh_token", "password"],
      access_token_ttl: 60,
      refresh_token_reuse_grace: 10,
      rotate_refresh_tokens: true,
    });

    await go("Clients");
    await page.getByRole("link", { name: "New client" }).click();
    await page.getByLabel("Client id").fill("billing-backend");
    await page.getByLabel("Client type").selectOption("client_secret_basic");
    await page.getByLabel("authorization_code").uncheck();
    await page.getByLabel("refresh_token").uncheck();
    await page.getByLabel("client_credentials").check();
    await page.getByRole("button", { name: "Create client" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.waitFor();
    const secret = await dialog.getByLabel("Client secret").inputValue();
    expect(secret).toMatch(/^\S{30,}$/);
    await shot("client-secret");
    await dialog.getByRole("button", { name: "Done" }).click();
    await page.getByRole("heading", { name: "billing-backend" }).waitFor();
    // Gone from the page, and it works.
    expect(await page.content()).not.toContain(secret);
    const cc = await tokenRequest(
      { grant_type: "client_credentials" },
      { authorization: `Basic ${Buffer.from(`billing-backend:${secret}`).toString("base64")}` },
    );
    expect(cc.status).toBe(200);
    await go("Clients");
    await page.getByRole("link", { name: "billing-backend" }).waitFor();
    await shot("clients");
  });

  it("shows a session's timeline growing as a client refreshes, and revokes it", async () => {
    const login = await tokenRequest({
      grant_type: "password",
      client_id: "todo-mobile",
      username: "alice",
      password: "alice-password-1",
    });
    expect(login.status).toBe(200);
    let rt = login.body.refresh_token!;
    for (let i = 0; i < 2; i++) {
      clock.advance(30);
      const r = await tokenRequest({
        grant_type: "refresh_token",
        client_id: "todo-mobile",
        refresh_token: rt,
      });
      expect(r.status).toBe(200);
      rt = r.body.refresh_token!;
    }
    await go("Sessions");
    await page.getByLabel("Client").fill("todo-mobile");
    await page.getByRole("button", { name: "Search" }).click();
    const [session] = (await admin("GET", "/admin/sessions?client_id=todo-mobile")).body;
    await page.getByRole("link", { name: `Session ${session.sid}` }).click();
    const timeline = page.getByRole("list", { name: "Session timeline, newest first" });
    await timeline.getByText("Rotation → generation 3").waitFor();
    await timeline.getByText("Login", { exact: true }).waitFor();
    await timeline.getByText("Idle expiry ahead").waitFor();
    await timeline.getByText("Absolute expiry ahead").waitFor();

    // The app keeps refreshing (and one request is retried within the grace window).
    let previous = rt;
    for (let i = 0; i < 2; i++) {
      clock.advance(30);
      const r = await tokenRequest({
        grant_type: "refresh_token",
        client_id: "todo-mobile",
        refresh_token: rt,
      });
      expect(r.status).toBe(200);
      previous = rt;
      rt = r.body.refresh_token!;
    }
    clock.advance(2);
    const replay = await tokenRequest({
      grant_type: "refresh_token",
      client_id: "todo-mobile",
      refresh_token: previous,
    });
    expect(replay.body.refresh_token).toBe(rt);
    await timeline.getByText("Rotation → generation 5").waitFor();
    await timeline.getByText("Grace replay").waitFor();
    await expect(page.getByTestId("generation").textContent()).resolves.toBe("5");
    await shot("session");

    await page.getByRole("button", { name: "Revoke session" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByRole("button", { name: "Revoke session" }).click();
    await page.getByText("Session revoked.").waitFor();
    await timeline.getByText("Revoked", { exact: true }).waitFor();
    const after = await admin("GET", `/admin/sessions/${session.sid}`);
    expect(after.body).toMatchObject({ active: false, revoked_reason: "revoked_by_admin" });
    const refused = await tokenRequest({
      grant_type: "refresh_token",
      client_id: "todo-mobile",
      refresh_token: rt,
    });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe("invalid_grant");

    await go("Sessions");
    await page.getByRole("table").waitFor();
    await shot("sessions");
  });

  it("filters the audit log", async () => {
    await go("Audit log");
    await page.getByLabel("Event", { exact: true }).selectOption("refresh_replayed");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("cell", { name: "refresh_replayed" }).waitFor();
    expect(await page.getByRole("cell", { name: "refresh", exact: true }).count()).toBe(0);
    await page.getByLabel("Event", { exact: true }).selectOption("");
    await page.getByRole("button", { name: "Search" }).click();
    await page.getByRole("cell", { name: "session_revoked" }).waitFor();
    await shot("audit");
  });

  it("rotates the signing key after asking", async () => {
    await go("Signing keys");
    const before = (await admin("GET", "/admin/keys")).body;
    await page.getByRole("button", { name: "Rotate signing key" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    expect((await admin("GET", "/admin/keys")).body).toEqual(before);
    await page.getByRole("button", { name: "Rotate signing key" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Rotate key" }).click();
    await page.getByText(/New signing key/).waitFor();
    const keys = (await admin("GET", "/admin/keys")).body;
    expect(keys).toHaveLength(before.length + 1);
    await page.getByText("verifying only (overlap)").waitFor();
    await shot("keys");
  });

  it("shows the broker's providers, connections (refresh now) and webhook deliveries", async () => {
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}/token`;
    expect(
      (
        await admin("POST", "/admin/providers", {
          name: "acme",
          token_url: upstreamUrl,
          client_id: "evergreen",
          client_secret: "s3cret-upstream",
          auth_style: "body",
          body_format: "form",
        })
      ).status,
    ).toBe(201);
    const conn = await admin("POST", "/admin/connections", {
      provider: "acme",
      access_token: "at-0",
      refresh_token: "rt-0",
      expires_in: 600,
    });
    expect(conn.status).toBe(201);
    expect((await admin("POST", "/admin/webhooks", { url: "http://127.0.0.1:9/hook" })).status).toBe(201);

    await go("Providers");
    await page.getByRole("cell", { name: upstreamUrl }).waitFor();
    expect(await page.content()).not.toContain("s3cret-upstream");
    await shot("providers");

    await go("Connections");
    await page.getByRole("link", { name: `Connection ${conn.body.id}` }).click();
    await page.getByRole("button", { name: "Refresh now" }).click();
    await page.getByText("Refresh: refreshed.").waitFor();
    expect(upstreamCalls).toBe(1);
    expect((await admin("GET", `/admin/connections/${conn.body.id}`)).body.generation).toBeGreaterThan(
      conn.body.generation ?? 0,
    );
    expect(await page.content()).not.toMatch(/up-at-1|up-rt-1|rt-0/);
    await shot("connection");
    await go("Connections");
    await page.getByRole("cell", { name: "acme" }).waitFor();
    await shot("connections");

    await go("Webhooks");
    await page.getByRole("link", { name: "http://127.0.0.1:9/hook" }).click();
    await page.getByRole("heading", { name: "Webhook deliveries" }).waitFor();
    await page.getByRole("table").or(page.getByText("No deliveries yet.")).waitFor();
    await shot("webhooks");
  });

  it("draws the overview's charts from live counters", async () => {
    await go("Overview");
    // Traffic while the page samples: the rates come from differences between polls.
    for (let i = 0; i < 3; i++) {
      await tokenRequest({
        grant_type: "password",
        client_id: "todo-mobile",
        username: "alice",
        password: "wrong-password",
      });
      const l = await tokenRequest({
        grant_type: "password",
        client_id: "todo-mobile",
        username: "alice",
        password: "alice-password-1",
      });
      await tokenRequest({
        grant_type: "refresh_token",
        client_id: "todo-mobile",
        refresh_token: l.body.refresh_token!,
      });
      await page.waitForTimeout(1500);
    }
    await page.getByText("refresh_token → 200").waitFor();
    await page.getByText("password → 400").waitFor();
    await expect(page.locator("svg.chart polyline").count()).resolves.toBeGreaterThan(2);
    await shot("overview");
  });

  it("is readable on a phone", async () => {
    const phone = await browser.newPage({
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
    });
    await phone.goto(`${url}/dashboard`);
    await phone.getByLabel("Admin token").fill(ADMIN_TOKEN);
    await phone.keyboard.press("Enter");
    await phone.getByRole("heading", { name: "Overview" }).waitFor();
    await phone.goto(`${url}/dashboard#/sessions`);
    await phone.getByRole("heading", { name: "Sessions" }).waitFor();
    await phone
      .getByRole("link", { name: /^Session / })
      .first()
      .waitFor();
    const width = await phone.evaluate(() => document.documentElement.scrollWidth);
    expect(width).toBeLessThanOrEqual(390);
    await shot("phone-sessions", phone);
    await phone.close();
  });

  it("signs an admin in through the issuer, and refuses a user who is not one", async () => {
    await go("Users");
    const row = page.getByRole("row").filter({ hasText: "alice" });
    await row.getByRole("button", { name: "Make admin" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Make admin" }).click();
    await page.getByText("alice is now an administrator.").waitFor();
    expect((await admin("GET", "/admin/users?q=alice")).body[0].is_admin).toBe(true);
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("Signed out.").waitFor();

    await page.getByRole("button", { name: "Sign in with Evergreen" }).click();
    await page.waitForURL((u) => u.pathname === "/authorize" || u.pathname.startsWith("/authorize"));
    await page.getByLabel("Username").fill("alice");
    await page.getByLabel("Password").fill("alice-password-1");
    await Promise.all([page.waitForURL((u) => u.pathname === "/dashboard"), page.keyboard.press("Enter")]);
    await page.getByText("signed in as an administrator").waitFor();
    expect(new URL(page.url()).search).toBe("");
    await go("Connections");
    await page.getByRole("cell", { name: "acme" }).waitFor();
    await go("Users");
    await page.getByRole("cell", { name: "bob", exact: true }).waitFor();
    // The admin API calls carried alice's access token: her dashboard session is in the list.
    const sessions = (await admin("GET", "/admin/sessions?client_id=evergreen-dashboard&state=active")).body;
    expect(sessions.map((s: { username: string }) => s.username)).toEqual(["alice"]);
    await shot("signed-in-as-admin");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("Signed out.").waitFor();
    // Signing out revoked the dashboard's refresh token.
    expect((await admin("GET", "/admin/sessions?client_id=evergreen-dashboard&state=active")).body).toEqual(
      [],
    );

    const other = await browser.newPage();
    await other.goto(`${url}/dashboard`);
    await other.getByRole("button", { name: "Sign in with Evergreen" }).click();
    await other.getByLabel("Username").fill("bob");
    await other.getByLabel("Password").fill("bob-password-1");
    await Promise.all([other.waitForURL((u) => u.pathname === "/dashboard"), other.keyboard.press("Enter")]);
    await other.getByText("your account is not an administrator").waitFor();
    await other.close();
    // bob got no admin scope, and the session the sign-in opened was ended, not left behind.
    const bobs = (await admin("GET", "/admin/sessions?client_id=evergreen-dashboard")).body.filter(
      (s: { username: string }) => s.username === "bob",
    );
    expect(bobs).toHaveLength(1);
    expect(bobs[0]).toMatchObject({ active: false, scope: "openid" });
  });
});
