/** The explicit protocol steps: exactly the requests they send, exactly what they return or throw. */
import { describe, expect, it } from "vitest";
import {
  createSession,
  DiscoveryError,
  discover,
  NetworkError,
  passwordGrant,
  refreshTokens,
  revokeToken,
  TokenEndpointError,
} from "../src/index.ts";
import { json } from "./support/fake-endpoint.ts";

function recorder(answer: (request: Request) => Response | Promise<Response>) {
  const requests: Request[] = [];
  return {
    requests,
    fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = new Request(input, init);
      requests.push(request.clone());
      return answer(request);
    },
  };
}

describe("discover", () => {
  it("reads RFC 8414 metadata, trying the inserted well-known path first for issuers with a path", async () => {
    const server = recorder((r) =>
      r.url === "https://as.example/tenant/.well-known/oauth-authorization-server"
        ? json(200, {
            issuer: "https://as.example/tenant",
            token_endpoint: "https://as.example/tenant/token",
          })
        : json(404, {}),
    );
    const metadata = await discover("https://as.example/tenant/", { fetch: server.fetch });
    expect(metadata.token_endpoint).toBe("https://as.example/tenant/token");
    expect(server.requests.map((r) => r.url)).toEqual([
      "https://as.example/.well-known/oauth-authorization-server/tenant",
      "https://as.example/tenant/.well-known/oauth-authorization-server",
    ]);
  });

  it("falls back to /.well-known/openid-configuration when the RFC 8414 document is absent (404)", async () => {
    const server = recorder((r) =>
      r.url === "https://as.example/.well-known/openid-configuration"
        ? json(200, { issuer: "https://as.example", token_endpoint: "https://as.example/oidc/token" })
        : json(404, {}),
    );
    const metadata = await discover("https://as.example", { fetch: server.fetch });
    expect(metadata.token_endpoint).toBe("https://as.example/oidc/token");
    expect(server.requests.map((r) => r.url)).toEqual([
      "https://as.example/.well-known/oauth-authorization-server",
      "https://as.example/.well-known/openid-configuration",
    ]);
    // An issuer with a path: OpenID Connect appends the well-known segment to it.
    const tenant = recorder((r) =>
      r.url === "https://as.example/tenant/.well-known/openid-configuration"
        ? json(200, {
            issuer: "https://as.example/tenant",
            token_endpoint: "https://as.example/tenant/token",
          })
        : json(404, {}),
    );
    expect((await discover("https://as.example/tenant", { fetch: tenant.fetch })).issuer).toBe(
      "https://as.example/tenant",
    );
    expect(tenant.requests.map((r) => r.url)).toEqual([
      "https://as.example/.well-known/oauth-authorization-server/tenant",
      "https://as.example/tenant/.well-known/oauth-authorization-server",
      "https://as.example/tenant/.well-known/openid-configuration",
    ]);
  });

  it("does not fall back past a failure other than 404; says so when nothing is found", async () => {
    const down = recorder(() => json(503, {}));
    await expect(discover("https://as.example", { fetch: down.fetch })).rejects.toMatchObject({
      code: "discovery_failed",
      message: expect.stringContaining("503"),
    });
    expect(down.requests).toHaveLength(1);
    const none = recorder(() => json(404, {}));
    await expect(discover("https://as.example", { fetch: none.fetch })).rejects.toBeInstanceOf(
      DiscoveryError,
    );
    expect(none.requests).toHaveLength(2);
  });

  it("refuses metadata whose issuer is not the issuer asked for (RFC 8414 §3.3)", async () => {
    const server = recorder(() =>
      json(200, { issuer: "https://evil.example", token_endpoint: "https://evil.example/token" }),
    );
    const failure = discover("https://as.example", { fetch: server.fetch });
    await expect(failure).rejects.toBeInstanceOf(DiscoveryError);
    await expect(failure).rejects.toMatchObject({ code: "issuer_mismatch" });
    // Nor from the fallback document, nor without an issuer at all.
    const oidc = recorder((r) =>
      r.url.endsWith("/openid-configuration")
        ? json(200, { issuer: "https://as.example/other", token_endpoint: "https://as.example/token" })
        : json(404, {}),
    );
    await expect(discover("https://as.example", { fetch: oidc.fetch })).rejects.toMatchObject({
      code: "issuer_mismatch",
    });
    const anonymous = recorder(() => json(200, { token_endpoint: "https://as.example/token" }));
    await expect(discover("https://as.example", { fetch: anonymous.fetch })).rejects.toMatchObject({
      code: "issuer_mismatch",
    });
  });

  it("a session never sends credentials to endpoints named by another issuer's metadata, nor retries", async () => {
    const server = recorder((r) =>
      r.url.includes("/.well-known/")
        ? json(200, { issuer: "https://evil.example", token_endpoint: "https://evil.example/token" })
        : json(200, { access_token: "at", token_type: "Bearer", expires_in: 60, refresh_token: "rt" }),
    );
    const session = createSession({ issuer: "https://as.example", clientId: "app", fetch: server.fetch });
    await expect(session.loginWithPassword("alice", "secret")).rejects.toMatchObject({
      code: "issuer_mismatch",
    });
    expect(server.requests.filter((r) => !r.url.includes("/.well-known/"))).toEqual([]);
    session.dispose();
    // A refresh does not retry it as if it were transient.
    const refreshing = createSession({
      issuer: "https://as.example",
      clientId: "app",
      fetch: server.fetch,
      retry: { baseDelay: 1 },
    });
    await refreshing.setTokens({ accessToken: "a", refreshToken: "r", tokenType: "Bearer", raw: {} });
    const before = server.requests.length;
    await expect(refreshing.refresh()).rejects.toMatchObject({ code: "issuer_mismatch" });
    expect(server.requests.length - before).toBe(1);
    refreshing.dispose();
  });

  it("fails with DiscoveryError when no token_endpoint is named", async () => {
    const server = recorder(() => json(200, { issuer: "https://as.example" }));
    await expect(discover("https://as.example", { fetch: server.fetch })).rejects.toBeInstanceOf(
      DiscoveryError,
    );
  });
});

