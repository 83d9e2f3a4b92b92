import { randomBytes } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  type AuthorizationRequest,
  AuthorizePageError,
  AuthorizeRedirectError,
  parseAuthorizationRequest,
  redirectWith,
} from "../authorize/request.ts";
import { expandPushedRequest } from "../authorize/pushed-request.ts";
import type { IssuerContext } from "../context.ts";
import { sha256 } from "../crypto/opaque-token.ts";
import { OAuthError } from "../errors.ts";
import { type FormParams, formParams } from "../form-body.ts";
import { type VerifiedLogin, verifyLogin } from "../grants/password.ts";
import {
  type LoginSession,
  csrfToken,
  csrfValid,
  currentLoginSession,
  startLoginSession,
} from "../login-session.ts";
import { sendPage } from "../pages/layout.ts";
import { consentPage, errorPage, loginPage } from "../pages/sign-in.ts";
import { codeQueries, consentQueries } from "../queries.ts";

/** Authorization codes live 60 seconds (RFC 6749 §4.1.2 recommends at most 10 minutes). */
export const CODE_TTL_SECONDS = 60;
// A consent form submitted this soon after signing in satisfies prompt=login and max_age: the
// user signed in on the page just before it.
const FRESH_LOGIN_SECONDS = 600;

interface Fresh {
  loggedIn?: boolean;
  consented?: boolean;
}

/**
 * The browser half of the authorization code flow (RFC 6749 §4.1, OpenID Connect Core §3.1):
 * GET /authorize validates the request, then shows the login page, the consent page, or
 * returns a code to the app. The two forms post back here with the original request, which is
 * validated again from scratch.
 */
export async function authorizeRoutes(app: FastifyInstance, opts: { ctx: IssuerContext }): Promise<void> {
  const { ctx } = opts;

  app.get("/authorize", async (req, reply) => {
    const query = req.url.includes("?") ? req.url.slice(req.url.indexOf("?") + 1) : "";
    return handle(ctx, reply, async () => {
      const request = await expandPushedRequest(ctx, query);
      const ar = await parseAuthorizationRequest(request.query, ctx.clients);
      // RFC 9126 §6: such a client's requests come only through /par. The forms that follow
      // carry the pushed request itself, posted from this page.
      if (ar.client.require_pushed_authorization_requests && !request.pushed) {
        throw new AuthorizeRedirectError(
          "invalid_request",
          "this client must push its authorization requests (request_uri)",
          ar.redirectUri,
          ar.state,
        );
      }
      return proceed(ctx, req, reply, ar, await currentLoginSession(ctx, req), {});
    });
  });

  app.post("/authorize/login", async (req, reply) =>
    handle(ctx, reply, async () => {
      const params = formParams(req);
      const ar = await parseAuthorizationRequest(field(params, "request"), ctx.clients);
      const username = field(params, "username");
      const password = field(params, "password");
      const again = (status: number, error: string) =>
        sendPage(
          reply,
          status,
          loginPage({
            appName: appName(ar),
            csrf: csrfToken(ctx, req, reply),
            request: ar.query,
            username,
            error,
          }),
        );
      if (!csrfValid(req, field(params, "csrf")))
        return again(403, "This form has expired. Please sign in again.");
      if (!username || !password) return again(400, "Enter your username and password.");
      let login: VerifiedLogin;
      try {
        login = await verifyLogin(ctx, username, password, ar.client.client_id, req.ip);
      } catch (err) {
        if (!(err instanceof OAuthError)) throw err;
        if (err.error === "too_many_requests") {
          reply.headers(err.headers);
          return again(429, "Too many failed sign-in attempts for this account. Try again later.");
        }
        return again(401, "Incorrect username or password.");
      }
      const session = await startLoginSession(ctx, reply, login, username);
      return proceed(ctx, req, reply, ar, session, { loggedIn: true });
    }),
  );

  app.post("/authorize/consent", async (req, reply) =>
    handle(ctx, reply, async () => {
      const params = formParams(req);
      const ar = await parseAuthorizationRequest(field(params, "request"), ctx.clients);
      const session = await currentLoginSession(ctx, req);
      if (!session || !csrfValid(req, field(params, "csrf"))) {
        return proceed(ctx, req, reply, ar, session, {});
      }
      if (field(params, "decision") !== "allow") {
        throw new AuthorizeRedirectError(
          "access_denied",
          "the user denied the request",
          ar.redirectUri,
          ar.state,
        );
      }
      await ctx.db.query(
        consentQueries.grant({
          user_id: session.userId,
          client_id: ar.client.client_id,
          scope: ar.scope,
          now: ctx.clock.now(),
        }),
      );
      const age = (ctx.clock.now().getTime() - session.authTime.getTime()) / 1000;
      const fresh = age <= Math.min(FRESH_LOGIN_SECONDS, ar.maxAge ?? FRESH_LOGIN_SECONDS);
      return proceed(ctx, req, reply, ar, session, { consented: true, loggedIn: fresh });
    }),
  );
}

