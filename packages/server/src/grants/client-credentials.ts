import { randomUUID } from "node:crypto";
import { recordAudit } from "../audit.ts";
import type { Client } from "../clients.ts";
import type { IssuerContext } from "../context.ts";
import type { DpopBinding } from "../dpop/token-endpoint.ts";
import { OAuthError } from "../errors.ts";
import { type FormParams, param } from "../form-body.ts";
import { grantScope, parseScope } from "../scope.ts";
import { type TokenResponse, accessTokenFor, tokenResponse } from "../tokens/token-response.ts";

/** grant_type=client_credentials (RFC 6749 §4.4): confidential clients only, never a refresh token (§4.4.3). */
export async function clientCredentialsGrant(
  ctx: IssuerContext,
  client: Client,
  params: FormParams,
  ip: string,
  dpop?: DpopBinding,
): Promise<TokenResponse> {
  if (client.token_endpoint_auth_method === "none" || !client.grant_types.includes("client_credentials")) {
    throw new OAuthError("unauthorized_client", "this client may not use the client_credentials grant");
  }
  const scope = grantScope(parseScope(param(params, "scope")), client.scope);
  const now = ctx.clock.now();
  const expiresAt = new Date(now.getTime() + client.access_token_ttl * 1000);
  const at = accessTokenFor(
    ctx,
    {
      sub: client.client_id,
      clientId: client.client_id,
      scope,
      jti: randomUUID(),
      issuedAt: now,
      expiresAt,
      jkt: dpop?.jkt,
    },
    ctx.keys.current(),
  );
  await recordAudit(ctx.db, { at: now, type: "client_credentials", clientId: client.client_id, ip });
  return tokenResponse(now, at, expiresAt, scope, undefined, dpop?.jkt);
}
