import type { Clock, Database } from "@evergreen/db";
import {
  codeQueries,
  deviceQueries,
  janitorQueries,
  keyQueries,
  loginSessionQueries,
  pushedRequestQueries,
} from "./queries.ts";

export interface JanitorReport {
  sealsDropped: number;
  familiesDeleted: number;
  keysDeleted: number;
  auditDeleted: number;
  codesDeleted: number;
  loginSessionsDeleted: number;
}

/**
 * Removes what can never be used again: sealed successors past their grace window, families
 * (with their tokens) that are revoked, absolutely expired or idle-expired for longer than
 * `retentionSeconds` (so are expired authorization codes and ended or expired login sessions),
 * signing keys past their overlap, and audit events older than
 * `auditRetentionSeconds`. Idempotent, so any number of processes may run it.
 */
export async function runJanitor(
  db: Database,
  clock: Clock,
  retentionSeconds: number,
  auditRetentionSeconds = 90 * 86400,
): Promise<JanitorReport> {
  const now = clock.now();
  const before = new Date(now.getTime() - retentionSeconds * 1000);
  const seals = await db.query(janitorQueries.dropExpiredSeals({ now }));
  const families = await db.query(janitorQueries.deleteDeadFamilies({ before }));
  const keys = await db.query(keyQueries.deleteExpired({ now }));
  const audit = await db.query(
    janitorQueries.deleteOldAudit({ before: new Date(now.getTime() - auditRetentionSeconds * 1000) }),
  );
  const codes = await db.query(codeQueries.deleteOld({ before }));
  await db.query(deviceQueries.deleteOld({ before }));
  await db.query(pushedRequestQueries.deleteExpired({ now }));
  const loginSessions = await db.query(loginSessionQueries.deleteDead({ before }));
  return {
    codesDeleted: codes.rowCount,
    loginSessionsDeleted: loginSessions.rowCount,
    sealsDropped: seals.rowCount,
    familiesDeleted: families.rowCount,
    keysDeleted: keys.rowCount,
    auditDeleted: audit.rowCount,
  };
}
