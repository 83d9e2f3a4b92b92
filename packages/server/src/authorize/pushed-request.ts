import { randomBytes } from "node:crypto";
import type { Client } from "../clients.ts";
import type { IssuerContext } from "../context.ts";
import { sha256 } from "../crypto/opaque-token.ts";
import { OAuthError, type OAuthErrorCode } from "../errors.ts";
import type { FormParams } from "../form-body.ts";
import { pushedRequestQueries } from "../queries.ts";
import { AuthorizePageError, AuthorizeRedirectError, parseAuthorizationRequest } from "./request.ts";

/** How long a pushed request waits for the browser to arrive at /authorize (RFC 9126 §2.2). */
export const PUSHED_REQUEST_TTL_SECONDS = 60;
const REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:";
/** Parameters that authenticate the client: never stored, never carried through the browser. */
const CLIENT_AUTH = new Set(["client_secret", "client_assertion", "client_assertion_type"]);

/**
 * RFC 9126 §2: the client posts its authorization request directly (authenticated), it is
 * validated exactly as /authorize would, and kept under a one-minute `request_uri` (only its
 * hash is stored). Errors are the token endpoint's kind (JSON), since no browser is involved.
 */
export async function pushAuthorizationRequest(
  ctx: IssuerContext,
  client: Client,
  params: FormParams,
): Promise<{ request_uri: string; expires_in: number }> {
  if (params.request_uri !== undefined) {
    throw new OAuthError("invalid_request", "request_uri must not be pushed");
  }
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (CLIENT_AUTH.has(k)) continue;
    for (const item of Array.isArray(v) ? v : [v]) query.append(k, item);
  }
  query.set("client_id", client.client_id);
  try {
    await parseAuthorizationRequest(query.toString(), ctx.clients);
  } catch (err) {
    if (err instanceof AuthorizePageError) throw new OAuthError("invalid_request", err.description);
    if (err instanceof AuthorizeRedirectError) {
      const known: OAuthErrorCode[] = ["invalid_scope", "unauthorized_client"];
      const code = known.find((c) => c === err.error) ?? "invalid_request";
      throw new OAuthError(code, err.description);
    }
    throw err;
  }
  const requestUri = `${REQUEST_URI_PREFIX}${randomBytes(32).toString("base64url")}`;
  const now = ctx.clock.now();
  await ctx.db.query(
    pushedRequestQueries.insert({
      hash: sha256(requestUri),
      client_id: client.client_id,
      query: query.toString(),
      expires_at: new Date(now.getTime() + PUSHED_REQUEST_TTL_SECONDS * 1000),
    }),
  );
  return { request_uri: requestUri, expires_in: PUSHED_REQUEST_TTL_SECONDS };
}

/**
 * The query /authorize works from: itself, or, when it names a `request_uri`, the pushed
 * request that URI stands for (the other parameters are ignored, RFC 9126 §4). The expanded
 * query is what the login and consent forms then carry, so the short-lived URI only has to
 * survive until the browser arrives. `pushed` says which it was.
 */
export async function expandPushedRequest(
  ctx: IssuerContext,
  query: string,
): Promise<{ query: string; pushed: boolean }> {
  const params = new URLSearchParams(query);
  const requestUri = params.get("request_uri");
  if (requestUri === null) return { query, pushed: false };
  const clientId = params.get("client_id");
  if (params.getAll("request_uri").length > 1 || !clientId || !requestUri.startsWith(REQUEST_URI_PREFIX)) {
    throw new AuthorizePageError("The request names an invalid pushed request (request_uri).");
  }
  const { rows } = await ctx.db.query<{ query: string }>(
    pushedRequestQueries.get({ hash: sha256(requestUri), client_id: clientId, now: ctx.clock.now() }),
  );
  if (!rows[0])
    throw new AuthorizePageError("The request has expired or is unknown (request_uri). Start again.");
  return { query: rows[0].query, pushed: true };
}
