import type { Queryable } from "@evergreen/db";
import type { FastifyRequest } from "fastify";
import { bearerSecretCheck } from "../bearer-secret.ts";
import type { IssuerContext } from "../context.ts";
import { BearerTokenError } from "../errors.ts";
import { hasScopes } from "../guard/verify.ts";
import { addressKey } from "../rate-limit/address-key.ts";
import { sessionQueries, userQueries } from "../queries.ts";
import { isUuid } from "../uuid.ts";

/**
 * The scope that lets an access token call the admin API (the dashboard signed in through the
 * issuer). Only users marked admin are ever granted it; the admin API checks again on every
 * request, so taking the flag away (or disabling the user, or revoking the session) ends
 * access at once, not when the access token expires.
 */
export const ADMIN_SCOPE = "evergreen:admin";

async function isAdmin(db: Queryable, userId: string): Promise<boolean> {
  if (!isUuid(userId)) return false;
  const { rows } = await db.query<{ is_admin: boolean; disabled_at: Date | null }>(
    userQueries.adminState({ id: userId }),
  );
  return rows[0]?.is_admin === true && !rows[0].disabled_at;
}

/** `scope` without the admin scope unless the user is an admin (RFC 6749 §3.3: a narrower grant). */
export async function scopeForUser(db: Queryable, userId: string, scope: string): Promise<string> {
  const scopes = scope.split(" ").filter(Boolean);
  if (!scopes.includes(ADMIN_SCOPE) || (await isAdmin(db, userId))) return scope;
  return scopes.filter((s) => s !== ADMIN_SCOPE).join(" ");
}

const JWT_SHAPE = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/;

/** An access token of this issuer with the admin scope, of an admin user, in a live session. */
async function isAdminAccessToken(ctx: IssuerContext, token: string): Promise<boolean> {
  let claims: Awaited<ReturnType<IssuerContext["verifyAccessToken"]>>;
  try {
    claims = await ctx.verifyAccessToken(token);
  } catch (err) {
    if (err instanceof BearerTokenError) return false;
    throw err;
  }
  if (!hasScopes(claims, [ADMIN_SCOPE]) || !(await isAdmin(ctx.db, claims.sub))) return false;
  if (!claims.sid || !isUuid(claims.sid)) return false;
  const { rows } = await ctx.db.query<{ revoked_at: Date | null }>(
    sessionQueries.familyState({ sid: claims.sid }),
  );
  return rows.length === 1 && rows[0]!.revoked_at === null;
}

/**
 * The admin API's check of `Authorization: Bearer …`: the admin token, or an access token
 * with the admin scope (see ADMIN_SCOPE). A JWT that does not qualify goes on to the
 * admin-token comparison, which counts it as a failed authentication like any wrong token.
 */
export function adminRequestCheck(
  ctx: IssuerContext,
  adminToken: string,
  onFailure: () => Error,
): (req: FastifyRequest) => Promise<void> {
  const tokenCheck = bearerSecretCheck(ctx, adminToken, onFailure);
  const rl = ctx.config.rateLimit;
  return async (req) => {
    const m = JWT_SHAPE.exec(req.headers.authorization ?? "");
    if (m) {
      // An address past its failure budget is refused whatever it sends, as bearerSecretCheck does.
      const key = `auth-failures:${addressKey(req.ip)}`;
      await ctx.limiter.check(key, rl.authFailuresPerIp, "too many failed authentications; retry later");
      if (await isAdminAccessToken(ctx, m[1]!)) return;
    }
    await tokenCheck(req);
  };
}
