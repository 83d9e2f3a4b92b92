import type { FastifyRequest } from "fastify";
import type { IssuerContext } from "./context.ts";
import { digestsEqual, sha256 } from "./crypto/opaque-token.ts";
import { addressKey } from "./rate-limit/address-key.ts";

/**
 * Builds a check of `Authorization: Bearer <secret>` against a configured secret (the admin
 * token, the metrics token): compared in constant time over digests, and failures counted per
 * client address. Past `authFailuresPerIp` failures in the window the address gets 429 with
 * Retry-After for every attempt, right or wrong, until the window ends, so guessing cannot go
 * on in parallel. `onFailure` builds the caller's own 401.
 */
export function bearerSecretCheck(
  ctx: IssuerContext,
  secret: string,
  onFailure: () => Error,
): (req: FastifyRequest) => Promise<void> {
  const expected = sha256(secret);
  const rl = ctx.config.rateLimit;
  return async (req) => {
    const key = `auth-failures:${addressKey(req.ip)}`;
    await ctx.limiter.check(key, rl.authFailuresPerIp, "too many failed authentications; retry later");
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
    if (!m || !digestsEqual(sha256(m[1]!), expected)) {
      await ctx.limiter.record(key, rl.loginWindowSeconds);
      throw onFailure();
    }
  };
}
