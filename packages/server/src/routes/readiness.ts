import { migrations } from "@evergreen/db";
import type { FastifyInstance } from "fastify";
import type { IssuerContext } from "../context.ts";
import { OUTAGE_RETRY_AFTER_SECONDS } from "../dependency-outage.ts";
import { readinessQueries } from "../queries.ts";

/** How long one readiness probe waits for a dependency before calling it down (ms). */
const CHECK_TIMEOUT_MS = 2_000;

const LATEST_MIGRATION = Math.max(...migrations.map((m) => m.version));

function withTimeout<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not answer in ${CHECK_TIMEOUT_MS} ms`)),
      CHECK_TIMEOUT_MS,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * GET /readyz: readiness, as opposed to /healthz (liveness). Ready means this process can
 * answer a token request now: signing keys loaded, the schema at the version this code expects,
 * the database answering a cheap query, and Redis answering when REDIS_URL is set. Anything
 * else is 503 with Retry-After and which check failed (never a detail that could leak a secret).
 */
export async function readinessRoutes(app: FastifyInstance, opts: { ctx: IssuerContext }): Promise<void> {
  const { ctx } = opts;
  app.get("/readyz", async (_req, reply) => {
    const checks: Record<string, string> = {};
    try {
      ctx.keys.current();
      checks.keys = "ok";
    } catch {
      checks.keys = "not loaded";
    }
    try {
      const { rows } = await withTimeout(
        ctx.db.query<{ version: number | null }>(readinessQueries.schemaVersion()),
        "database",
      );
      const version = rows[0]?.version ?? 0;
      checks.database =
        version >= LATEST_MIGRATION ? "ok" : `schema at version ${version}, expected ${LATEST_MIGRATION}`;
    } catch {
      checks.database = "unreachable";
    }
    if (ctx.config.redisUrl) {
      try {
        await withTimeout(ctx.limiter.ping(), "redis");
        checks.redis = "ok";
      } catch {
        checks.redis = "unreachable";
      }
    }
    const ready = Object.values(checks).every((v) => v === "ok");
    reply.header("Cache-Control", "no-store");
    if (!ready) reply.code(503).header("Retry-After", String(OUTAGE_RETRY_AFTER_SECONDS));
    return { status: ready ? "ready" : "unavailable", checks };
  });
}
