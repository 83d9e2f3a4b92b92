/**
 * The floor under one refresh, built up step by step with nothing else in the way, for the same
 * load generator as the real cases (bench/run.ts cases floor-http, floor-sign, floor-pg):
 *
 * - http: a bare Fastify POST /token that parses the form and answers a fresh random
 *   refresh_token (one HTTP exchange);
 * - sign: the same plus one Ed25519 JWT signature with a cached KeyObject (one signature);
 * - pg:   the same plus one durable single-statement rotation on PostgreSQL: a prepared CTE that
 *   consumes the presented token with a compare-and-set and inserts its successor (one durable
 *   transaction). No audit row, no lifetimes, no scope, no client lookup, no rate limiter.
 *
 *   FLOOR=http|sign|pg DATABASE_URL=… PORT=… node --import tsx bench/systems/floor-server.ts
 */
import { createHash, generateKeyPairSync, randomBytes, randomUUID, sign } from "node:crypto";
import Fastify from "fastify";
import pg from "pg";

const FLOOR = process.env.FLOOR ?? "http";
const { privateKey } = generateKeyPairSync("ed25519");
const header = Buffer.from(JSON.stringify({ alg: "EdDSA", typ: "at+jwt", kid: "floor" })).toString(
  "base64url",
);

let pool: pg.Pool | undefined;
if (FLOOR === "pg") {
  pool = new pg.Pool({
    connectionString: process.env.DATABASE_URL,
    max: Number(process.env.EVERGREEN_DB_POOL ?? 16),
  });
  await pool.query(`CREATE TABLE IF NOT EXISTS floor_tokens (
    hash bytea PRIMARY KEY, family uuid NOT NULL, generation int NOT NULL,
    created_at timestamptz NOT NULL, consumed_at timestamptz)`);
}

const app = Fastify({ logger: false });
app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string" }, (_req, body, done) => {
  done(null, Object.fromEntries(new URLSearchParams(body as string)));
});

const sha = (s: string) => createHash("sha256").update(s).digest();

app.post("/token", async (req, reply) => {
  const presented = (req.body as Record<string, string>).refresh_token ?? "";
  const successor = randomBytes(32).toString("base64url");
  reply.header("cache-control", "no-store");
  if (FLOOR === "pg") {
    const { rows } = await pool!.query({
      name: "floor_rotate",
      text: `WITH c AS (UPDATE floor_tokens SET consumed_at = now() WHERE hash = $1 AND consumed_at IS NULL
                         RETURNING family, generation)
             INSERT INTO floor_tokens (hash, family, generation, created_at)
             SELECT $2, family, generation + 1, now() FROM c RETURNING generation`,
      values: [sha(presented), sha(successor)],
    });
    if (!rows[0]) return reply.code(400).send({ error: "invalid_grant" });
  }
  let accessToken = "opaque";
  if (FLOOR !== "http") {
    const now = Math.floor(Date.now() / 1000);
    const claims = Buffer.from(
      JSON.stringify({
        iss: "http://floor",
        sub: "u",
        aud: "http://floor",
        exp: now + 600,
        iat: now,
        jti: randomUUID(),
      }),
    ).toString("base64url");
    const input = `${header}.${claims}`;
    accessToken = `${input}.${sign(null, Buffer.from(input), privateKey).toString("base64url")}`;
  }
  return { access_token: accessToken, token_type: "Bearer", expires_in: 600, refresh_token: successor };
});

/** Mints a family (pg floor only): a first token the load generator will rotate. */
app.post("/mint", async () => {
  const token = randomBytes(32).toString("base64url");
  if (pool) {
    await pool.query(
      "INSERT INTO floor_tokens (hash, family, generation, created_at) VALUES ($1, $2, 1, now())",
      [sha(token), randomUUID()],
    );
  }
  return { refresh_token: token };
});
app.get("/healthz", async () => ({ ok: true }));

await app.listen({ port: Number(process.env.PORT), host: "127.0.0.1" });
const stop = async () => {
  await app.close();
  await pool?.end();
  process.exit(0);
};
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());
