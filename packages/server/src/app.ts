import { type Clock, type Database, systemClock } from "@evergreen/db";
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from "fastify";
import { adminRoutes } from "./admin/routes.ts";
import { ClientRegistry } from "./clients.ts";
import type { ServerConfig } from "./config.ts";
import type { IssuerContext } from "./context.ts";
import { parseKeyRing } from "./crypto/secret-box.ts";
import { bearerSecretCheck } from "./bearer-secret.ts";
import { HashingGate } from "./crypto/hashing-gate.ts";
import { DpopNonces } from "./dpop/nonce.ts";
import { RedisDpopReplayStore } from "./dpop/redis-replay-store.ts";
import { MemoryDpopReplayStore } from "./dpop/replay-store.ts";
import { OutageLog } from "./dependency-outage.ts";
import { errorHandler } from "./error-handler.ts";
import { BearerTokenError } from "./errors.ts";
import { registerFormParser } from "./form-body.ts";
import { createTokenVerifier } from "./guard/verify.ts";
import { SigningKeyStore } from "./keys/signing-keys.ts";
import { loggerOptions } from "./logger.ts";
import { createMetrics } from "./metrics.ts";
import { FallbackRateLimitStore } from "./rate-limit/fallback-store.ts";
import { RateLimiter } from "./rate-limit/limiter.ts";
import { MemoryRateLimitStore } from "./rate-limit/memory-store.ts";
import { RedisRateLimitStore } from "./rate-limit/redis-store.ts";
import { authorizeRoutes } from "./routes/authorize.ts";
import { deviceVerificationRoutes } from "./routes/device-verification.ts";
import { endSessionRoutes } from "./routes/end-session.ts";
import { oauthEndpoints } from "./routes/oauth-endpoints.ts";
import { readinessRoutes } from "./routes/readiness.ts";

/**
 * A route group registered on the issuer after its own (the broker's, say), with the same
 * context and admin token. Whoever builds the app passes them, so a group given to both
 * `serve` and the CLI's in-process admin backend is served by both. Its admin routes guard
 * themselves with `bearerSecretCheck(ctx, adminToken, …)`; background work it starts must stop
 * in an onClose hook, since the CLI builds the app for a single command.
 */
export type IssuerExtension = FastifyPluginAsync<{ ctx: IssuerContext; adminToken: string }>;

/** How long a starting server waits for Redis before it starts on in-memory limits. */
const REDIS_START_WAIT_MS = 2_000;

export interface IssuerOptions {
  config: ServerConfig;
  db: Database;
  adminToken: string;
  clock?: Clock;
  /** false silences request logs (tests, benchmarks). */
  logger?: boolean;
  /** Where log lines go instead of stdout (tests capture them to check redaction). */
  logStream?: NodeJS.WritableStream;
  /** Route groups registered after the issuer's own (see IssuerExtension). */
  extensions?: IssuerExtension[];
}

export interface Issuer {
  app: FastifyInstance;
  ctx: IssuerContext;
  close(): Promise<void>;
}

/**
 * Fastify and node:http timeouts (milliseconds). Fastify disables the request timeout by
 * default, so a client sending headers and then a trickle (or nothing) of body would hold its
 * connection for ever; these bound every phase. Node checks the request and headers timeouts
 * on an interval, so that interval is kept well below them.
 */
function httpTimeouts(config: ServerConfig) {
  const { request, connection, headers, keepAlive } = config.timeouts;
  // node:http refuses a headers timeout longer than the request timeout.
  const headersTimeout = request > 0 && headers > request ? request : headers;
  const shortest = Math.min(...[request, headersTimeout].filter((t) => t > 0), 30_000);
  return {
    requestTimeout: request,
    connectionTimeout: connection,
    keepAliveTimeout: keepAlive,
    http: {
      requestTimeout: request,
      headersTimeout,
      connectionsCheckingInterval: Math.max(Math.min(Math.floor(shortest / 4), 1000), 50),
    },
  };
}

/**
 * Builds the issuer on an open, migrated database: keys loaded (or generated once), every
 * endpoint registered as its own plugin. Listening is the caller's choice (`app.listen`,
 * or `app.inject` in tests).
 */
