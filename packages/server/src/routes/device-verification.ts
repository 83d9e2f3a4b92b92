import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { IssuerContext } from "../context.ts";
import { sha256 } from "../crypto/opaque-token.ts";
import { normalizeUserCode } from "../device/user-code.ts";
import { OAuthError } from "../errors.ts";
import { type FormParams, formParams } from "../form-body.ts";
import { verifyLogin } from "../grants/password.ts";
import {
  type LoginSession,
  csrfToken,
  csrfValid,
  currentLoginSession,
  startLoginSession,
} from "../login-session.ts";
import { deviceCodePage, deviceConsentPage, deviceDonePage } from "../pages/device.ts";
import { sendPage } from "../pages/layout.ts";
import { deviceQueries } from "../queries.ts";

// User codes are short; guesses are counted per IP (on top of their 10-minute life).
const CODE_ATTEMPTS_PER_MINUTE = 30;

/**
 * The verification page of the device flow (RFC 8628 §3.3) at /device: the user enters the
 * code their device shows (or follows `verification_uri_complete`), signs in if needed, and
 * allows or denies the device — always explicitly, even for first-party clients.
 */
export async function deviceVerificationRoutes(app: FastifyInstance, opts: { ctx: IssuerContext }) {
  const { ctx } = opts;

  const codePage = async (
    req: FastifyRequest,
    reply: FastifyReply,
    status: number,
    userCode: string | undefined,
    session: LoginSession | undefined,
    error?: string,
  ) =>
    sendPage(
      reply,
      status,
      deviceCodePage({ csrf: csrfToken(ctx, req, reply), userCode, signedInAs: session?.username, error }),
    );

  app.get("/device", async (req, reply) => {
    const q = req.query as { user_code?: unknown };
    const userCode = typeof q.user_code === "string" && q.user_code.length <= 32 ? q.user_code : undefined;
    return codePage(req, reply, 200, userCode, await currentLoginSession(ctx, req));
  });

  app.post("/device", async (req, reply) => {
    const params = formParams(req);
    const typed = field(params, "user_code");
    let session = await currentLoginSession(ctx, req);
    if (!csrfValid(req, field(params, "csrf")))
      return codePage(req, reply, 403, typed, session, "This form has expired. Please try again.");
    try {
      await ctx.limiter.consume(`device:${req.ip}`, CODE_ATTEMPTS_PER_MINUTE, 60);
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      reply.headers(err.headers);
      return codePage(req, reply, 429, typed, session, "Too many attempts. Wait a minute and try again.");
    }
    const pending = await findPending(ctx, typed);
    if (!pending) return codePage(req, reply, 400, typed, session, "That code is not valid or has expired.");
    if (!session) {
      const username = field(params, "username");
      const password = field(params, "password");
      if (!username || !password)
        return codePage(req, reply, 400, typed, session, "Enter your username and password.");
      try {
        const login = await verifyLogin(ctx, username, password, pending.client_id, req.ip);
        session = await startLoginSession(ctx, reply, login, username);
      } catch (err) {
        if (!(err instanceof OAuthError)) throw err;
        if (err.error === "too_many_requests") reply.headers(err.headers);
        return codePage(
          req,
          reply,
          err.error === "too_many_requests" ? 429 : 401,
          typed,
          session,
          err.error === "too_many_requests"
            ? "Too many failed sign-in attempts for this account. Try again later."
            : "Incorrect username or password.",
        );
      }
    }
    const client = await ctx.clients.get(pending.client_id);
    return sendPage(
      reply,
      200,
      deviceConsentPage({
        csrf: csrfToken(ctx, req, reply),
        userCode: typed.trim().toUpperCase(),
        appName: client?.client_name || pending.client_id,
        username: session.username,
        scopes: pending.scope.split(" ").filter(Boolean),
      }),
    );
  });

  app.post("/device/confirm", async (req, reply) => {
    const params = formParams(req);
    const typed = field(params, "user_code");
    const session = await currentLoginSession(ctx, req);
    if (!session || !csrfValid(req, field(params, "csrf")))
      return codePage(req, reply, 403, typed, session, "This form has expired. Please try again.");
    const code = normalizeUserCode(typed);
    const allow = field(params, "decision") === "allow";
    const { rows } = code
      ? await ctx.db.query(
          deviceQueries.decide({
            user_code_hash: sha256(code),
            now: ctx.clock.now(),
            status: allow ? "approved" : "denied",
            user_id: session.userId,
            login_session_id: session.id,
            auth_time: session.authTime,
            credentials_version: session.credentialsVersion,
          }),
        )
      : { rows: [] };
    if (!rows[0]) return codePage(req, reply, 400, typed, session, "That code is not valid or has expired.");
    return sendPage(reply, 200, deviceDonePage(allow));
  });
}

function field(params: FormParams, name: string): string {
  const v = params[name];
  return typeof v === "string" ? v : "";
}

async function findPending(ctx: IssuerContext, typed: string) {
  const code = normalizeUserCode(typed);
  if (!code) return undefined;
  const { rows } = await ctx.db.query<{ client_id: string; scope: string }>(
    deviceQueries.pendingByUserCode({ user_code_hash: sha256(code), now: ctx.clock.now() }),
  );
  return rows[0];
}
