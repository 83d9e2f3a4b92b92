import { type Server, createServer } from "node:http";
import type { ClientCredentials } from "../client-auth.ts";
import { discover } from "../discovery.ts";
import { InvalidResponseError } from "../errors.ts";
import { authorizationCodeGrant } from "../grants/authorization-code.ts";
import { validateIdToken } from "../id-token.ts";
import { createPkce, randomToken } from "../pkce.ts";
import type { FetchLike, TokenResult } from "../token-response.ts";

export interface LoopbackLoginOptions {
  issuer: string;
  client: ClientCredentials;
  scope?: string;
  /** Opens the authorization URL in the user's browser (the system browser, never a web view). */
  openBrowser: (url: string) => void | Promise<void>;
  /** Path of the redirect URI, registered as `http://127.0.0.1{path}` (any port matches). */
  path?: string;
  /** Give up after this long without the browser coming back (default 5 minutes). */
  timeoutMs?: number;
  fetch?: FetchLike;
}

/** The browser came back with an error (`access_denied`, `login_required`, …). */
export class AuthorizationError extends Error {
  readonly error: string;
  readonly description: string | undefined;

  constructor(error: string, description?: string) {
    super(description ? `${error}: ${description}` : error);
    this.error = error;
    this.description = description;
    this.name = "AuthorizationError";
  }
}

const PAGE = (text: string) =>
  `<!doctype html><html lang="en"><meta charset="utf-8"><title>${text}</title><body style="font:16px system-ui;margin:3rem"><h1>${text}</h1><p>You can close this window and return to the terminal.</p></body></html>`;

/**
 * Signs in from a native app or CLI with the RFC 8252 loopback flow: listens on 127.0.0.1 on
 * a free port, opens the browser at the authorization endpoint (code + PKCE S256, `state`,
 * `nonce`), receives the code, checks `state` and `iss` (RFC 9207), closes the listener and
 * exchanges the code. An ID token in the response is validated (signature, `iss`, `aud`,
 * `exp`, `nonce`) before anything is returned. The tokens can seed a session (`setTokens`).
 */
export async function loginWithLoopback(options: LoopbackLoginOptions): Promise<TokenResult> {
  const metadata = await discover(options.issuer, { fetch: options.fetch });
  const endpoint = metadata["authorization_endpoint"];
  if (typeof endpoint !== "string")
    throw new InvalidResponseError("the issuer names no authorization_endpoint");
  const path = options.path ?? "/callback";
  const pkce = await createPkce();
  const state = randomToken();
  const nonce = randomToken();
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  try {
    const { port } = server.address() as { port: number };
    const redirectUri = `http://127.0.0.1:${port}${path}`;
    const url = new URL(endpoint);
    for (const [k, v] of Object.entries({
      response_type: "code",
      client_id: options.client.clientId,
      redirect_uri: redirectUri,
      scope: options.scope,
      state,
      nonce,
      code_challenge: pkce.challenge,
      code_challenge_method: pkce.method,
    }))
      if (v !== undefined) url.searchParams.set(k, v);
    const callback = waitForCallback(server, path, options.timeoutMs ?? 300_000);
    await options.openBrowser(url.toString());
    const params = await callback;
    if (params.get("state") !== state) throw new AuthorizationError("invalid_state", "state does not match");
    const iss = params.get("iss");
    if (iss !== null && iss !== metadata.issuer)
      throw new AuthorizationError("invalid_issuer", "iss does not match");
    if (metadata["authorization_response_iss_parameter_supported"] === true && iss === null)
      throw new AuthorizationError("invalid_issuer", "the response lacks iss");
    const error = params.get("error");
    if (error) throw new AuthorizationError(error, params.get("error_description") ?? undefined);
    const code = params.get("code");
    if (!code) throw new AuthorizationError("invalid_response", "the response has no code");
    const tokens = await authorizationCodeGrant(
      metadata.token_endpoint,
      options.client,
      { code, redirectUri, codeVerifier: pkce.verifier },
      { fetch: options.fetch },
    );
    if (tokens.idToken) {
      if (typeof metadata.jwks_uri !== "string")
        throw new InvalidResponseError("the issuer names no jwks_uri");
      await validateIdToken(tokens.idToken, {
        issuer: metadata.issuer,
        clientId: options.client.clientId,
        nonce,
        jwksUri: metadata.jwks_uri,
        fetch: options.fetch,
      });
    }
    return tokens;
  } finally {
    server.closeAllConnections?.();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Resolves with the query of the first request to `path`; other paths get 404. */
function waitForCallback(server: Server, path: string, timeoutMs: number): Promise<URLSearchParams> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new AuthorizationError("timeout", "the browser did not come back")),
      timeoutMs,
    );
    timer.unref();
    server.on("request", (req, res) => {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      if (url.pathname !== path) {
        res.writeHead(404).end();
        return;
      }
      const ok = url.searchParams.has("code");
      res
        .writeHead(200, { "content-type": "text/html; charset=utf-8", connection: "close" })
        .end(PAGE(ok ? "Signed in" : "Sign-in failed"));
      clearTimeout(timer);
      resolve(url.searchParams);
    });
  });
}
