import type { Clock, Database, Queryable } from "@evergreen/db";
import type { StorageConfig } from "./config.ts";
import {
  auditPartitionQueries,
  codeQueries,
  deviceQueries,
  janitorQueries,
  keyQueries,
  loginSessionQueries,
  pushedRequestQueries,
} from "./queries.ts";

export interface JanitorReport {
  sealsDropped: number;
  /** Rotated tokens dropped long after their own idle expiry (their families live on). */
  consumedTokensDeleted: number;
  familiesDeleted: number;
  keysDeleted: number;
  /** Expired audit rows deleted one by one (default and legacy partitions only). */
  auditDeleted: number;
  /** Whole day partitions of audit events dropped past retention. */
  auditPartitionsDropped: number;
  auditPartitionsCreated: number;
  codesDeleted: number;
  loginSessionsDeleted: number;
}

export interface JanitorOptions {
  /** Seconds audit events are kept (default 90 days). */
  auditRetentionSeconds?: number;
  /** Rows one statement touches at most (default 5,000). */
  batchSize?: number;
  /** Day partitions of audit_events kept ready ahead of today (default 3). */
  partitionDaysAhead?: number;
}

/** The janitor's options as the server configuration sets them. */
export function janitorOptions(storage: StorageConfig): JanitorOptions {
  return { auditRetentionSeconds: storage.auditRetention, batchSize: storage.janitorBatch };
}

const DAY_MS = 86_400_000;
/** SQLSTATE lock_not_available: lock_timeout expired. */
const LOCK_NOT_AVAILABLE = "55P03";

const NIL_UUID = "00000000-0000-0000-0000-000000000000";

/**
 * Removes what can never be used again: sealed successors past their grace window, rotated
 * tokens whose own idle expiry is more than `retentionSeconds` behind, families (with their
 * tokens) that are revoked, absolutely expired or idle-expired for longer than
 * `retentionSeconds` (so are expired authorization codes and ended or expired login
 * sessions), signing keys past their overlap, and audit events older than the audit retention
 * (whole day partitions, which it also creates ahead). Every step works in batches that lock
 * a few thousand rows at most, skipping rows another process holds, so any number of
 * processes may run it at once while requests go on.
 */
export async function runJanitor(
  db: Database,
  clock: Clock,
  retentionSeconds: number,
  options: JanitorOptions = {},
): Promise<JanitorReport> {
  const batch = options.batchSize ?? 5000;
  const now = clock.now();
  const before = new Date(now.getTime() - retentionSeconds * 1000);
  const auditBefore = new Date(now.getTime() - (options.auditRetentionSeconds ?? 90 * 86400) * 1000);

  const sealsDropped = await inBatches(batch, () =>
    db.query(janitorQueries.dropExpiredSeals({ now, batch })),
  );
  const consumedTokensDeleted = await inBatches(batch, () =>
    db.query(janitorQueries.pruneConsumed({ before, now, batch })),
  );
  let familiesDeleted = 0;
  for (let after: string | null = NIL_UUID; after !== null; ) {
    const page: { rows: { last: string | null; deleted: number }[] } = await db.query(
      janitorQueries.deleteDeadFamilies({ before, after, batch }),
    );
    familiesDeleted += page.rows[0]?.deleted ?? 0;
    after = page.rows[0]?.last ?? null;
  }
  const keys = await db.query(keyQueries.deleteExpired({ now }));
  const partitions = await maintainAuditPartitions(db, now, auditBefore, options.partitionDaysAhead ?? 3);
  let auditDeleted = 0;
  for (const name of partitions.rowDeleted) {
    auditDeleted += await inBatches(batch, () =>
      db.query(auditPartitionQueries.deleteExpiredRows(name, auditBefore, batch)),
    );
  }
  const codes = await db.query(codeQueries.deleteOld({ before }));
  await db.query(deviceQueries.deleteOld({ before }));
  await db.query(pushedRequestQueries.deleteExpired({ now }));
  const loginSessions = await db.query(loginSessionQueries.deleteDead({ before }));
  return {
    codesDeleted: codes.rowCount,
    loginSessionsDeleted: loginSessions.rowCount,
    sealsDropped,
    consumedTokensDeleted,
    familiesDeleted,
    keysDeleted: keys.rowCount,
    auditDeleted,
    auditPartitionsDropped: partitions.dropped,
    auditPartitionsCreated: partitions.created,
  };
}

