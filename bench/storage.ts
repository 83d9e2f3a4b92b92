/**
 * Storage over time (issue 11, item 2): what every rotation leaves behind, and what the janitor
 * costs at a realistic size, before and after migration 0007 and the batched janitor.
 *
 *   node --conditions=@evergreen/source --import tsx bench/storage.ts [--sessions 1000]
 *     [--audit-rows 20000000] [--tokens 10000000] [--skip-scale] [--database-url postgres://…]
 *     [--no-write]
 *
 * 1. Bytes per rotation: `--sessions` sessions rotate every 10 minutes for one simulated day
 *    through the issuer's own rotate statement (same SQL as the hot path, no HTTP), the janitor
 *    drops the sealed successors, VACUUM, then pg_total_relation_size (tables + indexes, every
 *    audit partition) gives bytes per refresh-token row and per audit row.
 * 2. A measured plateau: sessions of a client with a 1-day idle lifetime rotate every 10
 *    minutes for 4 simulated days with a 1-day retention and the janitor every 6 hours; bytes
 *    per session are read at the end of each day (they must stop growing after ~2 days).
 * 3. The curve: bytes per active session after 1, 7, 30 and 90 days at a 10-minute interval
 *    with the default lifetimes (idle 14 d, absolute 90 d, retention 7 d, audit 90 d), computed
 *    from 1 for the old janitor (everything kept while the family lives / for 90 days) and the
 *    new one (rotated tokens dropped 21 days after creation; audit all or none).
 * 4. Janitor cost at scale: `--tokens` refresh-token rows (100 per family, one live, a
 *    rotation every 8 hours, so ~35 % are past idle + retention) and `--audit-rows` audit rows
 *    over 100 days (10 days past retention) seeded with generate_series, once in the old schema
 *    (migration 5, the old janitor's single DELETEs) and once in the new one (day partitions,
 *    the new janitor). One janitor pass is timed while 8 connections keep rotating real
 *    sessions; their latency is compared with the same load without the janitor. Then the
 *    old database is migrated to 0007 in place and the conversion is timed.
 *
 * Results go to bench/results/storage-<time>.{json,md}.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Database, ManualClock, migrate, migrations, openPostgres } from "@evergreen/db";
import pg from "pg";
import { REFRESH_TOKEN_PREFIX, newOpaqueToken, sha256 } from "../packages/server/src/crypto/opaque-token.ts";
import { runJanitor } from "../packages/server/src/janitor.ts";
import { auditPartitionQueries, tokenQueries } from "../packages/server/src/queries.ts";
import { sealSuccessor } from "../packages/server/src/tokens/successor-seal.ts";

const { values } = parseArgs({
  options: {
    sessions: { type: "string", default: "1000" },
    "audit-rows": { type: "string", default: "20000000" },
    tokens: { type: "string", default: "10000000" },
    "skip-scale": { type: "boolean", default: false },
    "database-url": { type: "string" },
    "no-write": { type: "boolean", default: false },
  },
});
const ADMIN_URL =
  values["database-url"] ?? process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const SESSIONS = Number(values.sessions);
const AUDIT_ROWS = Number(values["audit-rows"]);
const TOKENS = Number(values.tokens);
const DAY = 86_400;
const INTERVAL = 600;
const PER_DAY = DAY / INTERVAL;
const CONCURRENCY = 8;
const log = (...a: unknown[]) => console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

// ---------------------------------------------------------------------------------------------
// databases

interface BenchDb {
  name: string;
  db: Database;
  drop(): Promise<void>;
}

async function freshDatabase(upTo = Number.POSITIVE_INFINITY): Promise<BenchDb> {
  const name = `evergreen_storage_${randomBytes(5).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  // Seeding and the old janitor's single statements run for minutes: no timeouts here.
  const db = openPostgres(url.toString(), { max: CONCURRENCY + 2, timeouts: { statementMs: 0, queryMs: 0 } });
  await migrate(
    db,
    migrations.filter((m) => m.version <= upTo),
  );
  return {
    name,
    db,
    async drop() {
      await db.close();
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

const USER = "00000000-0000-4000-8000-000000000001";

async function seedClient(db: Database, clientId: string, idleTtl: number, at: Date): Promise<void> {
  await db.query(
    `INSERT INTO users (id, username, password_hash, created_at, updated_at)
     VALUES ($1, 'bench', 'x', $2, $2) ON CONFLICT DO NOTHING`,
    [USER, at],
  );
  await db.query(
    `INSERT INTO clients (client_id, token_endpoint_auth_method, grant_types, scope, access_token_ttl,
       refresh_token_idle_ttl, refresh_token_absolute_ttl, rotate_refresh_tokens, refresh_token_reuse_grace,
       max_sessions_per_user, created_at, updated_at)
     VALUES ($1, 'none', '{refresh_token}', 'openid', 600, $2, $3, true, 15, 1000000, $4, $4)`,
    [clientId, idleTtl, 90 * DAY, at],
  );
}

// ---------------------------------------------------------------------------------------------
// sessions that rotate through the issuer's own statements

interface Session {
  token: string;
}

async function login(db: Database, clientId: string, now: Date, n: number): Promise<Session[]> {
  const out: Session[] = [];
  const client = await db.query<{ refresh_token_idle_ttl: number }>(
    "SELECT refresh_token_idle_ttl FROM clients WHERE client_id = $1",
    [clientId],
  );
  const idle = client.rows[0]!.refresh_token_idle_ttl;
  for (let i = 0; i < n; i++) {
    const token = newOpaqueToken(REFRESH_TOKEN_PREFIX);
    await db.query(
      tokenQueries.createFamily({
        family_id: randomUUID(),
        user_id: USER,
        client_id: clientId,
        scope: "openid",
        now,
        absolute_expires_at: new Date(now.getTime() + 90 * DAY * 1000),
        token_hash: sha256(token),
        token_expires_at: new Date(now.getTime() + idle * 1000),
        at_jti: randomUUID(),
        at_kid: "bench",
        at_expires_at: new Date(now.getTime() + 600_000),
        ip: "127.0.0.1",
        credentials_version: 1,
        dpop_jkt: null,
        at_jkt: null,
        auth_time: null,
        login_session_id: null,
      }),
    );
    out.push({ token });
  }
  return out;
}

/** One rotation of one session at `now`; its latency in ms. */
async function rotate(db: Database, clientId: string, s: Session, now: Date, audit = true): Promise<number> {
  const started = performance.now();
  const successor = newOpaqueToken(REFRESH_TOKEN_PREFIX);
  const hash = sha256(s.token);
  const { rows } = await db.query(
    tokenQueries.rotate({
      hash,
      client_id: clientId,
      now,
      successor_hash: sha256(successor),
      successor_sealed: sealSuccessor(s.token, hash, successor),
      at_jti: randomUUID(),
      at_kid: "bench",
      requested: null,
      at_scope: null,
      ip: "127.0.0.1",
      audit,
      jkt: null,
    }),
  );
  if (rows.length !== 1) throw new Error("rotation failed");
  s.token = successor;
  return performance.now() - started;
}

