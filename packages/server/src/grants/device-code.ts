import { randomUUID } from "node:crypto";
import { type Client, DEVICE_CODE_GRANT } from "../clients.ts";
import type { IssuerContext } from "../context.ts";
import type { DpopBinding } from "../dpop/token-endpoint.ts";
import { sha256 } from "../crypto/opaque-token.ts";
import { OAuthError } from "../errors.ts";
import { type FormParams, requiredParam } from "../form-body.ts";
import { deviceQueries } from "../queries.ts";
import { signIdToken } from "../tokens/id-token.ts";
import { startSession } from "../tokens/session.ts";
import type { TokenResponse } from "../tokens/token-response.ts";

interface DeviceRow {
  client_id: string;
  scope: string;
  expires_at: Date;
  poll_interval: number;
  next_poll_at: Date;
  status: "pending" | "approved" | "denied" | "consumed";
  user_id: string | null;
  login_session_id: string | null;
  auth_time: Date | null;
  credentials_version: number | null;
}

type Outcome = { row: DeviceRow; familyId: string } | OAuthError;

/**
 * grant_type=urn:ietf:params:oauth:grant-type:device_code (RFC 8628 §3.4): the device polls
 * until the user has approved or denied it at /device. Polling faster than the interval
 * answers `slow_down` and lengthens the interval by 5 seconds (§3.5). An approved
 * authorization is redeemed once, through the same session start as every other login.
 */
export async function deviceCodeGrant(
  ctx: IssuerContext,
  client: Client,
  params: FormParams,
  ip: string,
  dpop?: DpopBinding,
): Promise<TokenResponse> {
  if (!client.grant_types.includes(DEVICE_CODE_GRANT)) {
    throw new OAuthError("unauthorized_client", "this client may not use the device authorization grant");
  }
  const hash = sha256(requiredParam(params, "device_code"));
  const now = ctx.clock.now();
  const outcome: Outcome = await ctx.db.transaction(async (tx) => {
    const { rows } = await tx.query<DeviceRow>(deviceQueries.lockForPoll({ hash }));
    const row = rows[0];
    if (!row || row.client_id !== client.client_id || row.status === "consumed") {
      return new OAuthError("invalid_grant", "the device code is invalid or already used");
    }
    if (row.expires_at <= now) return new OAuthError("expired_token", "the device code has expired");
    if (row.status === "denied") return new OAuthError("access_denied", "the user denied the request");
    if (row.status === "pending") {
      const tooSoon = now < row.next_poll_at;
      const interval = tooSoon ? row.poll_interval + 5 : row.poll_interval;
      await tx.query(
        deviceQueries.pollAgain({
          hash,
          poll_interval: interval,
          next_poll_at: new Date(now.getTime() + interval * 1000),
        }),
      );
      return tooSoon
        ? new OAuthError("slow_down", `poll at most every ${interval} seconds`)
        : new OAuthError("authorization_pending", "the user has not yet approved the request");
    }
    const familyId = randomUUID();
    await tx.query(deviceQueries.consume({ hash, family_id: familyId }));
    return { row, familyId };
  });
  if (outcome instanceof OAuthError) throw outcome;
  const { row, familyId } = outcome;
  const response: TokenResponse = await startSession(
    ctx,
    client,
    row.user_id!,
    row.scope,
    ip,
    row.credentials_version!,
    {
      familyId,
      dpop,
      authTime: row.auth_time ?? now,
      loginSessionId: row.login_session_id,
    },
  );
  if (row.scope.split(" ").includes("openid")) {
    response.id_token = await signIdToken(ctx, {
      sub: row.user_id!,
      clientId: client.client_id,
      sid: row.login_session_id ?? undefined,
      authTime: row.auth_time ?? now,
      accessToken: response.access_token,
    });
  }
  return response;
}