/** Runs a batched statement until a batch comes back short; the rows it touched in all. */
async function inBatches(batch: number, step: () => Promise<{ rowCount: number }>): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await step();
    total += rowCount;
    if (rowCount < batch) return total;
  }
}

interface PartitionRow {
  name: string;
  is_default: boolean;
  from_at: Date | null;
  to_at: Date | null;
}

/** `audit_events_p20261122` for the UTC day starting at `day`. */
export function dayPartitionName(day: Date): string {
  return `audit_events_p${day.toISOString().slice(0, 10).replaceAll("-", "")}`;
}

/**
 * Keeps day partitions ready from today (by the injected clock) to `daysAhead` days ahead,
 * adopting any rows the default partition caught for those days, and drops partitions that
 * end before `auditBefore`. One process does it at a time (try-lock); one that cannot get the
 * table locks within lock_timeout gives up until its next run. Returns the partitions whose
 * expired rows must be deleted row by row (the default, and a multi-day legacy one).
 */
async function maintainAuditPartitions(
  db: Database,
  now: Date,
  auditBefore: Date,
  daysAhead: number,
): Promise<{ created: number; dropped: number; rowDeleted: string[] }> {
  const list = async (q: Queryable) => (await q.query<PartitionRow>(auditPartitionQueries.list())).rows;
  // Another process holds the lock or a reader holds the table: skip, the next run does it.
  const locked = async (work: (tx: Queryable) => Promise<boolean>): Promise<boolean> => {
    try {
      return await db.transaction(async (tx) => {
        if (!(await tx.query<{ locked: boolean }>(auditPartitionQueries.tryLock())).rows[0]?.locked)
          return false;
        await tx.query(auditPartitionQueries.lockTimeout());
        return work(tx);
      });
    } catch (err) {
      if ((err as { code?: string }).code === LOCK_NOT_AVAILABLE) return false;
      throw err;
    }
  };
  const today = Math.floor(now.getTime() / DAY_MS) * DAY_MS;
  let created = 0;
  let dropped = 0;
  for (let d = 0; d <= daysAhead; d++) {
    const from = new Date(today + d * DAY_MS);
    const to = new Date(from.getTime() + DAY_MS);
    const overlaps = (rows: PartitionRow[]) =>
      rows.some(
        (p) =>
          !p.is_default && (p.from_at === null || p.from_at < to) && (p.to_at === null || p.to_at > from),
      );
    if (overlaps(await list(db))) continue;
    const done = await locked(async (tx) => {
      // Checked again under the lock: another janitor may have made it meanwhile.
      if (overlaps(await list(tx))) return false;
      const name = dayPartitionName(from);
      await tx.query(auditPartitionQueries.lockDefault());
      await tx.query(auditPartitionQueries.create(name));
      await tx.query(auditPartitionQueries.adoptFromDefault(name, from, to));
      await tx.query(auditPartitionQueries.attach(name, from, to));
      return true;
    });
    if (done) created++;
  }
  for (const p of await list(db)) {
    if (p.is_default || p.to_at === null || p.to_at > auditBefore) continue;
    // Each drop is its own short transaction: the parent is locked only for that instant.
    const done = await locked(async (tx) => {
      await tx.query(auditPartitionQueries.drop(p.name));
      return true;
    });
    if (done) dropped++;
  }
  const rowDeleted = (await list(db)).filter((p) => p.is_default || p.from_at === null).map((p) => p.name);
  return { created, dropped, rowDeleted };
}
