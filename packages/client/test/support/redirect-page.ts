/**
 * The page of the redirect sign-in test in Chromium: `/` starts the sign-in (the SDK navigates
 * to the issuer), `/callback` completes it. Tokens in localStorage, the sign-in in progress in
 * sessionStorage (the SDK's defaults for a browser app); the test's settings ride in
 * sessionStorage too, since the issuer's redirect carries only the response.
 */
import {
  createDpopProof,
  createSession,
  indexedDBDpopKeys,
  jwkThumbprint,
  webStorage,
} from "../../src/index.ts";

const query = new URLSearchParams(location.search);
if (query.has("issuer")) sessionStorage.setItem("test", JSON.stringify(Object.fromEntries(query)));
const settings = JSON.parse(sessionStorage.getItem("test") ?? "{}") as { issuer: string; client: string };
const session = createSession({
  issuer: settings.issuer,
  clientId: settings.client,
  storage: webStorage(localStorage),
  autoRefresh: false,
});

/** What the callback page saw, for the test to read. */
async function complete() {
  await session.handleRedirectCallback();
  const me = await session.fetch(`${settings.issuer}/userinfo`);
  return {
    href: location.href,
    status: me.status,
    sub: ((await me.json()) as { sub?: string }).sub,
    refreshToken: (await session.getTokens())?.refreshToken ?? null,
    inProgress: Object.keys(sessionStorage).filter((key) => key.includes(":login:")),
  };
}

Object.assign(globalThis, {
  evergreen: {
    login: (loginHint: string) =>
      session.loginWithRedirect({ redirectUri: `${location.origin}/callback`, loginHint }),
    callback:
      location.pathname === "/callback"
        ? complete().catch((e: Error) => ({ error: `${e.name}: ${e.message}` }))
        : null,
    /** The IndexedDB DPoP key of `database`: extractable?, its thumbprint, and a proof it signed. */
    dpopKey: async (database: string) => {
      const pair = await indexedDBDpopKeys({ database }).keyPair();
      return {
        extractable: pair.privateKey.extractable,
        thumbprint: await jwkThumbprint(pair),
        proof: await createDpopProof(pair, {
          htm: "GET",
          htu: location.href,
          iat: Math.floor(Date.now() / 1000),
        }),
      };
    },
  },
});
