import type { Queryable } from "@evergreen/db";
import { auditQueries } from "./queries.ts";

export type AuditType =
  | "login"
  | "login_failed"
  | "refresh"
  | "refresh_replayed"
  | "refresh_token_reuse"
  | "token_revoked"
  | "session_revoked"
  | "session_evicted"
  | "client_credentials";

export interface AuditEvent {
  at: Date;
  type: AuditType;
  userId?: string | null;
  clientId?: string | null;
  familyId?: string | null;
  /** A token's short hash id (never the token). */
  tokenId?: string | null;
  ip?: string | null;
  detail?: Record<string, unknown>;
}

/** Writes one audit event. The hot paths (login, refresh) write theirs inside their own statement. */
export async function recordAudit(db: Queryable, e: AuditEvent): Promise<void> {
  await db.query(
    auditQueries.insert({
      at: e.at,
      type: e.type,
      user_id: e.userId ?? null,
      client_id: e.clientId ?? null,
      family_id: e.familyId ?? null,
      token_id: e.tokenId ?? null,
      ip: e.ip ?? null,
      detail: e.detail ? JSON.stringify(e.detail) : null,
    }),
  );
}
