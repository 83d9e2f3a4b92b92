/**
 * Evergreen as a bench case: `evergreen serve` (compiled, as deployed; `prebench` builds) in its
 * own process, on PostgreSQL or embedded PGlite, with every feature on: rotation with reuse
 * detection and the grace window, idle and absolute lifetimes, one audit event per refresh,
 * and the rate limiter running with its budgets raised above what one load generator on one IP
 * sends. Logs at warn. Refresh tokens are minted by the password grant, one login per client.
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import pg from "pg";
import { freePort, inParallel, startProcess } from "./process.ts";
import type { RefreshSystem } from "./system.ts";

export interface EvergreenOptions {
  /** A PostgreSQL database URL, or undefined for embedded PGlite. */
  databaseUrl?: string;
  workers?: number;
}

export interface EvergreenSystem extends RefreshSystem {
  adminToken: string;
  /** Creates a user and returns its id (to seed families for in growth runs). */
  addUser(username: string): Promise<string>;
}

async function json(port: number, path: string, token: string, body: unknown) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json() as Promise<Record<string, unknown>>;
}

export async function startEvergreen(options: EvergreenOptions): Promise<EvergreenSystem> {
  const port = await freePort();
  const adminToken = randomBytes(24).toString("hex");
  const dataDir = `/tmp/evergreen-bench-${randomBytes(4).toString("hex")}`;
  const args = ["packages/cli/bin/evergreen.js", "serve"];
  if (options.workers && options.workers > 1) args.push("--workers", String(options.workers));
  const proc = await startProcess(
    args,
    {
      DATABASE_URL: options.databaseUrl ?? "",
      EVERGREEN_DATA_DIR: dataDir,
      EVERGREEN_ADMIN_TOKEN: adminToken,
      EVERGREEN_ENCRYPTION_KEY: randomBytes(32).toString("base64"),
      EVERGREEN_BROKER_WORKER: "off",
      // The limiter runs on every request; its budgets sit above one load generator's rate.
      EVERGREEN_RATE_LIMIT_PER_IP: "1000000000",
      EVERGREEN_RATE_LIMIT_PER_CLIENT: "1000000000",
      EVERGREEN_RATE_LIMIT_PASSWORD_PER_IP: "1000000000",
      EVERGREEN_DB_POOL: process.env.BENCH_DB_POOL ?? "16",
      LOG_LEVEL: "warn",
    },
    port,
    "/healthz",
  );
  await json(port, "/admin/users", adminToken, { username: "bench", password: "bench-password" });
  await json(port, "/admin/clients", adminToken, {
    client_id: "bench",
    token_endpoint_auth_method: "none",
    grant_types: ["password", "refresh_token"],
    max_sessions_per_user: 10000,
  });
  return {
    proc,
    port,
    adminToken,
    path: "/token",
    body: (token) => `grant_type=refresh_token&client_id=bench&refresh_token=${token}`,
    async mint(n) {
      // Four logins at a time: the server's hashing concurrency, so scrypt uses every core.
      return inParallel(n, 4, async () => {
        const res = await fetch(`http://127.0.0.1:${port}/token`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: "grant_type=password&username=bench&password=bench-password&client_id=bench",
        });
        const body = (await res.json()) as { refresh_token?: string };
        if (!body.refresh_token) throw new Error(`login failed: ${res.status} ${JSON.stringify(body)}`);
        return body.refresh_token;
      });
    },
    async addUser(username) {
      const u = await json(port, "/admin/users", adminToken, { username, password: "seed-password-1" });
      return String(u.id);
    },
    async stop() {
      await proc.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Seeds `n` live families, each with one refresh token and one audit event, for `userId` of
 * client "bench", straight in SQL (generate_series). Hashes are 32 pseudo-random bytes no
 * client holds; the families look like real sessions to every index the refresh path uses.
 */
export async function seedFamilies(databaseUrl: string, userId: string, n: number): Promise<void> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const batch = 200_000;
    for (let from = 1; from <= n; from += batch) {
      const to = Math.min(n, from + batch - 1);
      await c.query(
        `WITH f AS (
           INSERT INTO families (id, user_id, client_id, scope, created_at, absolute_expires_at)
           SELECT gen_random_uuid(), $1::uuid, 'bench', '', now() - interval '1 hour', now() + interval '30 days'
             FROM generate_series($2::int, $3::int)
           RETURNING id
         ), t AS (
           INSERT INTO refresh_tokens (hash, family_id, generation, created_at, expires_at, at_jti, at_kid, at_expires_at)
           SELECT decode(md5(f.id::text) || md5(f.id::text || 'x'), 'hex'), f.id, 1, now() - interval '1 hour',
                  now() + interval '14 days', gen_random_uuid(), 'seed', now() + interval '10 minutes'
             FROM f
         )
         INSERT INTO audit_events (at, type, user_id, client_id, family_id, ip)
         SELECT now() - interval '1 hour', 'login', $1::uuid, 'bench', f.id, '127.0.0.1' FROM f`,
        [userId, from, to],
      );
    }
    await c.query("VACUUM ANALYZE families");
    await c.query("VACUUM ANALYZE refresh_tokens");
    await c.query("VACUUM ANALYZE audit_events");
  } finally {
    await c.end();
  }
}

/** The floor under a refresh (see floor-server.ts): `kind` is http, sign or pg. */
export async function startFloor(kind: string, databaseUrl?: string): Promise<RefreshSystem> {
  const port = await freePort();
  const proc = await startProcess(
    ["--import", "tsx", "bench/systems/floor-server.ts"],
    { FLOOR: kind, DATABASE_URL: databaseUrl ?? "" },
    port,
    "/healthz",
  );
  return {
    proc,
    port,
    path: "/token",
    body: (token) => `grant_type=refresh_token&client_id=bench&refresh_token=${token}`,
    async mint(n) {
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/mint`, { method: "POST" });
        out.push(((await res.json()) as { refresh_token: string }).refresh_token);
      }
      return out;
    },
    stop: () => proc.stop(),
  };
}
