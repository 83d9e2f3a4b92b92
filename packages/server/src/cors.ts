import type { FastifyInstance } from "fastify";

// Endpoints a browser app on another origin calls. Credentials are bearer tokens and form
// parameters, never cookies, so allowing any origin here gives a page nothing it could not
// already send; the admin API is deliberately not in the list.
const CORS_PATHS = new Set([
  "/token",
  "/revoke",
  "/introspect",
  "/userinfo",
  "/jwks",
  "/.well-known/oauth-authorization-server",
  "/.well-known/openid-configuration",
]);

// The SDK reads the server's clock from Date and tells invalid_token from other 401s by the
// challenge; rate-limit headers let it back off.
const EXPOSED = "Date, WWW-Authenticate, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset";

/**
 * CORS for the OAuth endpoints. `origins` is "*" (any origin, no credentials), a list of
 * allowed origins, or empty (off). Preflights are answered here with 204.
 */
export function registerCors(app: FastifyInstance, origins: "*" | string[]): void {
  if (origins !== "*" && origins.length === 0) return;
  const allowed = origins === "*" ? undefined : new Set(origins);
  app.addHook("onRequest", async (req, reply) => {
    const origin = req.headers.origin;
    if (!origin || !CORS_PATHS.has(req.url.split("?")[0]!)) return;
    if (allowed && !allowed.has(origin)) return;
    reply.header("Access-Control-Allow-Origin", allowed ? origin : "*");
    if (allowed) reply.header("Vary", "Origin");
    reply.header("Access-Control-Expose-Headers", EXPOSED);
    if (req.method === "OPTIONS") {
      return reply
        .code(204)
        .header("Access-Control-Allow-Methods", "GET, POST")
        .header("Access-Control-Allow-Headers", "Authorization, Content-Type")
        .header("Access-Control-Max-Age", "600")
        .send();
    }
  });
}
