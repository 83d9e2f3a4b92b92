import type { BrokerContext } from "../context.ts";
import { openString } from "../crypto/token-seal.ts";
import { type WebhookRow, webhookQueries } from "../queries.ts";
import { backoffMs } from "../refresh/expiry.ts";
import { signWebhook } from "./signature.ts";

const MAX_ATTEMPTS = 10;
const DELIVERY_TIMEOUT_MS = 5_000;

/**
 * Sends due webhook deliveries once: each claimed under a short lease (several processes may
 * dispatch), POSTed with `Evergreen-Signature` and `Evergreen-Event-Id` (receivers deduplicate
 * on it), then marked delivered, or rescheduled with backoff, or failed after 10 attempts.
 * Returns how many were attempted.
 */
export async function dispatchWebhooks(ctx: BrokerContext, limit = 20): Promise<number> {
  const now = ctx.clock.now();
  const { rows } = await ctx.db.query<{
    id: number;
    webhook_id: string;
    event_id: string;
    event_type: string;
    payload: Record<string, unknown>;
    attempts: number;
  }>(webhookQueries.claimDeliveries({ now, lease_until: new Date(now.getTime() + 60_000), limit }));
  const hooks = new Map<string, WebhookRow | undefined>();
  await Promise.all(
    rows.map(async (d) => {
      if (!hooks.has(d.webhook_id)) {
        const { rows: h } = await ctx.db.query<WebhookRow>(webhookQueries.byId({ id: d.webhook_id }));
        hooks.set(d.webhook_id, h[0]);
      }
      const hook = hooks.get(d.webhook_id);
      if (!hook) return;
      const body = JSON.stringify(d.payload);
      const ts = Math.floor(ctx.clock.now().getTime() / 1000);
      let status: number | null = null;
      let error = "";
      try {
        const secret = openString(ctx.ring, hook.id, "webhook_secret", hook.secret);
        const res = await ctx.fetch(hook.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "evergreen-event-id": d.event_id,
            "evergreen-event-type": d.event_type,
            "evergreen-signature": signWebhook(secret, body, ts),
          },
          body,
          redirect: "error",
          signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
        });
        await res.arrayBuffer().catch(() => {});
        status = res.status;
        if (res.ok) {
          await ctx.db.query(
            webhookQueries.markDelivered({ id: d.id, last_status: res.status, now: ctx.clock.now() }),
          );
          ctx.metrics.webhookDeliveries.inc({ outcome: "delivered" });
          return;
        }
        error = `receiver answered ${res.status}`;
      } catch (err) {
        const name = (err as Error)?.name;
        error = name === "TimeoutError" ? "timeout" : "network error";
      }
      const failed = d.attempts >= MAX_ATTEMPTS;
      await ctx.db.query(
        webhookQueries.markRetry({
          id: d.id,
          last_status: status,
          last_error: error,
          failed,
          next_attempt_at: new Date(ctx.clock.now().getTime() + backoffMs(d.attempts, ctx.random)),
        }),
      );
      ctx.metrics.webhookDeliveries.inc({ outcome: failed ? "failed" : "retry" });
    }),
  );
  return rows.length;
}