export async function buildIssuer(options: IssuerOptions): Promise<Issuer> {
  const { config, db } = options;
  const clock = options.clock ?? systemClock;
  const app = Fastify({
    logger:
      options.logger === false
        ? false
        : {
            ...(loggerOptions(config.logLevel) as object),
            ...(options.logStream ? { stream: options.logStream } : {}),
          },
    bodyLimit: 64 * 1024,
    // Only the listed proxies' X-Forwarded-For is believed (config.ts, parseTrustProxy).
    trustProxy: config.trustProxy === false ? false : config.trustProxy.join(","),
    ...httpTimeouts(config),
  });
  const ring = parseKeyRing(config.encryptionKey);
  const keys = new SigningKeyStore(db, ring, clock, config.signingAlg);
  await keys.init();
  const metrics = createMetrics(options.logger !== false);
  const store = config.redisUrl
    ? new FallbackRateLimitStore(
        new RedisRateLimitStore(config.redisUrl, { commandTimeoutMs: config.redisCommandTimeoutMs }),
        app.log,
        metrics.rateLimitStoreFallback,
      )
    : new MemoryRateLimitStore();
  const dpopReplay = config.redisUrl
    ? new RedisDpopReplayStore(config.redisUrl, { commandTimeoutMs: config.redisCommandTimeoutMs })
    : new MemoryDpopReplayStore();
  await Promise.all([
    store instanceof FallbackRateLimitStore ? store.start(REDIS_START_WAIT_MS) : undefined,
    dpopReplay instanceof RedisDpopReplayStore ? dpopReplay.waitConnected(REDIS_START_WAIT_MS) : undefined,
  ]);
  const ctx: IssuerContext = {
    config,
    db,
    clock,
    ring,
    keys,
    clients: new ClientRegistry(db, clock),
    limiter: new RateLimiter(store, clock, config.rateLimit.enabled),
    hashing: new HashingGate(config.hashing.concurrency, config.hashing.queue),
    metrics,
    log: app.log,
    verifyAccessToken: createTokenVerifier({
      issuer: config.issuer,
      audience: config.audience,
      clock,
      getKey: async (header) => {
        const key = header.kid ? await keys.byKid(header.kid) : undefined;
        if (!key || key.alg !== header.alg)
          throw new BearerTokenError("invalid_token", "unknown signing key");
        return key.publicKey;
      },
    }),
    // Every process holding the same encryption key issues and accepts the same nonces.
    dpop: { replay: dpopReplay, nonces: new DpopNonces(ring.current.key, clock) },
  };

  registerFormParser(app);
  app.setErrorHandler(errorHandler(new OutageLog(app.log, clock, metrics)));
  app.setNotFoundHandler((_req, reply) =>
    reply.code(404).send({ error: "not_found", error_description: "no such endpoint" }),
  );

  await app.register(oauthEndpoints, { ctx });
  // The browser's pages: the login, consent and logout forms and the device verification page.
  await app.register(authorizeRoutes, { ctx });
  await app.register(endSessionRoutes, { ctx });
  await app.register(deviceVerificationRoutes, { ctx });
  await app.register(adminRoutes, { ctx, adminToken: options.adminToken });
  for (const extension of options.extensions ?? []) {
    await app.register(extension, { ctx, adminToken: options.adminToken });
  }
  // With EVERGREEN_METRICS_TOKEN set, /metrics wants it as a Bearer token (failures throttled
  // like the admin token's); unset, /metrics is open, as Prometheus scrapers expect by default.
  const metricsAuth = config.metricsToken
    ? bearerSecretCheck(
        ctx,
        config.metricsToken,
        () => new BearerTokenError(null, "a metrics token is required"),
      )
    : undefined;
  app.get("/metrics", { onRequest: metricsAuth ? [metricsAuth] : [] }, async (_req, reply) => {
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
  app.get("/healthz", async () => ({ status: "ok" }));
  await app.register(readinessRoutes, { ctx });

  return {
    app,
    ctx,
    async close() {
      await app.close();
      await ctx.limiter.close();
      await ctx.dpop.replay.close?.();
    },
  };
}
