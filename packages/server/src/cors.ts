import type { FastifyInstance } from "fastify";

// The SDK reads the server's clock from Date and tells invalid_token from other 401s by the
// challenge; rate-limit headers let it back off; a DPoP client reads the server's nonce.
const EXPOSED =
  "Date, WWW-Authenticate, Retry-After, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, DPoP-Nonce";

/**
 * CORS for the routes of the plugin it is registered in: the OAuth endpoints a browser app on
 * another origin calls. Credentials there are bearer tokens and form parameters, never
 * cookies, so allowing any origin gives a page nothing it could not already send; the admin
 * API lives outside that plugin and so stays closed. `origins` is "*" (any origin, no
 * credentials), a list of allowed origins, or empty (off). Each of the plugin's paths gets an
 * OPTIONS route whose preflight is answered with 204; a preflight from an origin not allowed
 * gets the ordinary 404.
 */
export function registerCors(app: FastifyInstance, origins: "*" | string[]): void {
  if (origins !== "*" && origins.length === 0) return;
  const allowed = origins === "*" ? undefined : new Set(origins);
  app.addHook("onRequest", async (req, reply) => {
    const origin = req.headers.origin;
    if (!origin) return;
    if (allowed && !allowed.has(origin)) return;
    reply.header("Access-Control-Allow-Origin", allowed ? origin : "*");
    if (allowed) reply.header("Vary", "Origin");
    reply.header("Access-Control-Expose-Headers", EXPOSED);
    if (req.method === "OPTIONS") {
      return reply
        .code(204)
        .header("Access-Control-Allow-Methods", "GET, POST")
        .header("Access-Control-Allow-Headers", "Authorization, Content-Type, DPoP")
        .header("Access-Control-Max-Age", "600")
        .send();
    }
  });
  const preflights = new Set<string>();
  app.addHook("onRoute", (route) => {
    if (route.method === "OPTIONS" || preflights.has(route.url)) return;
    preflights.add(route.url);
    // Reached only when the hook above did not answer: no Origin, or one not allowed.
    app.route({
      method: "OPTIONS",
      url: route.url,
      handler: (_req, reply) => reply.callNotFound(),
    });
  });
}
