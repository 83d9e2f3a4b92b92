import { ADMIN_SCOPE, type IssuerContext, ensureClient } from "@evergreen/server";

/** The dashboard's client id at the issuer. */
export const DASHBOARD_CLIENT_ID = "evergreen-dashboard";

/** Where the issuer sends the browser back after sign-in. */
export function dashboardRedirectUri(issuer: string): string {
  return `${issuer.replace(/\/+$/, "")}/dashboard/callback`;
}

/**
 * Registers the dashboard as a public, first-party client of its own issuer (authorization
 * code + PKCE, no consent screen, redirect to /dashboard/callback), or brings it in line with
 * the current issuer address. Its tokens are short-lived: five minutes of access, an hour of
 * idle refresh, eight hours at most.
 */
export async function registerDashboardClient(ctx: IssuerContext): Promise<void> {
  await ensureClient(ctx.db, ctx.clock, {
    client_id: DASHBOARD_CLIENT_ID,
    client_name: "Evergreen dashboard",
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code", "refresh_token"],
    redirect_uris: [dashboardRedirectUri(ctx.config.issuer)],
    scope: `openid profile ${ADMIN_SCOPE}`,
    skip_consent: true,
    access_token_ttl: 300,
    refresh_token_idle_ttl: 3600,
    refresh_token_absolute_ttl: 8 * 3600,
    refresh_token_policy: "always",
  });
  ctx.clients.invalidate(DASHBOARD_CLIENT_ID);
}
