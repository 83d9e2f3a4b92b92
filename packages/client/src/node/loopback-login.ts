import { type Server, createServer } from "node:http";
import { authorizationCode } from "../authorization/response.ts";
import { exchangeAuthorizationCode } from "../authorization/code-exchange.ts";
import { createAuthorizationRequest } from "../authorization/request.ts";
import type { ClientCredentials } from "../client-auth.ts";
import { discover } from "../discovery.ts";
import { AuthorizationError } from "../errors.ts";
import type { FetchLike, TokenResult } from "../token-response.ts";

export interface LoopbackLoginOptions {
  issuer: string;
  client: ClientCredentials;
  /** Default `openid offline_access`. */
  scope?: string;
  prompt?: string;
  loginHint?: string;
  maxAge?: number;
  /** Opens the authorization URL in the user's browser (the system browser, never a web view). */
  openBrowser: (url: string) => void | Promise<void>;
  /** Path of the redirect URI, registered as `http://127.0.0.1{path}` (any port matches). */
  path?: string;
  /** Give up after this long without the browser coming back (default 5 minutes). */
  timeoutMs?: number;
  fetch?: FetchLike;
  /** For the token request alone: `dpopFetch(...)` for DPoP-bound tokens. Default `fetch`. */
  tokenFetch?: FetchLike;
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
  const path = options.path ?? "/callback";
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  try {
    const { port } = server.address() as { port: number };
    const { url, transaction } = await createAuthorizationRequest(metadata, {
      clientId: options.client.clientId,
      redirectUri: `http://127.0.0.1:${port}${path}`,
      scope: options.scope,
      prompt: options.prompt,
      loginHint: options.loginHint,
      maxAge: options.maxAge,
    });
    const callback = waitForCallback(server, path, options.timeoutMs ?? 300_000);
    await options.openBrowser(url);
    const code = authorizationCode(metadata, await callback, transaction.state);
    return await exchangeAuthorizationCode(metadata, options.client, transaction, code, {
      fetch: options.fetch,
      tokenFetch: options.tokenFetch,
    });
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
