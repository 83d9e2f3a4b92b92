import type { FastifyInstance, FastifyReply } from "fastify";

export interface LegacyAuthOptions {
  /** The issuer's token endpoint. */
  tokenEndpoint: string;
  /** A public client with `rotate_refresh_tokens: false`: its refresh token stays the same. */
  clientId: string;
  scope: string;
}

/** Headers of the issuer's answer the browser should see too (the rate-limit budget). */
const FORWARDED = ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset", "retry-after"];

const loginBody = {
  type: "object",
  required: ["username", "password"],
  properties: {
    username: { type: "string", minLength: 1, maxLength: 255 },
    password: { type: "string", minLength: 1, maxLength: 1024 },
  },
};
const refreshBody = {
  type: "object",
  required: ["refresh"],
  properties: { refresh: { type: "string", minLength: 1, maxLength: 512 } },
};

/**
 * The seed's endpoints, Django SimpleJWT style: `POST /token/ {username, password}` →
 * `{access, refresh}` and `POST /refresh/ {refresh}` → `{access}` — no new refresh token. They
 * front the issuer's token endpoint, so what a legacy backend looks like to the SDK is real:
 * the SDK's JSON profile must keep the refresh token it has, because none comes back.
 * Failures answer as SimpleJWT does (`401 {detail, code: "token_not_valid"}`), which the
 * profile reads as "this session is over".
 */
export async function legacyAuth(app: FastifyInstance, options: LegacyAuthOptions): Promise<void> {
  app.setErrorHandler((err: { statusCode?: number; message?: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 400 && status < 500) return reply.code(400).send({ detail: err.message ?? "bad request" });
    req.log.error({ err: { message: err.message } }, "legacy auth failed");
    return reply.code(502).send({ detail: "the login service is unavailable" });
  });

  /** One form POST to the issuer's token endpoint; copies its budget headers onto `reply`. */
  async function issuerToken(reply: FastifyReply, form: Record<string, string>) {
    let response: Response;
    try {
      response = await fetch(options.tokenEndpoint, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
        body: new URLSearchParams({ client_id: options.clientId, ...form }),
        signal: AbortSignal.timeout(15_000),
      });
    } catch {
      return { status: 0, body: {} as Record<string, unknown> };
    }
    for (const name of FORWARDED) {
      const value = response.headers.get(name);
      if (value !== null) reply.header(name, value);
    }
    reply.header("Cache-Control", "no-store");
    const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    return { status: response.status, body };
  }

  function failed(reply: FastifyReply, status: number, detail: string) {
    if (status === 429) return reply.code(429).send({ detail: "Request was throttled." });
    // invalid_grant (wrong credentials, a dead refresh token) and the rest of 4xx: SimpleJWT's 401.
    if (status >= 400 && status < 500) return reply.code(401).send({ detail, code: "token_not_valid" });
    return reply.code(502).send({ detail: "the login service is unavailable" });
  }

  app.post("/token/", { schema: { body: loginBody } }, async (req, reply) => {
    const { username, password } = req.body as { username: string; password: string };
    const { status, body } = await issuerToken(reply, {
      grant_type: "password",
      username,
      password,
      scope: options.scope,
    });
    if (status !== 200) return failed(reply, status, "No active account found with the given credentials");
    return { access: body.access_token, refresh: body.refresh_token };
  });

  app.post("/refresh/", { schema: { body: refreshBody } }, async (req, reply) => {
    const { refresh } = req.body as { refresh: string };
    const { status, body } = await issuerToken(reply, {
      grant_type: "refresh_token",
      refresh_token: refresh,
    });
    if (status !== 200) return failed(reply, status, "Token is invalid or expired");
    // Only the access token, as the seed's server answers: the client must keep its refresh token.
    return { access: body.access_token };
  });
}
