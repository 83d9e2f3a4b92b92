import { randomBytes } from "node:crypto";
import { startTestIssuer, type TestIssuer } from "../../../server/test/harness.ts";
import { startProxy, type TestProxy } from "./proxy.ts";
import { TestTime } from "./test-time.ts";

export const PASSWORD = "correct horse battery staple";
/** Access-token lifetime of the test clients (s); a session refreshes 30 s before expiry. */
export const TOKEN_TTL = 60;

export interface IssuerFixture {
  issuer: TestIssuer;
  /** The issuer's time, which the tests' sessions share (`time.device()`). */
  time: TestTime;
  proxy: TestProxy;
  userId: string;
  username: string;
  close(): Promise<void>;
  /** Registers a public client with the given settings; returns its client_id. */
  client(settings?: Record<string, unknown>): Promise<string>;
}

/**
 * The real issuer (PGlite unless EVERGREEN_CLIENT_TEST_DB=postgres) on a test time, a proxy in
 * front stamping that time in `Date`, one user. Clients get one-minute access tokens: tests
 * jump the time past their expiry. `env` adds issuer settings (e.g. EVERGREEN_DPOP_REQUIRE_NONCE).
 */
export async function startIssuerFixture(env: Record<string, string> = {}): Promise<IssuerFixture> {
  const database = process.env.EVERGREEN_CLIENT_TEST_DB === "postgres" ? "postgres" : "pglite";
  const time = new TestTime();
  const issuer = await startTestIssuer({
    database,
    clock: time.issuer,
    env: { EVERGREEN_RATE_LIMIT: "off", ...env },
  });
  const proxy = await startProxy(issuer.url, {}, { date: () => time.date() });
  const username = `alice-${randomBytes(3).toString("hex")}`;
  const user = await issuer.admin("POST", "/admin/users", {
    username,
    password: PASSWORD,
    email: `${username}@example.test`,
  });
  if (user.status !== 201)
    throw new Error(`creating a user failed: ${user.status} ${JSON.stringify(user.body)}`);
  return {
    issuer,
    time,
    proxy,
    userId: user.body.id,
    username,
    async client(settings = {}) {
      const created = await issuer.admin("POST", "/admin/clients", {
        client_name: "client sdk test",
        token_endpoint_auth_method: "none",
        grant_types: ["password", "refresh_token"],
        scope: "openid",
        access_token_ttl: TOKEN_TTL,
        refresh_token_reuse_grace: 30,
        ...settings,
      });
      if (created.status !== 201)
        throw new Error(`creating a client failed: ${created.status} ${JSON.stringify(created.body)}`);
      return created.body.client_id as string;
    },
    async close() {
      await proxy.close();
      await issuer.close();
    },
  };
}

/** Session options that send every request through the proxy, on the issuer's time. */
export function viaProxy(fixture: IssuerFixture, clientId: string) {
  return {
    issuer: fixture.issuer.url,
    clientId,
    clock: fixture.time.device(),
    origins: [fixture.proxy.url],
    tokenEndpoint: `${fixture.proxy.url}/token`,
    revocationEndpoint: `${fixture.proxy.url}/revoke`,
  };
}