async function rotateAll(db: Database, clientId: string, sessions: Session[], now: Date): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < sessions.length) await rotate(db, clientId, sessions[next++]!, now);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// sizes

interface Sizes {
  tokenRows: number;
  tokenBytes: number;
  auditRows: number;
  auditBytes: number;
  familyBytes: number;
}

async function sizes(db: Database): Promise<Sizes> {
  for (const t of ["refresh_tokens", "families", "audit_events"]) await db.query(`VACUUM ANALYZE ${t}`);
  const { rows } = await db.query<Record<string, string>>(
    `SELECT (SELECT count(*) FROM refresh_tokens) AS token_rows,
            pg_total_relation_size('refresh_tokens') AS token_bytes,
            (SELECT count(*) FROM audit_events) AS audit_rows,
            COALESCE(NULLIF((SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('audit_events')), 0),
                     pg_total_relation_size('audit_events')) AS audit_bytes,
            pg_total_relation_size('families') AS family_bytes`,
  );
  const r = rows[0]!;
  return {
    tokenRows: Number(r.token_rows),
    tokenBytes: Number(r.token_bytes),
    auditRows: Number(r.audit_rows),
    auditBytes: Number(r.audit_bytes),
    familyBytes: Number(r.family_bytes),
  };
}

// ---------------------------------------------------------------------------------------------
// 1. bytes per rotation

