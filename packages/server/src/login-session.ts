import { randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { IssuerContext } from "./context.ts";
import type { VerifiedLogin } from "./grants/password.ts";
import { sha256 } from "./crypto/opaque-token.ts";
import { loginSessionQueries } from "./queries.ts";

/** The first-party login at the issuer (not an app's session): what the login page creates. */
export interface LoginSession {
  id: string;
  userId: string;
  username: string;
  authTime: Date;
  /** The user's credentials version this login verified; what it authorises is stamped with it. */
  credentialsVersion: number;
}

export const SESSION_COOKIE = "evergreen_session";
export const CSRF_COOKIE = "evergreen_csrf";
/** How long a login at the issuer lasts before the login page is shown again. */
export const LOGIN_SESSION_TTL_SECONDS = 24 * 3600;

/** Parses the Cookie header (RFC 6265 §5.4); the first of repeated names wins. */
export function readCookies(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name && !(name in out)) out[name] = part.slice(eq + 1).trim();
  }
  return out;
}

/**
 * Sets a cookie `HttpOnly; SameSite=Lax; Path=/`, and `Secure` when the issuer is served over
 * https. Lax keeps the cookie on the top-level GET that brings the user back from an app
 * (so a signed-in user is recognised) and off cross-site POSTs.
 */
export function setCookie(
  ctx: IssuerContext,
  reply: FastifyReply,
  name: string,
  value: string,
  maxAgeSeconds: number,
): void {
  const attrs = [`${name}=${value}`, "Path=/", "HttpOnly", "SameSite=Lax", `Max-Age=${maxAgeSeconds}`];
  if (ctx.config.issuer.startsWith("https://")) attrs.push("Secure");
  const prev = reply.getHeader("set-cookie");
  const list = prev === undefined ? [] : Array.isArray(prev) ? prev.map(String) : [String(prev)];
  reply.header("set-cookie", [...list, attrs.join("; ")]);
}

/** The live login session named by the request's cookie, if any. Only the cookie's hash is stored. */
export async function currentLoginSession(
  ctx: IssuerContext,
  req: FastifyRequest,
): Promise<LoginSession | undefined> {
  const value = readCookies(req)[SESSION_COOKIE];
  if (!value || value.length > 100) return undefined;
  const { rows } = await ctx.db.query<{
    id: string;
    user_id: string;
    auth_time: Date;
    username: string;
    credentials_version: number;
  }>(loginSessionQueries.byHash({ hash: sha256(value), now: ctx.clock.now() }));
  const row = rows[0];
  return row
    ? {
        id: row.id,
        userId: row.user_id,
        username: row.username,
        authTime: row.auth_time,
        credentialsVersion: row.credentials_version,
      }
    : undefined;
}

/** Starts a login session for a verified login and sets its cookie. */
export async function startLoginSession(
  ctx: IssuerContext,
  reply: FastifyReply,
  login: VerifiedLogin,
  username: string,
): Promise<LoginSession> {
  const { userId, credentialsVersion } = login;
  const value = randomBytes(32).toString("base64url");
  const id = randomUUID();
  const now = ctx.clock.now();
  await ctx.db.query(
    loginSessionQueries.insert({
      id,
      hash: sha256(value),
      user_id: userId,
      auth_time: now,
      expires_at: new Date(now.getTime() + LOGIN_SESSION_TTL_SECONDS * 1000),
      credentials_version: credentialsVersion,
    }),
  );
  setCookie(ctx, reply, SESSION_COOKIE, value, LOGIN_SESSION_TTL_SECONDS);
  return { id, userId, username, authTime: now, credentialsVersion };
}

/** Ends a login session (logout) and clears its cookie. */
export async function endLoginSession(ctx: IssuerContext, reply: FastifyReply, id: string): Promise<void> {
  await ctx.db.query(loginSessionQueries.end({ id, now: ctx.clock.now() }));
  setCookie(ctx, reply, SESSION_COOKIE, "", 0);
}

/**
 * The CSRF token for the forms of this browser: a random value kept in its own cookie and
 * repeated in each form (double submit). A cross-site page can neither read the cookie nor
 * make the browser send it with a POST (SameSite=Lax), so it cannot forge a matching pair.
 */
export function csrfToken(ctx: IssuerContext, req: FastifyRequest, reply: FastifyReply): string {
  const existing = readCookies(req)[CSRF_COOKIE];
  if (existing && /^[A-Za-z0-9_-]{43}$/.test(existing)) return existing;
  const value = randomBytes(32).toString("base64url");
  setCookie(ctx, reply, CSRF_COOKIE, value, LOGIN_SESSION_TTL_SECONDS);
  return value;
}

/** Whether a submitted form carries the CSRF token of this browser's cookie (constant time). */
export function csrfValid(req: FastifyRequest, submitted: string | undefined): boolean {
  const cookie = readCookies(req)[CSRF_COOKIE];
  if (!cookie || !submitted) return false;
  const a = sha256(cookie);
  const b = sha256(submitted);
  return timingSafeEqual(a, b);
}
