import { type Clock, sleep } from "../clock.ts";
import { DiscoveryError, NetworkError, RefreshFailedError, TokenEndpointError } from "../errors.ts";
import { browserLifecycle } from "./lifecycle.ts";

export interface RetryPolicy {
  /** Attempts in all, the first included. Default 5. */
  attempts?: number;
  /** First backoff delay in ms (doubled each retry, with jitter). Default 300. */
  baseDelay?: number;
  /** Longest backoff delay in ms. Default 10 000. */
  maxDelay?: number;
  /** A 429 asking for a longer wait than this (ms) fails at once instead. Default 60 000. */
  maxRetryAfter?: number;
}

/** What a failed refresh means for the session. */
export type FailureKind = "expired" | "transient" | "fatal";

/**
 * `invalid_grant` (the refresh token is dead) ends the session. No response at all, 5xx, 408
 * and 429 are transient: retried, tokens kept. Anything else (invalid_client, a malformed
 * response, a bug) is fatal for this call but keeps the tokens: it is not the user's fault.
 */
export function classifyFailure(error: unknown): FailureKind {
  if (error instanceof TokenEndpointError) {
    if (error.error === "invalid_grant") return "expired";
    // A DPoP nonce that changed again between our two tries: the next try uses the newest one.
    if (error.error === "use_dpop_nonce") return "transient";
    if (error.status >= 500 || error.status === 408 || error.status === 429) return "transient";
    return "fatal";
  }
  if (error instanceof NetworkError) return "transient";
  if (error instanceof DiscoveryError) return error.code === "issuer_mismatch" ? "fatal" : "transient";
  return "fatal";
}

/**
 * Runs `operation` until it succeeds, fails for a non-transient reason, or runs out of
 * attempts (then RefreshFailedError). Waits with exponential backoff and full jitter, exactly
 * `Retry-After` for a 429, and, while the runtime reports being offline, until it is online.
 */
export async function withRetry<T>(
  operation: () => Promise<T>,
  clock: Clock,
  policy: RetryPolicy = {},
  whenOnline: () => Promise<void> = browserLifecycle.whenOnline,
  random: () => number = Math.random,
): Promise<T> {
  const attempts = policy.attempts ?? 5;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (classifyFailure(error) !== "transient") throw error;
      const retryAfter = error instanceof TokenEndpointError ? error.retryAfter : undefined;
      if (attempt >= attempts || (retryAfter ?? 0) > (policy.maxRetryAfter ?? 60_000)) {
        throw new RefreshFailedError(
          `refresh failed after ${attempt} attempt(s): ${(error as Error).message}`,
          error,
        );
      }
      const ceiling = Math.min(policy.maxDelay ?? 10_000, (policy.baseDelay ?? 300) * 2 ** (attempt - 1));
      await whenOnline();
      await sleep(clock, retryAfter ?? ceiling / 2 + (random() * ceiling) / 2);
    }
  }
}
