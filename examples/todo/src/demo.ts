import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { type Clock, type Database, systemClock } from "@evergreen/db";
import { type IssuerExtension, loadConfig, type RunningServer, startServer } from "@evergreen/server";
import { createAccessTokenVerifier } from "@evergreen/server/guard";
import type { FastifyInstance } from "fastify";
import { ensureTodoSchema } from "./schema.ts";
import { TODO_SCOPE } from "./todo-api.ts";
import { buildTodoServer, type TodoServerStats } from "./todo-server.ts";
import { bundleWebApp } from "./web-bundle.ts";

export const WEB_CLIENT_ID = "todo-web";
export const LEGACY_CLIENT_ID = "todo-legacy";
const SCOPE = `openid ${TODO_SCOPE}`;

export interface DemoOptions {
  /** Issuer data (signing keys, admin token, embedded database). */
  dataDir: string;
  /** postgres://… instead of the embedded database. */
  databaseUrl?: string;
  host?: string;
  /** 0 picks a free port. */
  issuerPort?: number;
  port?: number;
  /** Access-token lifetime of both demo clients, seconds. */
  accessTokenTtl?: number;
  /** Seconds before expiry the page refreshes. */
  refreshLeeway?: number;
  /** Preselects the legacy `/refresh/` endpoint in the sign-in form. */
  legacy?: boolean;
  /** One clock for the issuer and the API (tests move it). */
  clock?: Clock;
  username?: string;
  /** Issuer request logs on stdout. */
  verbose?: boolean;
  /** Extra route groups or hooks for the issuer (tests date its answers by their clock). */
  issuerExtensions?: IssuerExtension[];
}

export interface RunningDemo {
  appUrl: string;
  issuerUrl: string;
  username: string;
  password: string;
  adminToken: string;
  /** The one database: the issuer's tables and the todo tables. */
  db: Database;
  issuer: RunningServer;
  todo: FastifyInstance;
  stats: TodoServerStats;
  stop(): Promise<void>;
}

/** A port free right now on `host`. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

type Inject = (
  method: "POST" | "PATCH",
  url: string,
  body: object,
) => Promise<{ status: number; body: string }>;

/**
 * Registers (or updates) the two demo clients and the demo user. Both clients are public and
 * first-party; `todo-legacy` does not rotate refresh tokens, as the seed's server never did.
 * The user gets a fresh random password on every start.
 */
async function seed(admin: Inject, ttl: number, username: string): Promise<string> {
  const common = {
    token_endpoint_auth_method: "none",
    grant_types: ["password", "refresh_token"],
    scope: SCOPE,
    access_token_ttl: ttl,
    refresh_token_reuse_grace: 15,
    skip_consent: true,
  };
  const clients = [
    { client_id: WEB_CLIENT_ID, client_name: "Todo web app", rotate_refresh_tokens: true, ...common },
    {
      client_id: LEGACY_CLIENT_ID,
      client_name: "Todo web app (legacy /refresh/ endpoint)",
      rotate_refresh_tokens: false,
      ...common,
    },
  ];
  for (const { client_id, ...settings } of clients) {
    const created = await admin("POST", "/admin/clients", { client_id, ...settings });
    const done =
      created.status === 201 ||
      (created.status === 409 &&
        (await admin("PATCH", `/admin/clients/${client_id}`, settings)).status === 200);
    if (!done) throw new Error(`registering the client ${client_id} failed (${created.status})`);
  }
  const password = randomBytes(9).toString("base64url");
  const user = await admin("POST", "/admin/users", { username, password, email: `${username}@example.test` });
  const ok =
    user.status === 201 ||
    (user.status === 409 &&
      (await admin("PATCH", `/admin/users/${encodeURIComponent(username)}`, { password })).status === 200);
  if (!ok) throw new Error(`creating the user ${username} failed (${user.status})`);
  return password;
}

/**
 * The whole demo in one process: the real issuer (`startServer`, what `evergreen serve` runs)
 * on the embedded database, the demo clients and user, the todo API on the same database with
 * its own tables, and the page, bundled for the browser now.
 */
export async function startDemo(options: DemoOptions): Promise<RunningDemo> {
  const clock = options.clock ?? systemClock;
  const host = options.host ?? "127.0.0.1";
  const ttl = options.accessTokenTtl ?? 30;
  const username = options.username ?? "alice";
  const config = loadConfig({
    // The issuer's URL is its identity (`iss`, discovery), so its port is fixed before it starts.
    PORT: String(options.issuerPort === 0 ? await freePort(host) : (options.issuerPort ?? 8090)),
    HOST: host,
    EVERGREEN_DATA_DIR: options.dataDir,
    DATABASE_URL: options.databaseUrl ?? "",
    LOG_LEVEL: options.verbose ? "info" : "warn",
  });
  const [web, issuer] = await Promise.all([
    bundleWebApp(),
    startServer(config, { clock, logger: options.verbose ?? false, extensions: options.issuerExtensions }),
  ]);
  try {
    const admin: Inject = async (method, url, body) => {
      const res = await issuer.issuer.app.inject({
        method,
        url,
        headers: { authorization: `Bearer ${issuer.adminToken}` },
        payload: body,
      });
      return { status: res.statusCode, body: res.body };
    };
    const password = await seed(admin, ttl, username);
    await ensureTodoSchema(issuer.db);

    const verifier = createAccessTokenVerifier({
      issuer: config.issuer,
      audience: config.audience,
      jwksUri: `${issuer.url}/jwks`,
      clock,
    });
    const { app, stats } = buildTodoServer({
      db: issuer.db,
      clock,
      verifier,
      web,
      config: {
        issuer: config.issuer,
        clientId: WEB_CLIENT_ID,
        legacyClientId: LEGACY_CLIENT_ID,
        mode: options.legacy ? "legacy" : "standard",
        refreshLeeway: options.refreshLeeway ?? 5,
      },
      legacy: { tokenEndpoint: `${issuer.url}/token`, scope: SCOPE },
    });
    await app.listen({ port: options.port ?? 8091, host });
    const address = app.server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    return {
      appUrl: `http://${host}:${port}`,
      issuerUrl: issuer.url,
      username,
      password,
      adminToken: issuer.adminToken,
      db: issuer.db,
      issuer,
      todo: app,
      stats,
      async stop() {
        await app.close();
        await issuer.stop();
      },
    };
  } catch (err) {
    await issuer.stop().catch(() => {});
    throw err;
  }
}
