import type { Clock, Database } from "@evergreen/db";
import type { AccessTokenVerifier } from "@evergreen/server/guard";
import Fastify, { type FastifyInstance } from "fastify";
import { legacyAuth } from "./legacy-auth.ts";
import { todoApi } from "./todo-api.ts";
import type { WebAssets } from "./web-bundle.ts";

/** What the page needs to know, handed to it in the HTML (nothing secret: public clients). */
export interface WebConfig {
  issuer: string;
  clientId: string;
  legacyClientId: string;
  /** The sign-in form's preselected refresh style. */
  mode: "standard" | "legacy";
  /** Seconds before expiry the SDK refreshes. */
  refreshLeeway: number;
}

export interface TodoServerOptions {
  db: Database;
  clock: Clock;
  verifier: AccessTokenVerifier;
  web: WebAssets;
  config: WebConfig;
  /** The legacy endpoints' upstream: the issuer's token endpoint and the non-rotating client. */
  legacy: { tokenEndpoint: string; scope: string };
}

/** Counters the tests read (and nothing else does). */
export interface TodoServerStats {
  /** 401 answers of the API: a page that refreshes ahead of expiry never gets one. */
  unauthorized: number;
  /** Calls of the legacy `/refresh/` endpoint. */
  legacyRefreshes: number;
}

const escapeJson = (value: unknown) => JSON.stringify(value).replace(/</g, "\\u003c");

/**
 * The todo app's one process besides the issuer: the page, its script, the guarded API under
 * `/api`, and the seed's legacy `/token/` and `/refresh/` endpoints.
 */
export function buildTodoServer(options: TodoServerOptions): {
  app: FastifyInstance;
  stats: TodoServerStats;
} {
  const stats: TodoServerStats = { unauthorized: 0, legacyRefreshes: 0 };
  const app = Fastify({
    logger: false,
    bodyLimit: 16 * 1024,
    // Fastify's defaults would drop unknown fields and turn 42 into "42": refuse both instead.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  });
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    `connect-src 'self' ${new URL(options.config.issuer).origin}`,
    "img-src 'self' data:",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join("; ");
  const html = options.web.html.replace(
    "<!--config-->",
    `<script type="application/json" id="config">${escapeJson(options.config)}</script>`,
  );

  // The page's clock may be a test's: answers are dated by the same clock as the tokens.
  app.addHook("onSend", async (_req, reply) => {
    reply.header("Date", options.clock.now().toUTCString());
  });
  app.addHook("onResponse", async (req, reply) => {
    if (reply.statusCode === 401 && req.url.startsWith("/api/")) stats.unauthorized++;
    if (req.method === "POST" && req.url === "/refresh/") stats.legacyRefreshes++;
  });

  app.get("/", async (_req, reply) =>
    reply
      .type("text/html; charset=utf-8")
      .header("Content-Security-Policy", csp)
      .header("X-Frame-Options", "DENY")
      .header("Cache-Control", "no-store")
      .send(html),
  );
  app.get("/app.js", async (_req, reply) =>
    reply.type("text/javascript; charset=utf-8").header("Cache-Control", "no-store").send(options.web.script),
  );
  app.register(todoApi, { prefix: "/api", db: options.db, clock: options.clock, verifier: options.verifier });
  app.register(legacyAuth, {
    tokenEndpoint: options.legacy.tokenEndpoint,
    clientId: options.config.legacyClientId,
    scope: options.legacy.scope,
  });
  return { app, stats };
}
