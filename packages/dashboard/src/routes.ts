import { readFile } from "node:fs/promises";
import type { IssuerExtension } from "@evergreen/server";
import type { FastifyReply } from "fastify";
import { DASHBOARD_CLIENT_ID, registerDashboardClient } from "./client-registration.ts";

/** Where the bundled app lives: dist/app of this package, from src/ and dist/ alike. */
const DEFAULT_APP_DIR = new URL("../dist/app/", import.meta.url);

// The page runs only its own bundled script and stylesheet and talks only to its own origin;
// nothing is inline, nothing comes from elsewhere, and no other site may frame it.
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

function secure(reply: FastifyReply): FastifyReply {
  return (
    reply
      .header("Content-Security-Policy", CSP)
      .header("X-Frame-Options", "DENY")
      .header("X-Content-Type-Options", "nosniff")
      // The callback URL carries the authorization code: never hand it on as a referrer.
      .header("Referrer-Policy", "no-referrer")
  );
}

export interface DashboardOptions {
  /**
   * Register the dashboard as an OAuth client of the issuer (sign-in through the issuer).
   * `serve` does; the CLI's in-process admin backend does not.
   */
  registerClient: boolean;
  /** The bundled app (default: this package's dist/app, built by `npm run build`). */
  appDir?: string | URL;
}

/**
 * The dashboard at /dashboard as a route group of the issuer: the single-page app's files
 * (built into dist/app), and its settings at /dashboard/config.json. The app itself calls the
 * admin API with a Bearer token (the admin token, or an admin's access token), never a cookie.
 */
export function dashboardRoutes(options: DashboardOptions): IssuerExtension {
  return async (app, { ctx }) => {
    const dir = options.appDir ?? DEFAULT_APP_DIR;
    const load = (name: string) => readFile(new URL(name, dir.toString().replace(/\/?$/, "/")));
    let files: { html: Buffer; js: Buffer; css: Buffer } | null = null;
    try {
      files = { html: await load("index.html"), js: await load("app.js"), css: await load("app.css") };
    } catch {
      ctx.log.warn("dashboard: no bundled app in dist/app (run `npm run build`); /dashboard answers 503");
    }
    if (options.registerClient) await registerDashboardClient(ctx);

    const page = async (_req: unknown, reply: FastifyReply) => {
      if (!files) {
        return secure(reply)
          .code(503)
          .type("text/plain; charset=utf-8")
          .send("The dashboard is not built: run `npm run build`.\n");
      }
      return secure(reply)
        .header("Cache-Control", "no-cache")
        .type("text/html; charset=utf-8")
        .send(files.html);
    };
    app.get("/dashboard", page);
    app.get("/dashboard/", page);
    app.get("/dashboard/callback", page);
    app.get("/dashboard/assets/app.js", async (_req, reply) => {
      if (!files) return reply.code(404).send();
      return secure(reply)
        .header("Cache-Control", "no-cache")
        .type("text/javascript; charset=utf-8")
        .send(files.js);
    });
    app.get("/dashboard/assets/app.css", async (_req, reply) => {
      if (!files) return reply.code(404).send();
      return secure(reply)
        .header("Cache-Control", "no-cache")
        .type("text/css; charset=utf-8")
        .send(files.css);
    });
    app.get("/dashboard/config.json", async (_req, reply) =>
      secure(reply).header("Cache-Control", "no-store").send({
        issuer: ctx.config.issuer,
        client_id: DASHBOARD_CLIENT_ID,
        // Sign-in through the issuer works only where the client was registered (serve).
        issuer_sign_in: options.registerClient,
      }),
    );
  };
}
