import { DEFAULT_POOL_TIMEOUTS as DB, type PoolTimeouts } from "@evergreen/db";
import { join, resolve } from "node:path";
import type { SigningAlg } from "./keys/signing-keys.ts";

/** Everything the server reads from the environment, resolved once at start. */
export interface ServerConfig {
  port: number;
  host: string;
  /** The issuer identifier (`iss`), also the default access-token audience. */
  issuer: string;
  audience: string;
  databaseUrl?: string;
  dataDir: string;
  adminToken?: string;
  encryptionKey?: string;
  signingAlg: SigningAlg;
  rateLimit: RateLimitConfig;
  redisUrl?: string;
  logLevel: string;
  /** Seconds between janitor runs in `serve`; 0 disables it. */
  janitorInterval: number;
  /** How long dead families and their tokens are kept (reuse still recognised), seconds. */
  retention: number;
  dbPoolSize: number;
  /** PostgreSQL pool bounds (ms), so a down or frozen database fails a request in bounded time. */
  dbTimeouts: PoolTimeouts;
  /** How long a rate-limit command may wait for Redis before the in-memory store answers (ms). */
  redisCommandTimeoutMs: number;
  /** Origins allowed to call the OAuth endpoints from a browser: "*", a list, or [] (off). */
  corsOrigins: "*" | string[];
}

export interface RateLimitConfig {
  enabled: boolean;
  /** Token-endpoint requests per IP per window. */
  perIp: number;
  /** Token-endpoint requests per client per window. */
  perClient: number;
  windowSeconds: number;
  /** Failed password logins per username per loginWindowSeconds. */
  failedLoginsPerUser: number;
  loginWindowSeconds: number;
}

/** Client defaults when the admin API does not say otherwise (seconds). */
export const CLIENT_DEFAULTS = {
  access_token_ttl: 600,
  refresh_token_idle_ttl: 14 * 24 * 3600,
  refresh_token_absolute_ttl: 90 * 24 * 3600,
  refresh_token_reuse_grace: 15,
  max_sessions_per_user: 50,
};

function int(value: string | undefined, fallback: number): number {
  const n = value === undefined || value === "" ? Number.NaN : Number(value);
  return Number.isFinite(n) ? n : fallback;
}

function corsOrigins(value: string | undefined): "*" | string[] {
  if (value === undefined || value.trim() === "*") return "*";
  if (value.trim() === "off") return [];
  return value
    .split(",")
    .map((o) => o.trim().replace(/\/+$/, ""))
    .filter(Boolean);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const port = int(env.PORT, 8080);
  const host = env.HOST || "127.0.0.1";
  const issuer = (env.ISSUER || `http://${host.includes(":") ? `[${host}]` : host}:${port}`).replace(
    /\/+$/,
    "",
  );
  return {
    port,
    host,
    issuer,
    audience: env.EVERGREEN_AUDIENCE || issuer,
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: resolve(env.EVERGREEN_DATA_DIR || join(process.cwd(), ".evergreen")),
    adminToken: env.EVERGREEN_ADMIN_TOKEN || undefined,
    encryptionKey: env.EVERGREEN_ENCRYPTION_KEY || undefined,
    signingAlg: env.EVERGREEN_SIGNING_ALG === "ES256" ? "ES256" : "EdDSA",
    rateLimit: {
      enabled: env.EVERGREEN_RATE_LIMIT !== "off",
      perIp: int(env.EVERGREEN_RATE_LIMIT_PER_IP, 1200),
      perClient: int(env.EVERGREEN_RATE_LIMIT_PER_CLIENT, 1200),
      windowSeconds: 60,
      failedLoginsPerUser: int(env.EVERGREEN_RATE_LIMIT_FAILED_LOGINS, 10),
      loginWindowSeconds: 15 * 60,
    },
    redisUrl: env.REDIS_URL || undefined,
    logLevel: env.LOG_LEVEL || "info",
    janitorInterval: int(env.EVERGREEN_JANITOR_INTERVAL, 600),
    retention: int(env.EVERGREEN_RETENTION, 7 * 24 * 3600),
    dbPoolSize: int(env.EVERGREEN_DB_POOL, 16),
    dbTimeouts: {
      connectMs: int(env.EVERGREEN_DB_CONNECT_TIMEOUT_MS, DB.connectMs),
      statementMs: int(env.EVERGREEN_DB_STATEMENT_TIMEOUT_MS, DB.statementMs),
      queryMs: int(env.EVERGREEN_DB_QUERY_TIMEOUT_MS, DB.queryMs),
      idleMs: int(env.EVERGREEN_DB_IDLE_TIMEOUT_MS, DB.idleMs),
      idleInTransactionMs: int(env.EVERGREEN_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS, DB.idleInTransactionMs),
    },
    redisCommandTimeoutMs: int(env.EVERGREEN_REDIS_TIMEOUT_MS, 100),
    corsOrigins: corsOrigins(env.EVERGREEN_CORS_ORIGINS),
  };
}