async function bytesPerRotation(schema: "before" | "after") {
  const b = await freshDatabase(schema === "before" ? 5 : Number.POSITIVE_INFINITY);
  try {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    await seedClient(b.db, "app", 14 * DAY, clock.now());
    const sessions = await login(b.db, "app", clock.now(), SESSIONS);
    const start = await sizes(b.db);
    const t0 = performance.now();
    for (let step = 0; step < PER_DAY; step++) {
      clock.advance(INTERVAL);
      await rotateAll(b.db, "app", sessions, clock.now());
    }
    const elapsed = (performance.now() - t0) / 1000;
    clock.advance(60);
    if (schema === "before") await oldJanitor(b.db, clock.now(), 7 * DAY, 90 * DAY);
    else await runJanitor(b.db, clock, 7 * DAY);
    const end = await sizes(b.db);
    const rotations = SESSIONS * PER_DAY;
    const result = {
      schema,
      sessions: SESSIONS,
      rotations,
      rotationsPerSecond: Math.round(rotations / elapsed),
      tokenRows: end.tokenRows,
      auditRows: end.auditRows,
      bytesPerTokenRow: Math.round(end.tokenBytes / end.tokenRows),
      bytesPerAuditRow: Math.round((end.auditBytes - start.auditBytes) / (end.auditRows - start.auditRows)),
      bytesPerFamily: Math.round(end.familyBytes / SESSIONS),
      bytesPerSessionDay: Math.round(
        (end.tokenBytes - start.tokenBytes + end.auditBytes - start.auditBytes) / SESSIONS,
      ),
    };
    log(`bytes per rotation (${schema})`, result);
    return result;
  } finally {
    await b.drop();
  }
}

// ---------------------------------------------------------------------------------------------
// 2. a measured plateau with the new janitor

async function plateau() {
  const b = await freshDatabase();
  const n = Math.max(Math.round(SESSIONS / 5), 50);
  try {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    await seedClient(b.db, "short", DAY, clock.now());
    const sessions = await login(b.db, "short", clock.now(), n);
    const days: {
      day: number;
      tokenRowsPerSession: number;
      tokenBytesPerSession: number;
      auditRowsPerSession: number;
    }[] = [];
    for (let day = 1; day <= 4; day++) {
      for (let step = 0; step < PER_DAY; step++) {
        clock.advance(INTERVAL);
        await rotateAll(b.db, "short", sessions, clock.now());
        if (step % 36 === 35) await runJanitor(b.db, clock, DAY, { auditRetentionSeconds: 90 * DAY });
      }
      const s = await sizes(b.db);
      days.push({
        day,
        tokenRowsPerSession: Math.round(s.tokenRows / n),
        tokenBytesPerSession: Math.round(s.tokenBytes / n),
        auditRowsPerSession: Math.round(s.auditRows / n),
      });
      log("plateau day", days.at(-1));
    }
    return { sessions: n, idleTtlSeconds: DAY, retentionSeconds: DAY, days };
  } finally {
    await b.drop();
  }
}

// ---------------------------------------------------------------------------------------------
// 3. the curve

interface PerRow {
  bytesPerTokenRow: number;
  bytesPerAuditRow: number;
  bytesPerFamily: number;
}

