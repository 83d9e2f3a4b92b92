import type { Clock, Queryable } from "@evergreen/db";
import { AdminApiError } from "../errors.ts";
import { sessionQueries, tokenQueries } from "../queries.ts";
import { isUuid } from "../uuid.ts";
import { PAGE, clampPage } from "./paging.ts";

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

/** A session as the dashboard lists it: the summary with its user and live generation. */
export interface SessionRow extends SessionSummary {
  user_id: string | null;
  username: string | null;
  generation: number | null;
}

export interface SessionFilter {
  user_id?: string | null;
  client_id?: string | null;
  /** "active" (can still refresh) or "ended"; null lists both. */
  state?: string | null;
}

/** A page of sessions of every user, newest first. */
export async function listAllSessions(
  db: Queryable,
  clock: Clock,
  filter: SessionFilter,
  limit = PAGE.defaultLimit,
  offset = 0,
): Promise<SessionRow[]> {
  const { rows } = await db.query<SessionRow>(
    sessionQueries.list({
      user_id: filter.user_id ?? null,
      client_id: filter.client_id ?? null,
      state: filter.state ?? null,
      now: clock.now(),
      ...clampPage(limit, offset),
    }),
  );
  return rows.map((r) => ({ ...r, active: r.active === true }));
}

/** One entry of a session's timeline: an audit event, with the generation it issued. */
export interface TimelineEvent {
  id: string;
  at: Date;
  type: string;
  token_id: string | null;
  ip: string | null;
  detail: Record<string, unknown> | null;
  generation: number | null;
}

export interface SessionDetail extends SessionRow {
  rotate_refresh_tokens: boolean;
  refresh_token_idle_ttl: number;
  refresh_token_reuse_grace: number;
  /** Newest first; `next_before` pages on (null when this is the oldest page). */
  timeline: TimelineEvent[];
  next_before: string | null;
}

/**
 * One session with a page of its timeline: login, each rotation with its generation, grace
 * replays, reuse detection, revocation (from the audit trail), newest first. What is still
 * ahead (idle and absolute expiry) is in `idle_expires_at` and `absolute_expires_at`.
 */
export async function getSession(
  db: Queryable,
  clock: Clock,
  sid: string,
  page: { before?: string | null; limit?: number } = {},
): Promise<SessionDetail> {
  if (!isUuid(sid)) throw new AdminApiError("not_found", "no such session");
  const { rows } = await db.query<SessionDetail>(sessionQueries.byId({ sid, now: clock.now() }));
  const session = rows[0];
  if (!session) throw new AdminApiError("not_found", "no such session");
  const limit = clampPage(page.limit ?? PAGE.defaultLimit, 0).limit;
  const events = await db.query<TimelineEvent>(
    sessionQueries.timeline({ sid, before: page.before ?? null, limit }),
  );
  const timeline = events.rows.map((e) => ({ ...e, id: String(e.id) }));
  return {
    ...session,
    active: session.active === true,
    timeline,
    next_before: timeline.length === limit ? timeline[timeline.length - 1]!.id : null,
  };
}

/** Revokes a session by its id, whoever's it is; 404 if there is none. */
export async function revokeSessionById(db: Queryable, clock: Clock, sid: string): Promise<void> {
  if (!isUuid(sid)) throw new AdminApiError("not_found", "no such session");
  const { rows } = await db.query(sessionQueries.familyState({ sid }));
  if (!rows[0]) throw new AdminApiError("not_found", "no such session");
  await revoke(db, clock, sid);
}
