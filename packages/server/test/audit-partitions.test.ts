import { type Database, ManualClock, migrate, migrations } from "@evergreen/db";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { recordAudit } from "../src/audit.ts";
import { dayPartitionName, runJanitor } from "../src/janitor.ts";
import {
  DATABASES,
  type TestDatabase,
  type TestIssuer,
  createTestDatabase,
  startTestIssuer,
} from "./harness.ts";
import { createClient, createUser, loginOk, refreshOk } from "./helpers.ts";

const DAY = 86_400;

async function partitions(db: Database): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'audit_events'::regclass ORDER BY c.relname`,
  );
  return rows.map((r) => r.name);
}

async function placement(db: Database): Promise<{ id: number; where: string }[]> {
  const { rows } = await db.query<{ id: string; where: string }>(
    "SELECT id, tableoid::regclass::text AS where FROM audit_events ORDER BY id",
  );
  return rows.map((r) => ({ id: Number(r.id), where: r.where }));
}

describe.each(DATABASES)("audit_events partitioned by day on %s", (kind) => {
  let ti: TestIssuer;
  // Noon UTC, so "today" and the day partitions are unambiguous.
  const clock = new ManualClock(Date.UTC(2031, 2, 10, 12));
  const day = (offset: number) => new Date(Date.UTC(2031, 2, 10 + offset));

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind, clock });
  });
  afterAll(() => ti?.close());

  it("catches events in the default partition until the janitor makes day partitions and adopts them", async () => {
    expect(
      (await ti.db.query("SELECT relkind FROM pg_class WHERE relname = 'audit_events'")).rows[0],
    ).toEqual({ relkind: "p" });
    expect(await partitions(ti.db)).toEqual(["audit_events_default"]);

    const client = await createClient(ti);
    const user = await createUser(ti);
    const rt = (await loginOk(ti, client, user)).refresh_token!;
    await refreshOk(ti, client, rt);
    expect((await placement(ti.db)).map((p) => p.where)).toEqual([
      "audit_events_default",
      "audit_events_default",
    ]);

    const report = await runJanitor(ti.db, clock, DAY);
    expect(report.auditPartitionsCreated).toBe(4);
    expect(await partitions(ti.db)).toEqual([
      "audit_events_default",
      dayPartitionName(day(0)),
      dayPartitionName(day(1)),
      dayPartitionName(day(2)),
      dayPartitionName(day(3)),
    ]);
    // moved out of the default, same ids
    const placed = await placement(ti.db);
    expect(placed.map((p) => p.where)).toEqual([dayPartitionName(day(0)), dayPartitionName(day(0))]);
    expect((await runJanitor(ti.db, clock, DAY)).auditPartitionsCreated).toBe(0);

    // the admin listing reads across partitions, newest first
    const listed = await ti.admin("GET", `/admin/audit?user_id=${user.id}`);
    expect(listed.status).toBe(200);
    expect(listed.body.map((e: { type: string }) => e.type)).toEqual(["refresh", "login"]);
    expect(listed.body.map((e: { id: string }) => Number(e.id))).toEqual(placed.map((p) => p.id).reverse());
  });

  it("retention drops whole day partitions and deletes stray old rows of the default in batches", async () => {
    const before = (await placement(ti.db)).length;
    expect(before).toBeGreaterThan(0);
    clock.advance(12 * DAY);
    await recordAudit(ti.db, { at: clock.now(), type: "session_revoked", detail: { n: 1 } });
    // rows the default caught for days without a partition (the janitor did not run then)
    for (const n of [1, 2, 3]) {
      await recordAudit(ti.db, {
        at: new Date(clock.now().getTime() - (20 + n) * DAY * 1000),
        type: "login",
      });
    }
    const report = await runJanitor(ti.db, clock, DAY, { auditRetentionSeconds: 10 * DAY, batchSize: 2 });
    // day 0 and day 1 end more than 10 days ago; day 2 ends at day 3, after the cutoff
    expect(report.auditPartitionsDropped).toBe(2);
    expect(report.auditDeleted).toBe(3);
    const names = await partitions(ti.db);
    expect(names).not.toContain(dayPartitionName(day(0)));
    expect(names).not.toContain(dayPartitionName(day(1)));
    expect(names).toContain(dayPartitionName(day(2)));
    expect(names).toContain(dayPartitionName(day(12)));
    const left = await placement(ti.db);
    // the events of day 0 went with their partition; today's event was adopted by today's
    expect(left).toHaveLength(1);
    expect(left[0]!.where).toBe(dayPartitionName(day(12)));
  });

  it("two janitors at once create each partition once", async () => {
    clock.advance(30 * DAY);
    const reports = await Promise.all([runJanitor(ti.db, clock, DAY), runJanitor(ti.db, clock, DAY)]);
    // On a busy machine a run may give up on a partition after lock_timeout and leave it to the
    // next run: so a third run finishes the job, and across all three each is created once.
    reports.push(await runJanitor(ti.db, clock, DAY));
    expect(reports.reduce((n, r) => n + r.auditPartitionsCreated, 0)).toBe(4);
    for (let d = 42; d <= 45; d++) expect(await partitions(ti.db)).toContain(dayPartitionName(day(d)));
  });
});

describe.each(DATABASES)("migration 0007 converts an existing audit_events in place on %s", (kind) => {
  let t: TestDatabase;
  afterEach(() => t?.drop());

  it("keeps every row and id, continues the sequence, and retires the legacy partition by retention", async () => {
    t = await createTestDatabase(
      kind,
      migrations.filter((m) => m.version < 7),
    );
    const at = (iso: string) => new Date(iso);
    for (const [when, type] of [
      ["2031-01-07T08:00:00Z", "login"],
      ["2031-01-09T08:00:00Z", "refresh"],
      ["2031-01-10T10:00:00Z", "refresh_token_reuse"],
    ] as const) {
      await recordAudit(t.db, { at: at(when), type, detail: { kept: true } });
    }
    // 0007 and every migration after it
    expect(await migrate(t.db)).toEqual(migrations.filter((m) => m.version >= 7).map((m) => m.version));
    expect(await partitions(t.db)).toEqual(["audit_events_default", "audit_events_legacy"]);
    expect(await placement(t.db)).toEqual([1, 2, 3].map((id) => ({ id, where: "audit_events_legacy" })));
    const { rows } = await t.db.query<{ type: string; detail: unknown }>(
      "SELECT type, detail FROM audit_events ORDER BY id",
    );
    expect(rows).toEqual([
      { type: "login", detail: { kept: true } },
      { type: "refresh", detail: { kept: true } },
      { type: "refresh_token_reuse", detail: { kept: true } },
    ]);

    const clock = new ManualClock(at("2031-01-10T12:00:00Z"));
    await recordAudit(t.db, { at: clock.now(), type: "login" });
    // the legacy partition covers up to the end of its last day: day partitions start after it
    const first = await runJanitor(t.db, clock, DAY, { auditRetentionSeconds: DAY });
    expect(first.auditPartitionsCreated).toBe(3);
    expect(await partitions(t.db)).toEqual([
      "audit_events_default",
      "audit_events_legacy",
      "audit_events_p20310111",
      "audit_events_p20310112",
      "audit_events_p20310113",
    ]);
    // rows of the multi-day legacy partition go row by row (in batches) until it can go whole:
    // a day of retention at noon on the 10th keeps what happened since noon on the 9th
    expect(first.auditDeleted).toBe(2);
    expect(await placement(t.db)).toEqual([3, 4].map((id) => ({ id, where: "audit_events_legacy" })));
    clock.set(at("2031-01-11T12:00:00Z"));
    const second = await runJanitor(t.db, clock, DAY, { auditRetentionSeconds: DAY });
    expect(second.auditDeleted).toBe(1);
    expect((await placement(t.db)).map((p) => p.id)).toEqual([4]);
    clock.set(at("2031-01-12T12:00:00Z"));
    const third = await runJanitor(t.db, clock, DAY, { auditRetentionSeconds: DAY });
    expect(third.auditPartitionsDropped).toBe(1);
    expect(await partitions(t.db)).not.toContain("audit_events_legacy");
    await recordAudit(t.db, { at: clock.now(), type: "login" });
    expect(await placement(t.db)).toEqual([{ id: 5, where: "audit_events_p20310112" }]);
  });

  it("drops an empty table instead of keeping a legacy partition", async () => {
    t = await createTestDatabase(kind);
    expect(await partitions(t.db)).toEqual(["audit_events_default"]);
  });
});

describe("partition DDL never queues behind a long reader (PostgreSQL)", () => {
  let t: TestDatabase;
  afterAll(() => t?.drop());

  it("gives up after lock_timeout, leaves the table usable, and drops the partition on the next run", async () => {
    t = await createTestDatabase("postgres");
    const clock = new ManualClock(Date.UTC(2031, 5, 1, 12));
    await runJanitor(t.db, clock, DAY);
    await recordAudit(t.db, { at: clock.now(), type: "login" });
    clock.advance(5 * DAY);
    const reader = new pg.Client({ connectionString: t.url });
    await reader.connect();
    try {
      await reader.query("BEGIN");
      await reader.query("SELECT count(*) FROM audit_events");
      const blocked = await runJanitor(t.db, clock, DAY, { auditRetentionSeconds: DAY });
      expect(blocked.auditPartitionsDropped).toBe(0);
      expect(await partitions(t.db)).toContain("audit_events_p20310601");
      // inserts went on meanwhile
      await recordAudit(t.db, { at: clock.now(), type: "login" });
      await reader.query("COMMIT");
    } finally {
      await reader.end();
    }
    const next = await runJanitor(t.db, clock, DAY, { auditRetentionSeconds: DAY });
    expect(next.auditPartitionsDropped).toBeGreaterThanOrEqual(1);
    expect(await partitions(t.db)).not.toContain("audit_events_p20310601");
  });
});