function field(params: FormParams, name: string): string {
  const v = params[name];
  return typeof v === "string" ? v : "";
}

function appName(ar: AuthorizationRequest): string {
  return ar.client.client_name || ar.client.client_id;
}

/** Maps the two authorization error kinds to an error page or an error redirect. */
async function handle(
  ctx: IssuerContext,
  reply: FastifyReply,
  fn: () => Promise<FastifyReply>,
): Promise<FastifyReply> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AuthorizePageError) {
      return sendPage(reply, 400, errorPage("This sign-in link is not valid", err.description));
    }
    if (err instanceof AuthorizeRedirectError) {
      return reply
        .code(303)
        .header("Cache-Control", "no-store")
        .redirect(
          redirectWith(err.redirectUri, {
            error: err.error,
            error_description: err.description,
            state: err.state,
            iss: ctx.config.issuer,
          }),
          303,
        );
    }
    throw err;
  }
}

/** Login, then consent, then a code: whichever step this browser has not done yet. */
async function proceed(
  ctx: IssuerContext,
  req: FastifyRequest,
  reply: FastifyReply,
  ar: AuthorizationRequest,
  session: LoginSession | undefined,
  fresh: Fresh,
): Promise<FastifyReply> {
  const now = ctx.clock.now();
  const fail = (error: string, description: string) =>
    new AuthorizeRedirectError(error, description, ar.redirectUri, ar.state);
  const tooOld =
    session !== undefined &&
    ar.maxAge !== undefined &&
    now.getTime() - session.authTime.getTime() > ar.maxAge * 1000;
  if (!session || (!fresh.loggedIn && (ar.prompt.has("login") || tooOld))) {
    if (ar.prompt.has("none")) throw fail("login_required", "the user must sign in");
    return sendPage(
      reply,
      200,
      loginPage({
        appName: appName(ar),
        csrf: csrfToken(ctx, req, reply),
        request: ar.query,
        username: ar.loginHint,
      }),
    );
  }

  if (!ar.client.skip_consent) {
    const { rows } = await ctx.db.query<{ scope: string }>(
      consentQueries.get({ user_id: session.userId, client_id: ar.client.client_id }),
    );
    const granted = new Set((rows[0]?.scope ?? "").split(" "));
    const requested = ar.scope.split(" ").filter(Boolean);
    const missing = rows[0] === undefined || requested.some((s) => !granted.has(s));
    if (missing || (ar.prompt.has("consent") && !fresh.consented)) {
      if (ar.prompt.has("none")) throw fail("consent_required", "the user must approve this app");
      return sendPage(
        reply,
        200,
        consentPage({
          appName: appName(ar),
          username: session.username,
          scopes: requested,
          csrf: csrfToken(ctx, req, reply),
          request: ar.query,
        }),
      );
    }
  }

  const code = randomBytes(32).toString("base64url");
  await ctx.db.query(
    codeQueries.insert({
      hash: sha256(code),
      client_id: ar.client.client_id,
      user_id: session.userId,
      login_session_id: session.id,
      redirect_uri: ar.redirectUri,
      scope: ar.scope,
      code_challenge: ar.codeChallenge,
      nonce: ar.nonce ?? null,
      auth_time: session.authTime,
      now,
      expires_at: new Date(now.getTime() + CODE_TTL_SECONDS * 1000),
      credentials_version: session.credentialsVersion,
      dpop_jkt: ar.dpopJkt ?? null,
    }),
  );
  return reply
    .header("Cache-Control", "no-store")
    .redirect(redirectWith(ar.redirectUri, { code, state: ar.state, iss: ctx.config.issuer }), 303);
}
