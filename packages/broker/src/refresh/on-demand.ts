import type { BrokerContext } from "../context.ts";
import { type ClaimedRow, type ConnectionRow, connectionQueries } from "../queries.ts";
import { type AttemptResult, refreshClaimed } from "./attempt.ts";

/**
 * A refresh wanted now (a consumer needs more validity, or an admin asked), under the same
 * lease as the worker so the two never race: claim the connection if its lease is free and
 * refresh it here; otherwise wait — on LISTEN/NOTIFY, not by polling — for the holder to
 * write its outcome, or at most until its lease lapses or `waitMs` passes.
 */
export async function refreshNow(
  ctx: BrokerContext,
  id: string,
  waitMs: number,
  leaseExpiresAt: Date | null,
  /** Refresh only if the token still expires before this (consumers); default: always. */
  needBefore: Date = new Date("9999-12-31T00:00:00Z"),
): Promise<{ claimed: true; result: AttemptResult } | { claimed: false }> {
  const now = ctx.clock.now();
  // Subscribe before trying, so a notification between the claim and the wait is not missed.
  const leaseLeft = leaseExpiresAt ? leaseExpiresAt.getTime() - now.getTime() : 0;
  const changed = ctx.notifier.waitForChange(id, Math.max(50, Math.min(waitMs, leaseLeft + 50)));
  const { rows } = await ctx.db.query<ClaimedRow>(
    connectionQueries.claimOne({
      id,
      now,
      lease_until: new Date(now.getTime() + ctx.config.leaseMs),
      owner: ctx.owner,
      need_before: needBefore,
    }),
  );
  if (rows[0]) return { claimed: true, result: await refreshClaimed(ctx, rows[0]) };
  // Not claimed: someone holds the lease, or a refresh has just landed (then no need to wait).
  const { rows: current } = await ctx.db.query<ConnectionRow>(connectionQueries.byId({ id }));
  const fresh = current[0];
  if (!fresh || fresh.expires_at.getTime() >= needBefore.getTime() || fresh.lease_token === null) {
    return { claimed: false };
  }
  await changed;
  return { claimed: false };
}