function curve(old: PerRow, perRow: PerRow) {
  const idle = 14;
  const retention = 7;
  const rows = [1, 7, 30, 90].map((d) => {
    const rotations = d * PER_DAY;
    const keptTokens = Math.min(rotations, (idle + retention) * PER_DAY) + 1;
    const audit = rotations + 1;
    const token = (n: number) => n * perRow.bytesPerTokenRow;
    const aud = (n: number) => n * perRow.bytesPerAuditRow;
    return {
      days: d,
      before: {
        tokenRows: rotations + 1,
        auditRows: audit,
        bytes: old.bytesPerFamily + (rotations + 1) * old.bytesPerTokenRow + audit * old.bytesPerAuditRow,
      },
      afterAuditAll: {
        tokenRows: keptTokens,
        auditRows: audit,
        bytes: perRow.bytesPerFamily + token(keptTokens) + aud(audit),
      },
      afterAuditNone: {
        tokenRows: keptTokens,
        auditRows: 1,
        bytes: perRow.bytesPerFamily + token(keptTokens) + aud(1),
      },
      // EVERGREEN_RETENTION=0: a rotated token goes at its own idle expiry.
      afterRetention0AuditNone: {
        tokenRows: Math.min(rotations, idle * PER_DAY) + 1,
        auditRows: 1,
        bytes: perRow.bytesPerFamily + token(Math.min(rotations, idle * PER_DAY) + 1) + aud(1),
      },
    };
  });
  return rows;
}

// ---------------------------------------------------------------------------------------------
// 4. janitor cost at scale

const PER_FAMILY = 100;
const TOKEN_INTERVAL_H = 8;

async function seedScale(db: Database, now: Date, partitioned: boolean): Promise<number> {
  const t0 = performance.now();
  const families = Math.max(Math.floor(TOKENS / PER_FAMILY), 1);
  await seedClient(db, "app", 14 * DAY, now);
  await db.query(
    `INSERT INTO families (id, user_id, client_id, scope, created_at, absolute_expires_at)
     SELECT md5('f' || f)::uuid, $1, 'app', 'openid', $2::timestamptz - interval '34 days', $2::timestamptz + interval '56 days'
       FROM generate_series(1, $3::int) f`,
    [USER, now, families],
  );
  // Token g of family f was created (100 - g) × 8 h ago; all but the newest were rotated.
  await db.query(
    `INSERT INTO refresh_tokens (hash, family_id, generation, created_at, expires_at, at_jti, at_kid, at_expires_at,
                                 consumed_at, successor_hash, replay_until)
     SELECT sha256(('t' || f || '/' || g)::bytea), md5('f' || f)::uuid, g, c, c + interval '14 days',
            md5('j' || f || '/' || g)::uuid, 'bench', c + interval '10 minutes',
            CASE WHEN g < ${PER_FAMILY} THEN c + interval '${TOKEN_INTERVAL_H} hours' END,
            CASE WHEN g < ${PER_FAMILY} THEN sha256(('t' || f || '/' || (g + 1))::bytea) END,
            CASE WHEN g < ${PER_FAMILY} THEN c + interval '${TOKEN_INTERVAL_H} hours 15 seconds' END
       FROM generate_series(1, $2::int) f, generate_series(1, ${PER_FAMILY}) g,
            LATERAL (SELECT $1::timestamptz - (${PER_FAMILY} - g) * interval '${TOKEN_INTERVAL_H} hours' AS c) x`,
    [now, families],
  );
  log(`seeded ${families * PER_FAMILY} tokens`, Math.round((performance.now() - t0) / 1000), "s");
  if (partitioned) {
    const today = Math.floor(now.getTime() / (DAY * 1000)) * DAY * 1000;
    for (let d = -100; d <= 3; d++) {
      const from = new Date(today + d * DAY * 1000);
      const to = new Date(from.getTime() + DAY * 1000);
      const name = `audit_events_p${from.toISOString().slice(0, 10).replaceAll("-", "")}`;
      await db.query(auditPartitionQueries.create(name));
      await db.query(auditPartitionQueries.attach(name, from, to));
    }
  }
  // Audit rows spread evenly over the last 100 days (a refresh event each, as the hot path writes).
  const chunk = 2_000_000;
  for (let start = 0; start < AUDIT_ROWS; start += chunk) {
    await db.query(
      `INSERT INTO audit_events (at, type, user_id, client_id, family_id, ip)
       SELECT $1::timestamptz - (i::float8 / $2) * interval '100 days', 'refresh', $3, 'app',
              md5('f' || (i % $4 + 1))::uuid, '127.0.0.1'
         FROM generate_series($5::int, $6::int) i`,
      [now, AUDIT_ROWS, USER, families, start, Math.min(start + chunk, AUDIT_ROWS) - 1],
    );
  }
  await db.query("VACUUM ANALYZE");
  const seconds = Math.round((performance.now() - t0) / 1000);
  log(`seeded ${AUDIT_ROWS} audit rows (${partitioned ? "partitioned" : "one table"})`, seconds, "s");
  return seconds;
}

