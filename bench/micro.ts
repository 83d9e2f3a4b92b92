/**
 * The smaller figures of issue 11, each next to what a user would compare it with:
 *
 *   node --import tsx bench/micro.ts [--sections guard,password,login,sdk] [--seconds 5] [--json] [--no-write]
 *
 * - guard: access-token verifications per second on one core (this process, one at a time) by
 *   the guard (`@evergreen/server/guard`, built), with a key resolver and with a JWKS URL, next
 *   to jose's raw `jwtVerify` of the same token with the same checks.
 * - password: the password hash parameters from the code, hashes/s one at a time and with the
 *   server's hashing concurrency.
 * - login: password-grant logins/s over HTTP against `evergreen serve` on PostgreSQL.
 * - sdk: `session.fetch` (`@evergreen/client`, built) against plain `fetch` to a local server,
 *   µs per call; and 1,000 concurrent `session.fetch` calls with an expired access token →
 *   refreshes at the token endpoint (must be 1) and time until all are done.
 *
 * Results: bench/results/<date>-<machine>-micro.{json,md}.
 */
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createSession } from "@evergreen/client";
import { createTokenVerifier } from "@evergreen/server/guard";
import { jwtVerify } from "jose";
import pg from "pg";
import { hashPassword, verifyPassword } from "../packages/server/src/crypto/password.ts";
import { signAccessToken } from "../packages/server/src/tokens/access-token.ts";
import { machineInfo } from "./machine.ts";
import { startEvergreen } from "./systems/evergreen.ts";
import { ROOT } from "./systems/process.ts";

const { values } = parseArgs({
  options: {
    sections: { type: "string", default: "guard,password,login,sdk" },
    seconds: { type: "string", default: "5" },
    "database-url": {
      type: "string",
      default: process.env.BENCH_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
    },
    json: { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
  },
});
const SECONDS = Number(values.seconds);
const sections = new Set(values.sections!.split(","));
const results: Record<string, unknown> = {};
const md: string[] = [];
const r2 = (x: number) => Number(x.toFixed(2));
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/** Calls `fn` one at a time for `seconds`; returns calls per second. */
async function rate(fn: () => Promise<unknown>, seconds = SECONDS): Promise<number> {
  for (let i = 0; i < 200; i++) await fn(); // warm-up (JIT, caches)
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) await fn();
    n += 50;
  }
  return n / ((performance.now() - t0) / 1000);
}

async function guardSection() {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const kid = randomUUID();
  const issuer = "http://127.0.0.1:8080";
  const now = Math.floor(Date.now() / 1000);
  const token = signAccessToken(
    {
      iss: issuer,
      sub: randomUUID(),
      aud: issuer,
      exp: now + 3600,
      iat: now,
      jti: randomUUID(),
      client_id: "bench",
      scope: "read write",
      sid: randomUUID(),
    },
    { alg: "EdDSA", kid, privateKey } as never,
  );
  const jwks = createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(
      JSON.stringify({ keys: [{ ...publicKey.export({ format: "jwk" }), kid, alg: "EdDSA", use: "sig" }] }),
    );
  });
  await new Promise<void>((r) => jwks.listen(0, "127.0.0.1", r));
  const jwksUri = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks`;
  const withResolver = createTokenVerifier({ issuer, audience: issuer, getKey: async () => publicKey });
  const withJwks = createTokenVerifier({ issuer, audience: issuer, jwksUri });
  const options = {
    issuer,
    audience: issuer,
    algorithms: ["EdDSA", "ES256"],
    typ: "at+jwt",
    requiredClaims: ["exp", "iat", "sub", "jti", "client_id"],
  };
  // The issuer's side of the same token: one Ed25519 signature with a cached KeyObject.
  const signing = await rate(async () =>
    signAccessToken(
      {
        iss: issuer,
        sub: "u",
        aud: issuer,
        exp: now + 3600,
        iat: now,
        jti: randomUUID(),
        client_id: "bench",
      },
      { alg: "EdDSA", kid, privateKey } as never,
    ),
  );
  const raw = await rate(() => jwtVerify(token, publicKey, options));
  const guardResolver = await rate(() => withResolver(token));
  const guardJwks = await rate(() => withJwks(token));
  const raw2 = await rate(() => jwtVerify(token, publicKey, options));
  jwks.close();
  const jose = (raw + raw2) / 2;
  results.guard = {
    token_bytes: token.length,
    issuer_signs_per_s: Math.round(signing),
    issuer_sign_us: r2(1e6 / signing),
    jose_jwtVerify_per_s: Math.round(jose),
    jose_runs: [Math.round(raw), Math.round(raw2)],
    guard_key_resolver_per_s: Math.round(guardResolver),
    guard_jwks_uri_per_s: Math.round(guardJwks),
    ratio_resolver_vs_jose: r2(guardResolver / jose),
    ratio_jwks_vs_jose: r2(guardJwks / jose),
  };
  md.push(
    "## Guard: access-token verifications on one core",
    "",
    "| verifier | verifications/s | / jose jwtVerify |",
    "|---|---|---|",
    `| jose \`jwtVerify\` (KeyObject, same checks) | ${fmt(jose)} | 1.00 |`,
    `| guard, key resolver | ${fmt(guardResolver)} | ${r2(guardResolver / jose)} |`,
    `| guard, JWKS URL (cached) | ${fmt(guardJwks)} | ${r2(guardJwks / jose)} |`,
    "",
    `The issuer signs the same kind of token (\`signAccessToken\`, Ed25519, cached KeyObject) ${fmt(signing)} times/s on one core (${r2(1e6 / signing)} µs each).`,
    "",
  );
}

