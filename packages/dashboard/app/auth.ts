import {
  type Session,
  authorizationCodeGrant,
  createPkce,
  createSession,
  discover,
  randomToken,
  revokeToken,
  webStorage,
} from "@evergreen/client";
import type { Credentials } from "./api.ts";

/** What the server tells the app (/dashboard/config.json). */
export interface DashboardConfig {
  issuer: string;
  client_id: string;
  issuer_sign_in: boolean;
}

const ADMIN_SCOPE = "evergreen:admin";
const TOKEN_KEY = "evergreen.dashboard.admin-token";
const SESSION_KEY = "evergreen.dashboard.session";
const PENDING_KEY = "evergreen.dashboard.pending-sign-in";

/** The admin token lives in this tab's sessionStorage only, sent as a Bearer token. */
function tokenCredentials(token: string): Credentials {
  return {
    kind: "token",
    fetch: (input, init) =>
      fetch(input, {
        ...init,
        headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` },
      }),
    async signOut() {
      sessionStorage.removeItem(TOKEN_KEY);
    },
  };
}

function issuerSession(config: DashboardConfig): Session {
  return createSession({
    issuer: config.issuer,
    clientId: config.client_id,
    storage: webStorage(sessionStorage),
    storageKey: SESSION_KEY,
  });
}

function sessionCredentials(session: Session): Credentials {
  return {
    kind: "issuer",
    fetch: (input, init) => session.fetch(new URL(input, location.origin).toString(), init),
    async signOut() {
      await session.logout().catch(() => {});
      session.dispose();
    },
  };
}

/** Credentials kept from earlier in this tab, if any. */
export async function restoreCredentials(config: DashboardConfig): Promise<Credentials | null> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) return tokenCredentials(token);
  if (config.issuer_sign_in && sessionStorage.getItem(SESSION_KEY)) {
    const session = issuerSession(config);
    if (await session.getTokens()) return sessionCredentials(session);
    session.dispose();
  }
  return null;
}

/** Checks an admin token against the API and keeps it for this tab. */
export async function signInWithToken(token: string): Promise<Credentials> {
  const res = await fetch("/admin/keys", {
    headers: { authorization: `Bearer ${token}` },
    credentials: "omit",
  });
  if (res.status === 401) throw new Error("That is not the admin token.");
  if (!res.ok) throw new Error(`The admin API answered ${res.status}.`);
  sessionStorage.setItem(TOKEN_KEY, token);
  return tokenCredentials(token);
}

const redirectUri = (config: DashboardConfig) => `${config.issuer.replace(/\/+$/, "")}/dashboard/callback`;

/** Sends the browser to the issuer's sign-in (authorization code + PKCE S256, state). */
export async function signInWithIssuer(config: DashboardConfig): Promise<void> {
  const metadata = await discover(config.issuer);
  const pkce = await createPkce();
  const state = randomToken();
  sessionStorage.setItem(PENDING_KEY, JSON.stringify({ verifier: pkce.verifier, state }));
  const url = new URL(String(metadata.authorization_endpoint ?? `${config.issuer}/authorize`));
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: redirectUri(config),
    scope: `openid ${ADMIN_SCOPE}`,
    state,
    code_challenge: pkce.challenge,
    code_challenge_method: pkce.method,
  }).toString();
  location.assign(url.toString());
}

/**
 * Finishes the sign-in at /dashboard/callback: checks `state` and `iss` (RFC 9207), redeems the
 * code with the PKCE verifier, and keeps the tokens only if the issuer granted the admin scope.
 */
export async function completeIssuerSignIn(config: DashboardConfig): Promise<Credentials> {
  const params = new URLSearchParams(location.search);
  const pending = JSON.parse(sessionStorage.getItem(PENDING_KEY) ?? "null") as {
    verifier: string;
    state: string;
  } | null;
  sessionStorage.removeItem(PENDING_KEY);
  // The code must not stay in the address bar or the history.
  history.replaceState(null, "", "/dashboard");
  if (params.get("error")) throw new Error(`The issuer refused the sign-in: ${params.get("error")}`);
  if (!pending || params.get("state") !== pending.state)
    throw new Error("This sign-in was not started here; start again.");
  if (params.get("iss") !== null && params.get("iss") !== config.issuer)
    throw new Error("The answer came from another issuer.");
  const code = params.get("code");
  if (!code) throw new Error("The issuer sent no code.");
  const metadata = await discover(config.issuer);
  const result = await authorizationCodeGrant(
    metadata.token_endpoint,
    { clientId: config.client_id },
    { code, redirectUri: redirectUri(config), codeVerifier: pending.verifier },
  );
  if (!(result.scope ?? "").split(" ").includes(ADMIN_SCOPE)) {
    // The session the issuer opened is of no use here: end it rather than leave it behind.
    if (result.refreshToken && metadata.revocation_endpoint) {
      await revokeToken(metadata.revocation_endpoint, { clientId: config.client_id }, result.refreshToken, {
        tokenTypeHint: "refresh_token",
      }).catch(() => {});
    }
    throw new Error("You signed in, but your account is not an administrator.");
  }
  const session = issuerSession(config);
  await session.setTokens(result);
  return sessionCredentials(session);
}