function percentiles(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const at = (p: number) => Math.round((s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? 0) * 10) / 10;
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: Math.round((s.at(-1) ?? 0) * 10) / 10 };
}

/** Rotates real sessions on CONCURRENCY - 1 connections until `done` resolves; their latencies. */
async function underLoad(db: Database, sessions: Session[], now: Date, done: Promise<unknown>) {
  const lat: number[] = [];
  let stop = false;
  void done.finally(() => {
    stop = true;
  });
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY - 1 }, async () => {
      while (!stop) lat.push(await rotate(db, "app", sessions[next++ % sessions.length]!, now));
    }),
  );
  return percentiles(lat);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The janitor of main before this change: one statement per kind, no consumed-token pruning. */
async function oldJanitor(db: Database, now: Date, retention: number, auditRetention: number) {
  const before = new Date(now.getTime() - retention * 1000);
  const t0 = performance.now();
  const seals = await db.query(
    "UPDATE refresh_tokens SET successor_sealed = NULL WHERE successor_sealed IS NOT NULL AND replay_until <= $1",
    [now],
  );
  const fams = await db.query(
    `DELETE FROM families f WHERE f.revoked_at <= $1 OR f.absolute_expires_at <= $1
        OR NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id AND t.consumed_at IS NULL AND t.expires_at > $1)`,
    [before],
  );
  const audit = await db.query("DELETE FROM audit_events WHERE at < $1", [
    new Date(now.getTime() - auditRetention * 1000),
  ]);
  return {
    seconds: Math.round((performance.now() - t0) / 100) / 10,
    sealsDropped: seals.rowCount,
    familiesDeleted: fams.rowCount,
    auditDeleted: audit.rowCount,
  };
}

