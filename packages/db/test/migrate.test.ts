import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import {
  type Database,
  ManualClock,
  isUniqueViolation,
  migrate,
  migrations,
  openPglite,
  openPostgres,
} from "../src/index.ts";

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const dropAfter: string[] = [];

async function fresh(kind: "pglite" | "postgres"): Promise<{ db: Database; url?: string }> {
  if (kind === "pglite") return { db: await openPglite("memory://") };
  const name = `evergreen_db_test_${randomBytes(5).toString("hex")}`;
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  await c.query(`CREATE DATABASE ${name}`);
  await c.end();
  dropAfter.push(name);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return { db: openPostgres(url.toString(), { max: 4 }), url: url.toString() };
}

afterAll(async () => {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  for (const name of dropAfter) await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await c.end();
});

describe.each(["pglite", "postgres"] as const)("database layer on %s", (kind) => {
  it("applies every migration once and records it", async () => {
    const { db } = await fresh(kind);
    expect(await migrate(db)).toEqual(migrations.map((m) => m.version));
    expect(await migrate(db)).toEqual([]);
    const { rows } = await db.query<{ version: number }>(
      "SELECT version FROM evergreen_migrations ORDER BY version",
    );
    expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
    await db.close();
  });

  it("returns the same JS types on both drivers (bytea as Buffer, int8 as number, timestamptz as Date)", async () => {
    const { db } = await fresh(kind);
    const at = new Date("2030-01-02T03:04:05.678Z");
    const { rows } = await db.query<{ b: Buffer; n: number; t: Date; a: string[] }>(
      "SELECT $1::bytea AS b, 9007199254740::int8 AS n, $2::timestamptz AS t, ARRAY['x','y'] AS a",
      [Buffer.from([1, 2, 3]), at],
    );
    expect(Buffer.isBuffer(rows[0]!.b)).toBe(true);
    expect([...rows[0]!.b]).toEqual([1, 2, 3]);
    expect(rows[0]!.n).toBe(9007199254740);
    expect(rows[0]!.t.getTime()).toBe(at.getTime());
    expect(rows[0]!.a).toEqual(["x", "y"]);
    await db.close();
  });

  it("rolls a failed transaction back completely", async () => {
    const { db } = await fresh(kind);
    await db.exec("CREATE TABLE t (id int PRIMARY KEY)");
    await expect(
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO t VALUES (1)");
        await tx.query("INSERT INTO t VALUES (1)");
      }),
    ).rejects.toSatisfy(isUniqueViolation);
    const { rows } = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM t");
    expect(rows[0]!.n).toBe(0);
    await db.close();
  });

  it("delivers NOTIFY payloads to listeners until they stop listening", async () => {
    const { db } = await fresh(kind);
    // Waits on the deliveries themselves, not on sleeps: a loaded machine only makes them later.
    const got: string[] = [];
    let first!: () => void;
    const delivered = new Promise<void>((r) => {
      first = r;
    });
    const stop = await db.listen("evergreen_test", (p) => {
      got.push(p);
      first();
    });
    await db.query("SELECT pg_notify('evergreen_test', 'one')");
    await delivered;
    await stop();
    // A second listener that hears 'two' shows the notification went out; the stopped one must not hear it.
    let heard!: () => void;
    const heardTwo = new Promise<void>((r) => {
      heard = r;
    });
    const stopWitness = await db.listen("evergreen_test", (p) => {
      if (p === "two") heard();
    });
    await db.query("SELECT pg_notify('evergreen_test', 'two')");
    await heardTwo;
    await stopWitness();
    expect(got).toEqual(["one"]);
    await db.close();
  });
});

describe("migrations from several processes at once (PostgreSQL)", () => {
  it("serialise on the advisory lock: the schema is created exactly once", async () => {
    const { db, url } = await fresh("postgres");
    const others = [
      openPostgres(url!, { max: 1 }),
      openPostgres(url!, { max: 1 }),
      openPostgres(url!, { max: 1 }),
    ];
    const results = await Promise.all([db, ...others].map((d) => migrate(d)));
    expect(results.flat().sort()).toEqual(migrations.map((m) => m.version));
    for (const d of [db, ...others]) await d.close();
  });
});

describe("ManualClock", () => {
  it("moves only when told", () => {
    const clock = new ManualClock(1_000_000);
    expect(clock.now().getTime()).toBe(1_000_000);
    clock.advance(1.5);
    expect(clock.now().getTime()).toBe(1_001_500);
    clock.set(new Date(5));
    expect(clock.now().getTime()).toBe(5);
  });
});
