import type { Client } from "../clients.ts";
import type { IssuerContext } from "../context.ts";
import { recordAudit } from "../audit.ts";
import { verifyPassword } from "../crypto/password.ts";
import { OAuthError } from "../errors.ts";
import { type FormParams, param, requiredParam } from "../form-body.ts";
import { userQueries } from "../queries.ts";
import { grantScope, parseScope } from "../scope.ts";
import { startSession } from "../tokens/session.ts";
import type { TokenResponse } from "../tokens/token-response.ts";

/** grant_type=password (RFC 6749 §4.3): first-party login for clients allowed to use it. */
export async function passwordGrant(
  ctx: IssuerContext,
  client: Client,
  params: FormParams,
  ip: string,
): Promise<TokenResponse> {
  if (!client.grant_types.includes("password")) {
    throw new OAuthError("unauthorized_client", "this client may not use the password grant");
  }
  const username = requiredParam(params, "username");
  const password = requiredParam(params, "password");
  const scope = grantScope(parseScope(param(params, "scope")), client.scope);
  const userId = await verifyLogin(ctx, username, password, client.client_id, ip);
  return startSession(ctx, client, userId, scope, ip);
}

/**
 * Checks a username and password, for the password grant and the login page alike. Failed
 * attempts are counted per username; past the limit the account answers 429
 * (`too_many_requests`) until the window ends, whatever the password. Returns the user's id;
 * throws `invalid_grant` for a wrong username or password.
 */
export async function verifyLogin(
  ctx: IssuerContext,
  username: string,
  password: string,
  clientId: string,
  ip: string,
): Promise<string> {
  const rl = ctx.config.rateLimit;
  const lockKey = `login:${username.toLowerCase()}`;
  // Cheap refusal once the account is locked.
  await ctx.limiter.check(lockKey, rl.failedLoginsPerUser);

  const { rows } = await ctx.db.query<{ id: string; password_hash: string }>(userQueries.byUsername, [
    username,
  ]);
  const user = rows[0];
  if (!(await verifyPassword(password, user?.password_hash))) {
    await ctx.limiter.record(lockKey, rl.loginWindowSeconds);
    await recordAudit(ctx.db, {
      at: ctx.clock.now(),
      type: "login_failed",
      userId: user?.id ?? null,
      clientId,
      ip,
      detail: { reason: user ? "wrong password" : "unknown username" },
    });
    ctx.metrics.logins.inc({ outcome: "failed" });
    throw new OAuthError("invalid_grant", "invalid username or password");
  }
  // Parallel guesses all pass the check above before any failure is recorded. Checking again
  // after the (slow) hash means a correct guess only counts if the lock did not engage while it
  // was verified: of a burst of N parallel guesses, only about the first `limit` to finish can
  // succeed, as if they had come one by one. Correct logins in parallel are never throttled.
  await ctx.limiter.check(lockKey, rl.failedLoginsPerUser);
  await ctx.limiter.forgive(lockKey);
  ctx.metrics.logins.inc({ outcome: "ok" });
  return user!.id;
}