async function janitorAtScale() {
  const now = new Date(Date.UTC(2026, 5, 1, 12));
  const out: Record<string, unknown> = { tokens: TOKENS, auditRows: AUDIT_ROWS };
  for (const variant of ["before", "after"] as const) {
    const b = await freshDatabase(variant === "before" ? 5 : Number.POSITIVE_INFINITY);
    try {
      const seedSeconds = await seedScale(b.db, now, variant === "after");
      const sessions = await login(b.db, "app", now, 500);
      const baseline = await underLoad(b.db, sessions, now, sleep(10_000));
      let pass: unknown;
      const janitor =
        variant === "before"
          ? oldJanitor(b.db, now, 7 * DAY, 90 * DAY)
          : (async () => {
              const t0 = performance.now();
              const report = await runJanitor(b.db, { now: () => now }, 7 * DAY);
              return { seconds: Math.round((performance.now() - t0) / 100) / 10, ...report };
            })();
      const during = await underLoad(
        b.db,
        sessions,
        now,
        janitor.then((r) => (pass = r)),
      );
      const after = await sizes(b.db);
      const result: Record<string, unknown> = { seedSeconds, baseline, pass, during, after };
      if (variant === "before") {
        const t0 = performance.now();
        await migrate(b.db);
        result.migrate0007Seconds = Math.round((performance.now() - t0) / 100) / 10;
      }
      log(variant, result);
      out[variant] = result;
    } finally {
      await b.drop();
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const machine = {
    cores: cpus().length,
    cpu: cpus()[0]?.model,
    node: process.version,
  };
  const perRowBefore = await bytesPerRotation("before");
  const perRow = await bytesPerRotation("after");
  const measuredPlateau = await plateau();
  const storageCurve = curve(perRowBefore, perRow);
  const scale = values["skip-scale"] ? undefined : await janitorAtScale();
  const result = { machine, perRowBefore, perRow, plateau: measuredPlateau, curve: storageCurve, scale };
  console.log(JSON.stringify(result, null, 2));
  if (!values["no-write"]) {
    const stamp = new Date().toISOString().replaceAll(":", "-").replace(".", "-");
    const dir = join(import.meta.dirname, "results");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `storage-${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(dir, `storage-${stamp}.md`), markdown(result));
    log(`wrote bench/results/storage-${stamp}.{json,md}`);
  }
}

const kb = (n: number) => `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KiB`;

function markdown(r: {
  machine: Record<string, unknown>;
  perRowBefore: Awaited<ReturnType<typeof bytesPerRotation>>;
  perRow: Awaited<ReturnType<typeof bytesPerRotation>>;
  plateau: Awaited<ReturnType<typeof plateau>>;
  curve: ReturnType<typeof curve>;
  scale?: Record<string, unknown>;
}): string {
  const lines = [
    `# Storage over time — ${new Date().toISOString()}`,
    "",
    `Machine: ${r.machine.cores} cores (${r.machine.cpu}), Node ${r.machine.node}, PostgreSQL on loopback.`,
    "",
    `Bytes per row (tables + indexes, after VACUUM, ${r.perRow.sessions} sessions × ${PER_DAY} rotations):`,
    ...[r.perRowBefore, r.perRow].map(
      (p) =>
        `- ${p.schema} (${p.rotationsPerSecond} rotations/s): refresh-token row ${p.bytesPerTokenRow} B, audit row ${p.bytesPerAuditRow} B, family ${p.bytesPerFamily} B; one session refreshed every 10 min adds ${kb(p.bytesPerSessionDay)} a day until the janitor removes anything.`,
    ),
    "",
    "| days at a 10-min interval | before: tokens / audit rows | before | after, audit all | after, audit none | after, retention 0, audit none |",
    "|---|---|---|---|---|---|",
    ...r.curve.map(
      (c) =>
        `| ${c.days} | ${c.before.tokenRows} / ${c.before.auditRows} | ${kb(c.before.bytes)} | ${kb(c.afterAuditAll.bytes)} (${c.afterAuditAll.tokenRows} tokens) | ${kb(c.afterAuditNone.bytes)} | ${kb(c.afterRetention0AuditNone.bytes)} (${c.afterRetention0AuditNone.tokenRows} tokens) |`,
    ),
    "",
    `Measured plateau (idle 1 d, retention 1 d, janitor every 6 h, ${r.plateau.sessions} sessions):`,
    "",
    "| day | token rows / session | token bytes / session |",
    "|---|---|---|",
    ...r.plateau.days.map((d) => `| ${d.day} | ${d.tokenRowsPerSession} | ${kb(d.tokenBytesPerSession)} |`),
    "",
  ];
  if (r.scale) lines.push("Janitor at scale:", "", "```json", JSON.stringify(r.scale, null, 2), "```", "");
  return `${lines.join("\n")}\n`;
}

await main();
