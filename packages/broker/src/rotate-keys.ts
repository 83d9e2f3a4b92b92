import type { Database } from "@evergreen/db";
import type { KeyRing } from "@evergreen/server";
import { openString, sealString, sealedKeyId } from "./crypto/token-seal.ts";
import { connectionQueries, providerQueries, webhookQueries, type WebhookRow } from "./queries.ts";

/**
 * Re-seals every broker secret under the ring's current key (the first of
 * EVERGREEN_ENCRYPTION_KEY), connections in batches of `batch` rows per transaction, so a
 * retired key can then be removed. Token values and generations are unchanged; safe to run
 * while workers refresh (rows being rewritten are skipped and caught by the next batch).
 */
export async function rotateBrokerKeys(
  db: Database,
  ring: KeyRing,
  batch = 500,
): Promise<{ connections: number; providers: number; webhooks: number }> {
  const keyId = ring.current.id;
  let connections = 0;
  for (;;) {
    const done = await db.transaction(async (tx) => {
      const { rows } = await tx.query<{
        id: string;
        access_token: Buffer;
        refresh_token: Buffer | null;
        last_response: Buffer | null;
        key_id: string;
      }>(connectionQueries.sealedWithOtherKey({ key_id: keyId, limit: batch }));
      for (const r of rows) {
        const reseal = (field: "access_token" | "refresh_token" | "last_response", v: Buffer | null) =>
          v ? sealString(ring, r.id, field, openString(ring, r.id, field, v)) : null;
        await tx.query(
          connectionQueries.reseal({
            id: r.id,
            from_key_id: r.key_id,
            access_token: reseal("access_token", r.access_token)!,
            refresh_token: reseal("refresh_token", r.refresh_token),
            last_response: reseal("last_response", r.last_response),
            key_id: keyId,
          }),
        );
      }
      return rows.length;
    });
    connections += done;
    if (done < batch) break;
  }
  let providers = 0;
  const { rows: secrets } = await db.query<{ name: string; client_secret: Buffer }>(
    providerQueries.sealedWithOtherKey({ key_id: keyId }),
  );
  for (const p of secrets) {
    const clear = openString(ring, p.name, "client_secret", p.client_secret);
    await db.query(
      providerQueries.setSecret({
        name: p.name,
        client_secret: sealString(ring, p.name, "client_secret", clear),
      }),
    );
    providers++;
  }
  let webhooks = 0;
  const { rows: hooks } = await db.query<WebhookRow>(webhookQueries.list());
  for (const h of hooks) {
    if (sealedKeyId(h.secret) === keyId) continue;
    const clear = openString(ring, h.id, "webhook_secret", h.secret);
    await db.query(
      webhookQueries.setSecret({ id: h.id, secret: sealString(ring, h.id, "webhook_secret", clear) }),
    );
    webhooks++;
  }
  return { connections, providers, webhooks };
}