describe("token endpoint calls", () => {
  it("password grant: form-encoded with client_id for a public client", async () => {
    const server = recorder(() =>
      json(
        200,
        { access_token: "at", token_type: "Bearer", expires_in: 300, refresh_token: "rt", scope: "a b" },
        { date: "Sat, 21 Nov 2026 10:00:00 GMT" },
      ),
    );
    const result = await passwordGrant(
      "https://as.example/token",
      { clientId: "app" },
      { username: "al ice", password: "p&w", scope: "a b" },
      { fetch: server.fetch },
    );
    const request = server.requests[0] as Request;
    expect(request.method).toBe("POST");
    expect(request.headers.get("content-type")).toBe("application/x-www-form-urlencoded");
    expect(Object.fromEntries(new URLSearchParams(await request.text()))).toEqual({
      grant_type: "password",
      username: "al ice",
      password: "p&w",
      scope: "a b",
      client_id: "app",
    });
    expect(result).toMatchObject({ accessToken: "at", refreshToken: "rt", expiresIn: 300, scope: "a b" });
    expect(result.serverDate).toBe(Date.parse("Sat, 21 Nov 2026 10:00:00 GMT"));
  });

  it("refresh with client_secret_basic: form-encoded id and secret in the Basic header", async () => {
    const server = recorder(() => json(200, { access_token: "at2", token_type: "Bearer" }));
    const result = await refreshTokens(
      "https://as.example/token",
      { clientId: "my app", clientSecret: "s:é" },
      "rt",
      { fetch: server.fetch },
    );
    const request = server.requests[0] as Request;
    expect(request.headers.get("authorization")).toBe(`Basic ${btoa("my+app:s%3A%C3%A9")}`);
    const form = new URLSearchParams(await request.text());
    expect(form.get("client_id")).toBeNull();
    expect(form.get("refresh_token")).toBe("rt");
    expect(result.refreshToken).toBeUndefined(); // not rotated: the caller keeps its token
  });

  it("client_secret_post puts the secret in the body", async () => {
    const server = recorder(() => json(200, { access_token: "at", token_type: "Bearer" }));
    await refreshTokens(
      "https://as.example/token",
      { clientId: "c", clientSecret: "s", authMethod: "client_secret_post" },
      "rt",
      { fetch: server.fetch },
    );
    const form = new URLSearchParams(await (server.requests[0] as Request).text());
    expect([form.get("client_id"), form.get("client_secret")]).toEqual(["c", "s"]);
  });

  it("throws the RFC 6749 error with status and Retry-After", async () => {
    const server = recorder(() => json(400, { error: "invalid_grant", error_description: "revoked" }));
    const error = await refreshTokens("https://as.example/token", { clientId: "c" }, "rt", {
      fetch: server.fetch,
    }).catch((e) => e);
    expect(error).toBeInstanceOf(TokenEndpointError);
    expect(error).toMatchObject({
      status: 400,
      error: "invalid_grant",
      errorDescription: "revoked",
      code: "invalid_grant",
    });
    const limited = recorder(() => new Response("busy", { status: 429, headers: { "retry-after": "3" } }));
    await expect(
      refreshTokens("https://as.example/token", { clientId: "c" }, "rt", { fetch: limited.fetch }),
    ).rejects.toMatchObject({
      status: 429,
      error: "http_429",
      retryAfter: 3000,
    });
  });

  it("wraps a failure to get any response as NetworkError", async () => {
    const failing = async () => {
      throw new TypeError("fetch failed");
    };
    await expect(
      refreshTokens("https://as.example/token", { clientId: "c" }, "rt", { fetch: failing }),
    ).rejects.toBeInstanceOf(NetworkError);
  });
});

describe("revokeToken", () => {
  it("posts the token with its hint and the client, and surfaces errors", async () => {
    const server = recorder(() => new Response(null, { status: 200 }));
    await revokeToken("https://as.example/revoke", { clientId: "c" }, "rt", {
      tokenTypeHint: "refresh_token",
      fetch: server.fetch,
    });
    expect(Object.fromEntries(new URLSearchParams(await (server.requests[0] as Request).text()))).toEqual({
      token: "rt",
      token_type_hint: "refresh_token",
      client_id: "c",
    });
    const refusing = recorder(() => json(401, { error: "invalid_client" }));
    await expect(
      revokeToken("https://as.example/revoke", { clientId: "c" }, "rt", { fetch: refusing.fetch }),
    ).rejects.toMatchObject({
      error: "invalid_client",
    });
  });
});