async function passwordSection() {
  const stored = await hashPassword("correct horse battery staple");
  const [, n, r, p] = stored.split("$");
  const seq = await rate(() => verifyPassword("correct horse battery staple", stored), SECONDS);
  const par = availableParallelism();
  const t0 = performance.now();
  let done = 0;
  const end = t0 + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (performance.now() < end) {
        await verifyPassword("correct horse battery staple", stored);
        done++;
      }
    }),
  );
  const parallel = done / ((performance.now() - t0) / 1000);
  results.password = {
    scheme: "scrypt",
    N: Number(n),
    r: Number(r),
    p: Number(p),
    memory_mib: (128 * Number(n) * Number(r)) / 2 ** 20,
    verifications_per_s_one_at_a_time: r2(seq),
    verifications_per_s_4_parallel: r2(parallel),
    ms_each: r2(1000 / seq),
    cores: par,
  };
  md.push(
    "## Password hashing",
    "",
    `scrypt N=${n}, r=${r}, p=${p} (${(128 * Number(n) * Number(r)) / 2 ** 20} MiB per hash), 32-byte key, 16-byte salt.`,
    "",
    "| | verifications/s | ms each |",
    "|---|---|---|",
    `| one at a time | ${r2(seq)} | ${r2(1000 / seq)} |`,
    `| 4 at a time (libuv pool) | ${r2(parallel)} | |`,
    "",
  );
}

