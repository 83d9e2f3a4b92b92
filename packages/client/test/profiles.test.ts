/** Non-standard refresh endpoints, each a small node:http server in the test. */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createSession, jsonProfile, SessionExpiredError, TokenEndpointError } from "../src/index.ts";

const servers: { close(): void }[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

async function serve(handler: (body: any, req: IncomingMessage, res: ServerResponse) => void) {
  const server = createServer(async (req, res) => {
    let text = "";
    for await (const chunk of req) text += chunk;
    handler(text ? JSON.parse(text) : undefined, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push({
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const send = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};

/** A JWT-shaped token whose payload carries only `exp` (all the SDK reads). */
const jwt = (exp: number) =>
  `eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify({ exp })).toString("base64url")}.sig`;

describe("Django SimpleJWT: POST {refresh} → {access}", () => {
  it("refreshes with the JSON body, keeps the refresh token it was not sent, and ends on 401", async () => {
    const received: unknown[] = [];
    let valid = new Set(["rt-simple"]);
    const url = await serve((body, req, res) => {
      if (req.url === "/api/token/refresh/") {
        received.push({ body, contentType: req.headers["content-type"] });
        if (!valid.has(body.refresh))
          return send(res, 401, { detail: "Token is invalid or expired", code: "token_not_valid" });
        return send(res, 200, { access: jwt(Math.floor(Date.now() / 1000) + 300) });
      }
      const token = req.headers.authorization?.replace("Bearer ", "") ?? "";
      const exp = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString() || "{}").exp ?? 0;
      send(res, exp * 1000 > Date.now() ? 200 : 401, {});
    });
    const session = createSession({
      tokenEndpoint: `${url}/api/token/refresh/`,
      clientId: "web",
      autoRefresh: false,
      refresh: jsonProfile({
        request: "refresh",
        response: { accessToken: "access", refreshToken: "refresh" },
      }),
    });
    const expired: unknown[] = [];
    session.on("expired", (e) => expired.push(e));
    // Logged in elsewhere (SimpleJWT's /api/token/): an access token that has already expired.
    await session.setTokens({
      accessToken: jwt(Math.floor(Date.now() / 1000) - 10),
      refreshToken: "rt-simple",
      tokenType: "Bearer",
      raw: {},
    });

    expect((await session.fetch(`${url}/api/me`)).status).toBe(200);
    expect(received).toEqual([{ body: { refresh: "rt-simple" }, contentType: "application/json" }]);
    const tokens = await session.getTokens();
    expect(tokens?.refreshToken).toBe("rt-simple");
    expect(tokens?.expiresAt).toBeGreaterThan(Date.now() + 250_000);

    valid = new Set();
    await expect(session.refresh()).rejects.toBeInstanceOf(SessionExpiredError);
    expect(expired).toHaveLength(1);
    expect(await session.getTokens()).toBeNull();
  });
});

describe("nested response: POST {refresh_token} → 201 {authorization: {token, expires_at}, refresh: {token}}", () => {
  it("maps nested fields, an absolute expiry and the rotated refresh token", async () => {
    const presented: string[] = [];
    let n = 0;
    const url = await serve((body, req, res) => {
      if (req.url === "/v2/sessions/refresh") {
        presented.push(body.refresh_token);
        n++;
        return send(res, 201, {
          authorization: { token: `access-${n}`, expires_at: new Date(Date.now() + 3_600_000).toISOString() },
          refresh: { token: `refresh-${n}` },
        });
      }
      send(res, 200, { auth: req.headers.authorization });
    });
    const session = createSession({
      tokenEndpoint: `${url}/v2/sessions/refresh`,
      clientId: "mobile",
      autoRefresh: false,
      refresh: jsonProfile({
        request: "refresh_token",
        successStatus: [201],
        response: {
          accessToken: "authorization.token",
          expiresAt: "authorization.expires_at",
          refreshToken: "refresh.token",
        },
      }),
    });
    await session.setTokens({
      accessToken: "access-0",
      refreshToken: "refresh-0",
      tokenType: "Bearer",
      expiresIn: 0,
      raw: {},
    });
    expect(await (await session.fetch(`${url}/me`)).json()).toEqual({ auth: "Bearer access-1" });
    await session.refresh();
    expect(presented).toEqual(["refresh-0", "refresh-1"]);
    const tokens = await session.getTokens();
    expect(tokens?.refreshToken).toBe("refresh-2");
    expect(tokens?.expiresAt).toBeGreaterThan(Date.now() + 3_500_000);
    expect(tokens?.expiresAt).toBeLessThanOrEqual(Date.now() + 3_600_000);
  });

  it("treats a 200 as failure when only 201 is success, and 5xx as transient", async () => {
    let status = 503;
    const url = await serve((_body, _req, res) => send(res, status, {}));
    const profile = jsonProfile({
      url: `${url}/r`,
      request: "refresh_token",
      successStatus: [201],
      response: { accessToken: "a" },
    });
    const context = { fetch, clientId: "x", tokenEndpoint: async () => `${url}/r` };
    await expect(profile.refresh("rt", context)).rejects.toMatchObject({ status: 503, error: "http_503" });
    status = 200;
    await expect(profile.refresh("rt", context)).rejects.toBeInstanceOf(TokenEndpointError);
  });
});

describe("function escape hatch", () => {
  it("uses whatever the function returns", async () => {
    const seen: string[] = [];
    const session = createSession({
      tokenEndpoint: "https://unused.example/token",
      clientId: "x",
      autoRefresh: false,
      refresh: async (refreshToken) => {
        seen.push(refreshToken);
        return {
          accessToken: "custom-access",
          refreshToken: "custom-next",
          tokenType: "Bearer",
          expiresIn: 600,
          raw: {},
        };
      },
    });
    await session.setTokens({
      accessToken: "old",
      refreshToken: "custom-first",
      tokenType: "Bearer",
      expiresIn: 0,
      raw: {},
    });
    expect(await session.getAccessToken()).toBe("custom-access");
    expect(seen).toEqual(["custom-first"]);
    expect((await session.getTokens())?.refreshToken).toBe("custom-next");
  });
});
