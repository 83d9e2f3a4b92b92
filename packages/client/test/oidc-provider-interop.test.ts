/**
 * The SDK against a third-party issuer: panva's oidc-provider (v9), in this process. Discovery,
 * redirect sign-in with PKCE and an RS256 ID token, refresh with rotation (the old refresh token
 * refused by the provider), expiry of access and refresh tokens (time moved, not waited for),
 * and DPoP-bound tokens with the provider's server nonces on the token endpoint and userinfo.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createSession,
  discover,
  dpopFetch,
  type FetchLike,
  memoryDpopKeys,
  memoryStorage,
  refreshTokens,
  type SessionOptions,
  SessionExpiredError,
  TokenEndpointError,
} from "../src/index.ts";
import { fileStorage } from "../src/node/index.ts";
import { SPA_REDIRECT, startOidcProvider, type TestProvider } from "./support/oidc-provider.ts";

interface Seen {
  path: string;
  status: number;
  grantType: string | null;
  dpop: boolean;
  nonce: string | undefined;
  scheme: string | undefined;
}

let op: TestProvider;
const seen: Seen[] = [];

/** The SDK's fetch: the provider's time in `Date`, and every request recorded. */
const recording: FetchLike = async (input, init) => {
  const request = new Request(input, init);
  const proof = request.headers.get("dpop");
  const body = init?.body instanceof URLSearchParams ? init.body : undefined;
  const response = await op.serverDated(input, init);
  seen.push({
    path: new URL(request.url).pathname,
    status: response.status,
    grantType: body?.get("grant_type") ?? null,
    dpop: proof !== null,
    nonce: proof ? JSON.parse(Buffer.from(proof.split(".")[1]!, "base64url").toString()).nonce : undefined,
    scheme: request.headers.get("authorization")?.split(" ")[0],
  });
  return response;
};

beforeAll(async () => {
  op = await startOidcProvider();
});
afterAll(() => op?.close());
beforeEach(() => {
  seen.length = 0;
  Object.assign(op.settings, { accessTokenTtl: 60, refreshTokenTtl: 3600, requireNonce: false });
});

/** A session signed in through the provider's authorization endpoint. */
async function signedIn(extra: Partial<SessionOptions> = {}) {
  const session = createSession({
    issuer: op.issuer,
    clientId: "spa",
    storage: memoryStorage(),
    transactionStore: memoryStorage(),
    fetch: recording,
    autoRefresh: false,
    ...extra,
  });
  let authorizationUrl = "";
  // oidc-provider grants offline_access (a refresh token) only with prompt=consent (OIDC Core §11).
  await session.loginWithRedirect({
    redirectUri: SPA_REDIRECT,
    prompt: "consent",
    navigate: (url) => {
      authorizationUrl = url;
    },
  });
  await session.handleRedirectCallback(await op.signIn(authorizationUrl));
  return session;
}

const userinfo = () => `${op.issuer}/me`;
const tokenCalls = (grantType: string) =>
  seen.filter((s) => s.path === "/token" && s.grantType === grantType);

