import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { jwtVerify } from "jose";
import { matchRedirectUri } from "../authorize/redirect-uri.ts";
import { redirectWith } from "../authorize/request.ts";
import type { Client } from "../clients.ts";
import type { IssuerContext } from "../context.ts";
import { type FormParams, formParams } from "../form-body.ts";
import {
  type LoginSession,
  SESSION_COOKIE,
  csrfToken,
  csrfValid,
  currentLoginSession,
  setCookie,
} from "../login-session.ts";
import { sendPage } from "../pages/layout.ts";
import { errorPage, logoutPage, signedOutPage } from "../pages/sign-in.ts";
import { loginSessionQueries, tokenQueries } from "../queries.ts";

class LogoutRequestError extends Error {}

/**
 * The end-session endpoint (OpenID Connect RP-Initiated Logout 1.0). It ends the browser's
 * login session at the issuer. With `revoke_refresh_tokens=true` (or the box ticked on the
 * confirmation page) it also revokes the refresh-token families that this login session's
 * authorization codes started. Without an `id_token_hint` naming the current session, the
 * user confirms on a page first, so a link on another site cannot sign anyone out.
 */
export async function endSessionRoutes(app: FastifyInstance, opts: { ctx: IssuerContext }): Promise<void> {
  const { ctx } = opts;
  const run = async (req: FastifyRequest, reply: FastifyReply, params: URLSearchParams, posted: boolean) => {
    try {
      return await endSession(ctx, req, reply, params, posted);
    } catch (err) {
      if (err instanceof LogoutRequestError)
        return sendPage(reply, 400, errorPage("This sign-out link is not valid", err.message));
      throw err;
    }
  };
  app.get("/end-session", async (req, reply) => {
    const query = req.url.includes("?") ? req.url.slice(req.url.indexOf("?") + 1) : "";
    return run(req, reply, new URLSearchParams(query), false);
  });
  app.post("/end-session", async (req, reply) => {
    const form = formParams(req);
    // The confirmation form carries the original request; a client may also POST it directly.
    const params = new URLSearchParams(single(form, "request") ?? "");
    for (const [k, v] of Object.entries(form)) if (k !== "request" && typeof v === "string") params.set(k, v);
    return run(req, reply, params, true);
  });
}

function single(form: FormParams, name: string): string | undefined {
  const v = form[name];
  return typeof v === "string" ? v : undefined;
}

async function endSession(
  ctx: IssuerContext,
  req: FastifyRequest,
  reply: FastifyReply,
  params: URLSearchParams,
  posted: boolean,
): Promise<FastifyReply> {
  const get = (name: string) => {
    const all = params.getAll(name);
    if (all.length > 1) throw new LogoutRequestError(`The parameter ${name} is repeated.`);
    return all[0] || undefined;
  };
  const hintToken = get("id_token_hint");
  const hint = hintToken ? await verifyHint(ctx, hintToken) : undefined;
  const clientId = get("client_id");
  if (hint && clientId && hint.aud !== clientId)
    throw new LogoutRequestError("The ID token was not issued to this application.");
  const client: Client | null =
    (clientId ?? hint?.aud) ? await ctx.clients.get((clientId ?? hint?.aud)!) : null;
  if ((clientId ?? hint?.aud) && !client) throw new LogoutRequestError("The application is not registered.");
  const postLogout = get("post_logout_redirect_uri");
  if (postLogout && (!client || !matchRedirectUri(client.redirect_uris, postLogout)))
    throw new LogoutRequestError("The return address is not registered for this application.");

  const session = await currentLoginSession(ctx, req);
  const confirmedByForm = posted && get("confirm") === "yes" && csrfValid(req, get("csrf"));
  const confirmedByHint = hint !== undefined && (session === undefined || hint.sid === session.id);
  if (session && !confirmedByForm && !confirmedByHint) {
    const request = new URLSearchParams(params);
    for (const k of ["csrf", "confirm", "revoke_refresh_tokens"]) request.delete(k);
    return sendPage(
      reply,
      200,
      logoutPage({
        csrf: csrfToken(ctx, req, reply),
        request: request.toString(),
        username: session.username,
      }),
    );
  }

  const target: Pick<LoginSession, "id"> | undefined = session ?? (hint?.sid ? { id: hint.sid } : undefined);
  if (target) {
    const now = ctx.clock.now();
    await ctx.db.query(loginSessionQueries.end({ id: target.id, now }));
    if (get("revoke_refresh_tokens") === "true") {
      const { rows } = await ctx.db.query<{ id: string }>(loginSessionQueries.familiesOf({ id: target.id }));
      for (const f of rows) {
        await ctx.db.query(
          tokenQueries.revokeFamily({
            family_id: f.id,
            now,
            reason: "logout",
            type: "session_revoked",
            token_id: null,
            ip: req.ip,
            detail: JSON.stringify({ via: "end_session_endpoint" }),
          }),
        );
      }
    }
  }
  setCookie(ctx, reply, SESSION_COOKIE, "", 0);
  if (postLogout) {
    return reply
      .header("Cache-Control", "no-store")
      .redirect(redirectWith(postLogout, { state: get("state") }), 303);
  }
  return sendPage(reply, 200, signedOutPage());
}

/** An ID token we issued; expired ones are accepted as hints (RP-Initiated Logout §2). */
async function verifyHint(ctx: IssuerContext, token: string): Promise<{ aud: string; sid?: string }> {
  try {
    const { payload } = await jwtVerify(
      token,
      async (header) => {
        const key = header.kid ? await ctx.keys.byKid(header.kid) : undefined;
        if (!key || key.alg !== header.alg) throw new Error("unknown key");
        return key.publicKey;
      },
      { issuer: ctx.config.issuer, typ: "JWT", currentDate: new Date(0), clockTolerance: 0 },
    );
    if (typeof payload.aud !== "string") throw new Error("aud");
    return { aud: payload.aud, sid: typeof payload.sid === "string" ? payload.sid : undefined };
  } catch {
    throw new LogoutRequestError("The ID token hint is not valid.");
  }
}
