import type { Clock, Queryable } from "@evergreen/db";
import { AdminApiError } from "../errors.ts";
import { sessionQueries, tokenQueries } from "../queries.ts";
import { isUuid } from "../uuid.ts";

export interface SessionSummary {
  sid: string;
  client_id: string;
  scope: string;
  created_at: Date;
  last_refreshed_at: Date | null;
  idle_expires_at: Date | null;
  /** Refreshes with rotation so far (null once the session has no live token). */
  rotations: number | null;
  absolute_expires_at: Date;
  revoked_at: Date | null;
  revoked_reason: string | null;
  active: boolean;
}

/** A user's sessions (refresh-token families), newest first. */
export async function listSessions(db: Queryable, clock: Clock, userId: string): Promise<SessionSummary[]> {
  const { rows } = await db.query<SessionSummary>(
    sessionQueries.listForUser({ user_id: userId, now: clock.now() }),
  );
  return rows.map((r) => ({ ...r, active: r.active === true }));
}

/** Revokes one session of a user; 404 if it is not theirs. */
export async function revokeSession(db: Queryable, clock: Clock, userId: string, sid: string): Promise<void> {
  if (!isUuid(sid)) throw new AdminApiError("not_found", "no such session");
  const { rows } = await db.query(sessionQueries.familyOfUser({ sid, user_id: userId }));
  if (!rows[0]) throw new AdminApiError("not_found", "no such session");
  await revoke(db, clock, sid);
}

/** Revokes every live session of a user ("log out everywhere"); returns how many. */
export async function revokeAllSessions(db: Queryable, clock: Clock, userId: string): Promise<number> {
  const { rows } = await db.query<{ id: string }>(sessionQueries.liveFamiliesOfUser({ user_id: userId }));
  for (const r of rows) await revoke(db, clock, r.id);
  return rows.length;
}

function revoke(db: Queryable, clock: Clock, sid: string) {
  return db.query(
    tokenQueries.revokeFamily({
      family_id: sid,
      now: clock.now(),
      reason: "revoked_by_admin",
      type: "session_revoked",
      token_id: null,
      ip: null,
      detail: JSON.stringify({ via: "admin" }),
    }),
  );
}
