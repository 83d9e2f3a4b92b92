import { isIP } from "node:net";
import { availableParallelism } from "node:os";
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
  /**
   * How long dead families and their tokens are kept (reuse still recognised), seconds; also how
   * long a rotated token is kept after its own idle expiry.
   */
  retention: number;
  /** Storage bounds the janitor keeps (audit retention, batch size) and what a refresh audits. */
  storage: StorageConfig;
  dbPoolSize: number;
  /** PostgreSQL pool bounds (ms), so a down or frozen database fails a request in bounded time. */
  dbTimeouts: PoolTimeouts;
  /** How long a rate-limit command may wait for Redis before the in-memory store answers (ms). */
  redisCommandTimeoutMs: number;
  /** Origins allowed to call the OAuth endpoints from a browser: "*", a list, or [] (off). */
  corsOrigins: "*" | string[];
  /** Proxies whose X-Forwarded-For is believed (addresses, CIDRs, or loopback/linklocal/uniquelocal); false: none. */
  trustProxy: false | string[];
  /** Bearer token /metrics requires; undefined leaves /metrics open. */
  metricsToken?: string;
  /** Concurrent password hashes, and how many may wait for one before 503. */
  hashing: { concurrency: number; queue: number };
  /** HTTP timeouts in milliseconds (0 disables one). */
  timeouts: HttpTimeouts;
  dpop: DpopConfig;
}

/** DPoP (RFC 9449) at the token endpoint and /userinfo. */
export interface DpopConfig {
  /** Every proof must carry a current server nonce (EVERGREEN_DPOP_REQUIRE_NONCE); default off. */
  requireNonce: boolean;
  /** How far a proof's `iat` may be from the server's clock (EVERGREEN_DPOP_PROOF_WINDOW), seconds. */
  windowSeconds: number;
}

export interface StorageConfig {
  /** Seconds audit events are kept; whole day partitions are dropped, so up to a day longer. */
  auditRetention: number;
  /**
   * Whether each plain refresh writes an audit event ("all") or not ("none"). Security events
   * (login, login failures, reuse detection, revocation, eviction, grace replays) are always
   * written; a session's rotation count stays visible as its live token's generation.
   */
  auditRotations: "all" | "none";
  /** Rows one janitor statement touches at most (locks stay short). */
  janitorBatch: number;
}

/** EVERGREEN_AUDIT_ROTATIONS: all (default) or none. */
export function parseAuditRotations(value: string | undefined): "all" | "none" {
  const v = (value ?? "").trim();
  if (v === "" || v === "all") return "all";
  if (v === "none") return "none";
  throw new Error(`EVERGREEN_AUDIT_ROTATIONS: "${v}" is not one of all, none`);
}

export interface HttpTimeouts {
  /** Whole request, headers and body, from its first byte (slow bodies). */
  request: number;
  /** A socket with no activity at all. */
  connection: number;
  /** Receiving the request headers. */
  headers: number;
  /** An idle keep-alive connection between requests. */
  keepAlive: number;
}