async function loginSection() {
  const name = `evergreen_bench_login_${randomUUID().slice(0, 8)}`;
  const admin = new pg.Client({ connectionString: values["database-url"] });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(values["database-url"]!);
  url.pathname = `/${name}`;
  const system = await startEvergreen({ databaseUrl: url.toString() });
  try {
    const body = "grant_type=password&username=bench&password=bench-password&client_id=bench";
    const out: Record<string, unknown> = {};
    for (const concurrency of [1, 8]) {
      const latencies: number[] = [];
      const end = performance.now() + SECONDS * 1000;
      const t0 = performance.now();
      let errors = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (performance.now() < end) {
            const s = performance.now();
            const res = await fetch(`http://127.0.0.1:${system.port}/token`, {
              method: "POST",
              headers: { "content-type": "application/x-www-form-urlencoded" },
              body,
            });
            await res.arrayBuffer();
            if (res.status !== 200) errors++;
            else latencies.push(performance.now() - s);
          }
        }),
      );
      latencies.sort((a, b) => a - b);
      out[`c${concurrency}`] = {
        logins_per_s: r2(latencies.length / ((performance.now() - t0) / 1000)),
        p50_ms: r2(latencies[Math.floor(latencies.length / 2)] ?? 0),
        p99_ms: r2(latencies[Math.floor(latencies.length * 0.99)] ?? 0),
        errors,
      };
    }
    results.login = out;
    md.push(
      "## Password-grant logins over HTTP (Evergreen on PostgreSQL)",
      "",
      "| concurrency | logins/s | p50 ms | p99 ms | errors |",
      "|---|---|---|---|---|",
      ...Object.entries(out).map(([k, v]) => {
        const x = v as Record<string, number>;
        return `| ${k.slice(1)} | ${x.logins_per_s} | ${x.p50_ms} | ${x.p99_ms} | ${x.errors} |`;
      }),
      "",
    );
  } finally {
    await system.stop();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

async function sdkSection() {
  let refreshes = 0;
  let current = "at-0";
  const server = createServer((req, res) => {
    if (req.url === "/token") {
      req.resume();
      req.on("end", () => {
        refreshes++;
        current = `at-${refreshes}`;
        res.setHeader("content-type", "application/json");
        res.setHeader("cache-control", "no-store");
        res.end(
          JSON.stringify({
            access_token: current,
            token_type: "Bearer",
            expires_in: 600,
            refresh_token: `rt-${refreshes}`,
          }),
        );
      });
      return;
    }
    if (req.headers.authorization && req.headers.authorization !== `Bearer ${current}`) {
      res.statusCode = 401;
      res.setHeader("www-authenticate", 'Bearer error="invalid_token"');
      res.end();
      return;
    }
    res.end("ok");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const session = createSession({ tokenEndpoint: `${base}/token`, clientId: "bench", autoRefresh: false });
  await session.setTokens({
    accessToken: current,
    tokenType: "Bearer",
    refreshToken: "rt-0",
    expiresIn: 3600,
    raw: {},
  });
  const plain = async () => {
    const res = await fetch(`${base}/api`);
    await res.text();
  };
  const viaSession = async () => {
    const res = await session.fetch(`${base}/api`);
    await res.text();
  };
  // Alternate blocks so drift on a busy machine hits both alike.
  const plainRuns: number[] = [];
  const sessionRuns: number[] = [];
  for (let i = 0; i < 3; i++) {
    plainRuns.push(await rate(plain, SECONDS / 3));
    sessionRuns.push(await rate(viaSession, SECONDS / 3));
  }
  const usPlain = 1e6 / (plainRuns.reduce((a, b) => a + b) / plainRuns.length);
  const usSession = 1e6 / (sessionRuns.reduce((a, b) => a + b) / sessionRuns.length);

  // 1,000 concurrent calls on an expired access token: one refresh for all of them.
  const before = refreshes;
  await session.setTokens({
    accessToken: current,
    tokenType: "Bearer",
    refreshToken: "rt-x",
    expiresIn: 0,
    raw: {},
  });
  const t0 = performance.now();
  const statuses = await Promise.all(
    Array.from({ length: 1000 }, async () => {
      const res = await session.fetch(`${base}/api`);
      await res.text();
      return res.status;
    }),
  );
  const allDone = performance.now() - t0;
  session.dispose();
  server.close();
  server.closeAllConnections();
  results.sdk = {
    plain_fetch_us: r2(usPlain),
    session_fetch_us: r2(usSession),
    overhead_us: r2(usSession - usPlain),
    concurrent_calls: 1000,
    refreshes: refreshes - before,
    all_ok: statuses.every((s) => s === 200),
    all_done_ms: r2(allDone),
  };
  md.push(
    "## Client SDK",
    "",
    "| | µs per call (sequential, keep-alive, local server) |",
    "|---|---|",
    `| plain \`fetch\` | ${r2(usPlain)} |`,
    `| \`session.fetch\` | ${r2(usSession)} |`,
    `| overhead | **${r2(usSession - usPlain)}** |`,
    "",
    `1,000 concurrent \`session.fetch\` with an expired access token: ${refreshes - before} refresh, all ${statuses.every((s) => s === 200) ? "200" : "NOT 200"}, all done in ${r2(allDone)} ms.`,
    "",
  );
}

const machine = await machineInfo(values["database-url"]);
const startedAt = new Date();
if (sections.has("guard")) await guardSection();
if (sections.has("password")) await passwordSection();
if (sections.has("login")) await loginSection();
if (sections.has("sdk")) await sdkSection();
const header = [
  `# Micro benchmarks, ${startedAt.toISOString()}`,
  "",
  `Machine: ${machine.hostname}, ${machine.cores} cores (${machine.cpu_model}), Node ${machine.node}, load average ${machine.load_average.join(" ")}.`,
  "",
];
const markdown = `${[...header, ...md].join("\n")}\n`;
if (values.json) process.stdout.write(`${JSON.stringify({ machine, results })}\n`);
else process.stdout.write(markdown);
if (!values["no-write"]) {
  const dir = join(ROOT, "bench/results");
  mkdirSync(dir, { recursive: true });
  const base = join(
    dir,
    `${startedAt.toISOString().replace(/[:.]/g, "-").slice(0, 19)}-${machine.hostname}-micro`,
  );
  writeFileSync(`${base}.json`, `${JSON.stringify({ started_at: startedAt, machine, results }, null, 2)}\n`);
  writeFileSync(`${base}.md`, markdown);
  process.stderr.write(`wrote ${base}.{json,md}\n`);
}
const sdk = results.sdk as { refreshes?: number; all_ok?: boolean } | undefined;
if (sdk && (sdk.refreshes !== 1 || !sdk.all_ok)) process.exitCode = 1;