describe("the SDK against oidc-provider", { timeout: 120_000 }, () => {
  it("discovers the provider, signs in with code + PKCE, validates its RS256 ID token, calls userinfo", async () => {
    const metadata = await discover(op.issuer);
    expect(metadata.token_endpoint).toBe(`${op.issuer}/token`);
    expect(metadata["code_challenge_methods_supported"]).toContain("S256");
    const session = await signedIn();
    const tokens = await session.getTokens();
    expect(tokens?.tokenType).toBe("Bearer");
    expect(tokens?.refreshToken).toBeTruthy();
    expect(JSON.parse(Buffer.from(tokens!.idToken!.split(".")[0]!, "base64url").toString()).alg).toBe(
      "RS256",
    );
    const me = await session.fetch(userinfo());
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ sub: "alice" });
    session.dispose();
  });

  it("refreshes with rotation: the provider refuses the old refresh token afterwards", async () => {
    const session = await signedIn();
    const first = (await session.getTokens())!;
    const next = await session.refresh();
    expect(next.refreshToken).toBeTruthy();
    expect(next.refreshToken).not.toBe(first.refreshToken);
    expect(next.accessToken).not.toBe(first.accessToken);
    const replay = await refreshTokens(`${op.issuer}/token`, { clientId: "spa" }, first.refreshToken!).catch(
      (e: unknown) => e,
    );
    expect(replay).toBeInstanceOf(TokenEndpointError);
    expect((replay as TokenEndpointError).error).toBe("invalid_grant");
    session.dispose();
  });

  it("an expired access token is refreshed before the request; an expired refresh token ends the session", async () => {
    const session = await signedIn();
    const expired: unknown[] = [];
    session.on("expired", ({ error }) => expired.push(error));
    const before = (await session.getTokens())!;
    op.jump(61_000); // past the one-minute access token
    const statuses = await Promise.all(
      [1, 2, 3, 4, 5].map(() => session.fetch(userinfo()).then((r) => r.status)),
    );
    expect(statuses).toEqual([200, 200, 200, 200, 200]);
    expect(tokenCalls("refresh_token").map((s) => s.status)).toEqual([200]); // one refresh for five
    expect((await session.getTokens())?.refreshToken).not.toBe(before.refreshToken);
    expect(seen.filter((s) => s.path === "/me" && s.status === 401)).toEqual([]);

    op.jump(3601_000); // past the refresh token's hour
    await expect(session.fetch(userinfo())).rejects.toBeInstanceOf(SessionExpiredError);
    expect(tokenCalls("refresh_token").map((s) => s.status)).toEqual([200, 400]);
    expect(expired).toHaveLength(1);
    expect(await session.getTokens()).toBeNull();
    session.dispose();
  });

  describe("DPoP (RFC 9449) with server nonces", () => {
    beforeEach(() => {
      op.settings.requireNonce = true;
    });

    it("binds the tokens to the key: nonce retry at the token endpoint, proofs with ath on userinfo", async () => {
      const keys = memoryDpopKeys();
      const session = await signedIn({ dpop: keys });
      const tokens = (await session.getTokens())!;
      expect(tokens.tokenType).toBe("DPoP");
      // The code exchange: refused for want of a nonce, sent again with the one it got.
      const exchange = tokenCalls("authorization_code");
      expect(exchange.map((s) => [s.status, s.dpop, s.nonce !== undefined])).toEqual([
        [400, true, false],
        [200, true, true],
      ]);

      expect((await session.fetch(userinfo())).status).toBe(200);
      const me = seen.filter((s) => s.path === "/me");
      expect(me.map((s) => [s.status, s.scheme, s.dpop])).toEqual([[200, "DPoP", true]]); // nonce known already

      // The access token alone is useless: as a bearer token (401), or as DPoP without a proof (400).
      const alone = [`Bearer ${tokens.accessToken}`, `DPoP ${tokens.accessToken}`].map((authorization) =>
        fetch(userinfo(), { headers: { authorization } }).then((r) => r.status),
      );
      expect(await Promise.all(alone)).toEqual([401, 400]);
      // So is the refresh token: without a proof, or with a proof by another key.
      const stolen = tokens.refreshToken!;
      const withoutKey = await refreshTokens(`${op.issuer}/token`, { clientId: "spa" }, stolen).catch(
        (e) => e,
      );
      expect(withoutKey).toBeInstanceOf(TokenEndpointError);
      const otherKey = dpopFetch(memoryDpopKeys());
      const withOtherKey = await refreshTokens(`${op.issuer}/token`, { clientId: "spa" }, stolen, {
        fetch: otherKey,
      }).catch((e) => e);
      expect(withOtherKey).toBeInstanceOf(TokenEndpointError);
      expect((withOtherKey as TokenEndpointError).error).toBe("invalid_grant");

      // The holder of the key refreshes (the refresh token is still valid after those attempts).
      const next = await session.refresh();
      expect(next.tokenType).toBe("DPoP");
      expect(next.refreshToken).not.toBe(stolen);
      expect((await session.fetch(userinfo())).status).toBe(200);

      // Logout revokes the bound refresh token: even the key's holder cannot use it afterwards.
      expect(await session.logout()).toEqual({ revoked: true });
      const afterLogout = await refreshTokens(`${op.issuer}/token`, { clientId: "spa" }, next.refreshToken!, {
        fetch: dpopFetch(keys),
      }).catch((e) => e);
      expect((afterLogout as TokenEndpointError).error).toBe("invalid_grant");
      session.dispose();
    });

    it("a nonce gone stale is renewed: 400 use_dpop_nonce on refresh, 401 use_dpop_nonce on userinfo, one retry each", async () => {
      op.settings.accessTokenTtl = 3600;
      const session = await signedIn({ dpop: memoryDpopKeys() });
      expect((await session.fetch(userinfo())).status).toBe(200);
      op.jump(6 * 60_000); // nonces are good for five minutes
      seen.length = 0;
      expect((await session.fetch(userinfo())).status).toBe(200);
      expect(seen.map((s) => [s.path, s.status])).toEqual([
        ["/me", 401],
        ["/me", 200],
      ]);
      op.jump(6 * 60_000);
      seen.length = 0;
      await session.refresh();
      expect(seen.map((s) => [s.path, s.status])).toEqual([
        ["/token", 400],
        ["/token", 200],
      ]);
      expect(seen[1]?.nonce).toBeTruthy();
      session.dispose();
    });

    it("many concurrent requests with an expired DPoP token: one refresh", async () => {
      const session = await signedIn({ dpop: memoryDpopKeys() });
      op.jump(61_000);
      seen.length = 0;
      const statuses = await Promise.all(
        Array.from({ length: 20 }, () => session.fetch(userinfo()).then((r) => r.status)),
      );
      expect(statuses).toEqual(Array(20).fill(200));
      expect(tokenCalls("refresh_token").filter((s) => s.status === 200)).toHaveLength(1);
      expect(seen.filter((s) => s.path === "/me" && s.status !== 200)).toEqual([]);
      session.dispose();
    });

    it("in Node, `dpop: true` keeps the key in the encrypted file store: a restarted app still refreshes", async () => {
      const dir = await mkdtemp(join(tmpdir(), "evergreen-dpop-"));
      try {
        const path = join(dir, "session.json");
        const first = await signedIn({ dpop: true, storage: fileStorage({ path }), storageKey: "app" });
        expect((await first.getTokens())?.tokenType).toBe("DPoP");
        first.dispose();
        // Only ciphertext on disk: no JWK member, no token.
        const onDisk = await readFile(path, "utf8");
        // (quoted JSON forms only: bare "EC" turns up in random base64 ciphertext)
        expect(onDisk).not.toMatch(/"d"|"kty"|"EC"|"P-256"/);
        expect(Object.keys(JSON.parse(onDisk))).toEqual(["v", "iv", "data"]);

        // A new process: a new session object on the same file, no key in memory.
        const again = createSession({
          issuer: op.issuer,
          clientId: "spa",
          storage: fileStorage({ path }),
          storageKey: "app",
          dpop: true,
          fetch: recording,
          autoRefresh: false,
        });
        op.jump(61_000);
        seen.length = 0;
        expect((await again.fetch(userinfo())).status).toBe(200);
        expect(tokenCalls("refresh_token").at(-1)?.status).toBe(200);
        again.dispose();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
