import type { Client } from "../clients.ts";
import type { IssuerContext } from "../context.ts";
import { recordAudit } from "../audit.ts";
import { verifyPassword } from "../crypto/password.ts";
import { OAuthError } from "../errors.ts";
import { type FormParams, param, requiredParam } from "../form-body.ts";
import { userQueries } from "../queries.ts";
import { addressKey } from "../rate-limit/address-key.ts";
import { grantScope, parseScope } from "../scope.ts";
import type { DpopBinding } from "../dpop/token-endpoint.ts";
import { startSession } from "../tokens/session.ts";
import type { TokenResponse } from "../tokens/token-response.ts";

/** grant_type=password (RFC 6749 §4.3): first-party login for clients allowed to use it. */
export async function passwordGrant(
  ctx: IssuerContext,
  client: Client,
  params: FormParams,
  ip: string,
  dpop?: DpopBinding,
): Promise<TokenResponse> {
  if (!client.grant_types.includes("password")) {
    throw new OAuthError("unauthorized_client", "this client may not use the password grant");
  }
  const username = requiredParam(params, "username");
  const password = requiredParam(params, "password");
  const scope = grantScope(parseScope(param(params, "scope")), client.scope);
  const login = await verifyLogin(ctx, username, password, client.client_id, ip);
  return startSession(ctx, client, login.userId, scope, ip, login.credentialsVersion, { dpop });
}

/** A verified login: the user, and the credentials version the password matched. */
export interface VerifiedLogin {
  userId: string;
  /** Stamped on what the login creates, so a password change ends it (migration 0002). */
  credentialsVersion: number;
}

/**
 * Checks a username and password, for the password grant and the login page alike; throws
 * `invalid_grant` for a wrong username or password.
 *
 * Throttling, keyed by the exact (case-sensitive) username:
 * - every password grant counts against its address's budget, sized to what scrypt can do;
 * - failures per (username, address): past the limit that pair answers 429 until the window
 *   ends, whatever the password — one address cannot guess on, nor lock anyone else out;
 * - failures per username from all addresses: past the wider limit the account is slowed (one
 *   attempt per address per rate-limit window), never locked, so a distributed guesser is
 *   slowed while the owner's correct password from their own address still works.
 * Hashing runs behind a semaphore (503 temporarily_unavailable when saturated); an unknown
 * username costs the same hash as a known one.
 */
export async function verifyLogin(
  ctx: IssuerContext,
  username: string,
  password: string,
  clientId: string,
  ip: string,
): Promise<VerifiedLogin> {
  const rl = ctx.config.rateLimit;
  const address = addressKey(ip);
  await ctx.limiter.consume(`password:${address}`, rl.passwordPerIp, rl.windowSeconds);
  // An address never contains a space, so the first space ends it: no two pairs share a key.
  const pairKey = `login-pair:${address} ${username}`;
  const userKey = `login-user:${username}`;
  // Cheap refusal once this address is locked out of this account.
  await ctx.limiter.check(pairKey, rl.failedLoginsPerUserIp);
  if (await ctx.limiter.reached(userKey, rl.failedLoginsPerUser)) {
    await ctx.limiter.consume(`login-slow:${address} ${username}`, 1, rl.windowSeconds);
  }

  const { rows } = await ctx.db.query<{ id: string; password_hash: string; credentials_version: number }>(
    userQueries.forLogin({ username }),
  );
  const user = rows[0];
  const ok = await ctx.hashing.run(() => verifyPassword(password, user?.password_hash));
  if (!ok) {
    await ctx.limiter.record(pairKey, rl.loginWindowSeconds);
    await ctx.limiter.record(userKey, rl.loginWindowSeconds);
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
  await ctx.limiter.check(pairKey, rl.failedLoginsPerUserIp);
  // Only this address's failures are forgiven: the owner logging in does not hand a distributed
  // guesser a fresh per-username budget.
  await ctx.limiter.forgive(pairKey);
  ctx.metrics.logins.inc({ outcome: "ok" });
  return { userId: user!.id, credentialsVersion: user!.credentials_version };
}
