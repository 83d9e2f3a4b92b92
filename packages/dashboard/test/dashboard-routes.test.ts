/**
 * The dashboard's route group without a browser: its files and headers, the answer when the
 * app was never built, and its registration as a client of the issuer, kept in line with the
 * issuer's address across restarts.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type Database, migrate, openPglite } from "@evergreen/db";
import { buildIssuer, loadConfig } from "@evergreen/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DASHBOARD_CLIENT_ID, dashboardRoutes } from "../src/index.ts";

const ADMIN_TOKEN = "dashboard-routes-test-admin-token-0123456789";

describe("dashboard routes", () => {
  let db: Database;
  let dir: string;

  beforeAll(async () => {
    db = await openPglite("memory://");
    await migrate(db);
    dir = mkdtempSync(join(tmpdir(), "evergreen-dashboard-"));
    writeFileSync(join(dir, "index.html"), "<!doctype html><title>t</title>");
    writeFileSync(join(dir, "app.js"), "console.log(1)");
    writeFileSync(join(dir, "app.css"), "body{}");
  });
  afterAll(async () => {
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function issuer(port: number, options: Parameters<typeof dashboardRoutes>[0]) {
    return buildIssuer({
      config: loadConfig({ PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "silent" }),
      db,
      adminToken: ADMIN_TOKEN,
      logger: false,
      extensions: [dashboardRoutes(options)],
    });
  }

  it("serves the app with a strict CSP, and registers itself as a first-party public client", async () => {
    const { app, close } = await issuer(8123, { registerClient: true, appDir: pathToFileURL(`${dir}/`) });
    try {
      for (const path of ["/dashboard", "/dashboard/", "/dashboard/callback?code=x&state=y"]) {
        const res = await app.inject({ method: "GET", url: path });
        expect(res.statusCode, path).toBe(200);
        expect(res.headers["content-type"]).toContain("text/html");
        expect(res.headers["content-security-policy"]).toContain("default-src 'none'");
        expect(res.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
        expect(res.headers["x-frame-options"]).toBe("DENY");
        expect(res.headers["referrer-policy"]).toBe("no-referrer");
        expect(res.headers["set-cookie"]).toBeUndefined();
      }
      const js = await app.inject({ method: "GET", url: "/dashboard/assets/app.js" });
      expect(js.headers["content-type"]).toContain("text/javascript");
      expect(js.body).toBe("console.log(1)");
      const config = await app.inject({ method: "GET", url: "/dashboard/config.json" });
      expect(config.json()).toEqual({
        issuer: "http://127.0.0.1:8123",
        client_id: DASHBOARD_CLIENT_ID,
        issuer_sign_in: true,
      });
      const client = await app.inject({
        method: "GET",
        url: `/admin/clients/${DASHBOARD_CLIENT_ID}`,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(client.json()).toMatchObject({
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"],
        redirect_uris: ["http://127.0.0.1:8123/dashboard/callback"],
        scope: "openid profile evergreen:admin",
        skip_consent: true,
      });
      expect(client.json().client_secret).toBeUndefined();
    } finally {
      await close();
    }
  });

  it("follows the issuer's address on the next start, keeping one client", async () => {
    const { app, close } = await issuer(8124, { registerClient: true, appDir: pathToFileURL(`${dir}/`) });
    try {
      const list = await app.inject({
        method: "GET",
        url: "/admin/clients?q=evergreen-dashboard",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      expect(list.json()).toHaveLength(1);
      expect(list.json()[0].redirect_uris).toEqual(["http://127.0.0.1:8124/dashboard/callback"]);
    } finally {
      await close();
    }
  });

  it("answers 503 with what to do when the app was never built, and offers no issuer sign-in unregistered", async () => {
    const empty = mkdtempSync(join(tmpdir(), "evergreen-dashboard-empty-"));
    const { app, close } = await issuer(8125, { registerClient: false, appDir: pathToFileURL(`${empty}/`) });
    try {
      const res = await app.inject({ method: "GET", url: "/dashboard" });
      expect(res.statusCode).toBe(503);
      expect(res.body).toContain("npm run build");
      expect((await app.inject({ method: "GET", url: "/dashboard/assets/app.js" })).statusCode).toBe(404);
      expect((await app.inject({ method: "GET", url: "/dashboard/config.json" })).json().issuer_sign_in).toBe(
        false,
      );
    } finally {
      await close();
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
