/**
 * panva's oidc-provider (a third-party OpenID Provider) in this process on a loopback port: a
 * public SPA client with PKCE and refresh-token rotation, DPoP with server nonces, and its
 * development interactions (any login, one consent click) walked by a cookie jar.
 *
 * Its time is Date.now(), which the test moves (`jump`); responses get a `Date` header on that
 * same time (Node stamps `Date` from the real clock) through `serverDated`, the SDK's fetch.
 */
import { randomBytes } from "node:crypto";
import { type IncomingMessage, type ServerResponse, createServer } from "node:http";
import { CookieJar, browse } from "../../../server/test/browser-flow.ts";

export const SPA_REDIRECT = "https://spa.example.test/callback";

export interface ProviderSettings {
  /** Seconds an access token lives. */
  accessTokenTtl: number;
  /** Seconds a refresh token lives. */
  refreshTokenTtl: number;
  /** Whether every DPoP proof must carry a server nonce. */
  requireNonce: boolean;
}

export interface TestProvider {
  issuer: string;
  settings: ProviderSettings;
  /** Moves this process's Date.now() (and so the provider's time) forward. */
  jump(ms: number): void;
  /** fetch whose responses carry a `Date` header on the moved time. */
  serverDated: typeof fetch;
  /** Plays the user: from the authorization URL to the redirect back to the app. */
  signIn(authorizationUrl: string, login?: string): Promise<string>;
  close(): Promise<void>;
}

export async function startOidcProvider(): Promise<TestProvider> {
  const realNow = Date.now;
  let offset = 0;
  Date.now = () => realNow() + offset;

  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const settings: ProviderSettings = { accessTokenTtl: 60, refreshTokenTtl: 3600, requireNonce: false };
  // A specifier TypeScript does not resolve: oidc-provider ships no types.
  const moduleName = "oidc-provider";
  const { default: Provider } = (await import(moduleName)) as {
    default: new (
      issuer: string,
      configuration: Record<string, unknown>,
    ) => { callback(): (req: IncomingMessage, res: ServerResponse) => void };
  };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: "spa",
        token_endpoint_auth_method: "none",
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        redirect_uris: [SPA_REDIRECT],
      },
    ],
    cookies: { keys: [randomBytes(16).toString("hex")] },
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      dPoP: {
        enabled: true,
        nonceSecret: randomBytes(32),
        requireNonce: () => settings.requireNonce,
      },
    },
    rotateRefreshToken: true,
    ttl: {
      AccessToken: () => settings.accessTokenTtl,
      RefreshToken: () => settings.refreshTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      Grant: 14 * 86400,
      Session: 14 * 86400,
      Interaction: 3600,
    },
    findAccount: async (_ctx: unknown, sub: string) => ({
      accountId: sub,
      claims: async () => ({ sub, name: `user ${sub}` }),
    }),
  });
  server.on("request", provider.callback());

  const serverDated: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    const headers = new Headers(response.headers);
    headers.set("date", new Date(Date.now()).toUTCString());
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  };

  return {
    issuer,
    settings,
    jump(ms) {
      offset += ms;
    },
    serverDated,
    async signIn(authorizationUrl, login = "alice") {
      const jar = new CookieJar();
      let url = authorizationUrl;
      for (let step = 0; step < 12; step++) {
        const page = await browse(jar, url);
        if (page.status === 303 || page.status === 302) {
          const next = new URL(page.location!, url).toString();
          if (next.startsWith(SPA_REDIRECT)) return next;
          url = next;
          continue;
        }
        const action = page.html.match(/action="([^"]+)"/)?.[1];
        const prompt = page.html.match(/name="prompt" value="(\w+)"/)?.[1];
        if (page.status !== 200 || !action || !prompt)
          throw new Error(`unexpected page ${page.status}: ${page.html}`);
        const form: Record<string, string> =
          prompt === "login" ? { prompt, login, password: "any" } : { prompt };
        const posted = await browse(jar, new URL(action, url).toString(), form);
        if (posted.status !== 303 && posted.status !== 302) throw new Error(`form answered ${posted.status}`);
        url = new URL(posted.location!, url).toString();
      }
      throw new Error("the sign-in did not come back to the app");
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      Date.now = realNow;
    },
  };
}