export interface RateLimitConfig {
  enabled: boolean;
  /** Token-endpoint requests per IP per window. */
  perIp: number;
  /** Token-endpoint requests per client per window. */
  perClient: number;
  windowSeconds: number;
  /** Failed password logins per (exact username, client address) per loginWindowSeconds: past it, 429 for that pair. */
  failedLoginsPerUserIp: number;
  /**
   * Failed password logins per exact username from all addresses per loginWindowSeconds: past
   * it the account is slowed (one attempt per address per windowSeconds), never locked.
   */
  failedLoginsPerUser: number;
  loginWindowSeconds: number;
  /** password grants per client address per windowSeconds (sized to scrypt capacity). */
  passwordPerIp: number;
  /** Requests to /revoke, /introspect and /userinfo per client address per windowSeconds, each. */
  endpointPerIp: number;
  /** Failed admin or metrics authentications per address per loginWindowSeconds. */
  authFailuresPerIp: number;
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

const PROXY_NAMES = new Set(["loopback", "linklocal", "uniquelocal"]);

/**
 * EVERGREEN_TRUST_PROXY: a comma list of proxy addresses, CIDRs or the names loopback,
 * linklocal, uniquelocal. Only a request arriving from one of them has its X-Forwarded-For
 * believed. The old `1`/`true` (which trusted every sender) now means `loopback`: a proxy on
 * this host. Unset, `0`, `false`: no proxy, the socket address is the client.
 */
export function parseTrustProxy(value: string | undefined): false | string[] {
  const v = (value ?? "").trim();
  if (v === "" || v === "0" || v === "false" || v === "off") return false;
  if (v === "1" || v === "true") return ["loopback"];
  const list = v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const item of list) {
    const [addr, bits, extra] = item.split("/");
    const family = isIP(addr ?? "");
    const bitsOk =
      bits === undefined ||
      (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 6 ? 128 : 32) && extra === undefined);
    if (!PROXY_NAMES.has(item) && !(family !== 0 && bitsOk)) {
      throw new Error(
        `EVERGREEN_TRUST_PROXY: "${item}" is not an IP address, a CIDR, or one of loopback, linklocal, uniquelocal`,
      );
    }
  }
  return list;
}

const seconds = (value: string | undefined, fallback: number) => Math.max(int(value, fallback), 0) * 1000;

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
      failedLoginsPerUserIp: int(env.EVERGREEN_RATE_LIMIT_FAILED_LOGINS, 10),
      failedLoginsPerUser: int(env.EVERGREEN_RATE_LIMIT_FAILED_LOGINS_PER_USER, 100),
      loginWindowSeconds: 15 * 60,
      passwordPerIp: int(env.EVERGREEN_RATE_LIMIT_PASSWORD_PER_IP, 300),
      endpointPerIp: int(env.EVERGREEN_RATE_LIMIT_ENDPOINT_PER_IP, 1200),
      authFailuresPerIp: int(env.EVERGREEN_RATE_LIMIT_AUTH_FAILURES, 20),
    },
    redisUrl: env.REDIS_URL || undefined,
    logLevel: env.LOG_LEVEL || "info",
    janitorInterval: int(env.EVERGREEN_JANITOR_INTERVAL, 600),
    retention: int(env.EVERGREEN_RETENTION, 7 * 24 * 3600),
    storage: {
      auditRetention: Math.max(int(env.EVERGREEN_AUDIT_RETENTION, 90 * 24 * 3600), 0),
      auditRotations: parseAuditRotations(env.EVERGREEN_AUDIT_ROTATIONS),
      janitorBatch: Math.max(int(env.EVERGREEN_JANITOR_BATCH, 5000), 1),
    },
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
    trustProxy: parseTrustProxy(env.EVERGREEN_TRUST_PROXY),
    metricsToken: env.EVERGREEN_METRICS_TOKEN || undefined,
    hashing: {
      // scrypt runs on libuv's threadpool (4 threads unless UV_THREADPOOL_SIZE says otherwise).
      concurrency: Math.max(int(env.EVERGREEN_HASH_CONCURRENCY, Math.min(4, availableParallelism())), 1),
      queue: Math.max(int(env.EVERGREEN_HASH_QUEUE, 64), 0),
    },
    timeouts: {
      request: seconds(env.EVERGREEN_REQUEST_TIMEOUT, 30),
      connection: seconds(env.EVERGREEN_CONNECTION_TIMEOUT, 60),
      headers: seconds(env.EVERGREEN_HEADERS_TIMEOUT, 10),
      keepAlive: seconds(env.EVERGREEN_KEEP_ALIVE_TIMEOUT, 5),
    },
    dpop: {
      requireNonce: ["1", "true", "on"].includes(
        (env.EVERGREEN_DPOP_REQUIRE_NONCE ?? "").trim().toLowerCase(),
      ),
      windowSeconds: Math.min(Math.max(int(env.EVERGREEN_DPOP_PROOF_WINDOW, 60), 1), 600),
    },
  };
}
