import { decodeJwt } from "jose";

/**
 * When a token expires and when to refresh it. Every function takes the times it needs;
 * none reads a clock.
 */

/**
 * The expiry of a token from what the provider said: `expires_in` counted from when the
 * request was sent (the provider started its clock no later than that); else `expires_at`
 * (ISO string, or epoch seconds or milliseconds); else the JWT's `exp` when the token is a JWT;
 * else the provider's default TTL. Never "no expiry": that would mean never refreshing.
 */
export function resolveExpiry(input: {
  sentAt: Date;
  accessToken: string;
  expiresIn?: unknown;
  expiresAt?: unknown;
  defaultTtl: number;
}): Date | undefined {
  const { sentAt } = input;
  if (input.expiresIn !== undefined && input.expiresIn !== null) {
    const n = typeof input.expiresIn === "string" ? Number(input.expiresIn) : input.expiresIn;
    if (typeof n !== "number" || !Number.isFinite(n) || n < 0) return undefined;
    return new Date(sentAt.getTime() + n * 1000);
  }
  if (input.expiresAt !== undefined && input.expiresAt !== null) return parseExpiresAt(input.expiresAt);
  const exp = jwtExpiry(input.accessToken);
  if (exp) return exp;
  return new Date(sentAt.getTime() + input.defaultTtl * 1000);
}

/** An absolute expiry: ISO 8601, or epoch seconds, or epoch milliseconds (told apart by size). */
export function parseExpiresAt(value: unknown): Date | undefined {
  if (typeof value === "number" || (typeof value === "string" && /^\d+(\.\d+)?$/.test(value))) {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) return undefined;
    // Seconds since 1970 stay below 1e11 until the year 5138; milliseconds passed 1e11 in 1973.
    return new Date(n < 1e11 ? n * 1000 : n);
  }
  if (typeof value === "string") {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : new Date(ms);
  }
  return undefined;
}

/** The `exp` of a JWT-shaped token (not verified: it only tells us when to refresh). */
export function jwtExpiry(token: string): Date | undefined {
  if (token.split(".").length !== 3) return undefined;
  try {
    const { exp } = decodeJwt(token);
    return typeof exp === "number" && Number.isFinite(exp) ? new Date(exp * 1000) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * When to refresh: `refreshAhead` before expiry — at most half the remaining lifetime, so a
 * short-lived token is not refreshed in a loop — minus up to 10% of that window at random,
 * which spreads connections that expire together.
 */
export function nextRefreshAt(input: {
  now: Date;
  expiresAt: Date;
  refreshAhead: number;
  random: () => number;
}): Date {
  const lifetime = Math.max(0, input.expiresAt.getTime() - input.now.getTime());
  const window = Math.min(input.refreshAhead * 1000, lifetime / 2);
  const jitter = input.random() * window * 0.1;
  return new Date(input.expiresAt.getTime() - window - jitter);
}

const BACKOFF_BASE_MS = 2_000;
const BACKOFF_CAP_MS = 5 * 60_000;

/** Capped exponential backoff with jitter (between half and all of the step) after `failures` failures. */
export function backoffMs(failures: number, random: () => number): number {
  const step = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.max(0, Math.min(failures - 1, 20)));
  return Math.round(step / 2 + (random() * step) / 2);
}

/** Retry-After as seconds or an HTTP date, in ms from `now`; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now: Date): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}
