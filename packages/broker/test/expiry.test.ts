import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import {
  backoffMs,
  jwtExpiry,
  nextRefreshAt,
  parseExpiresAt,
  resolveExpiry,
  retryAfterMs,
} from "../src/refresh/expiry.ts";
import type { Provider } from "../src/providers/store.ts";
import { buildRefreshRequest, readPath, sanitize } from "../src/refresh/upstream.ts";

const sentAt = new Date("2030-01-01T00:00:00Z");

describe("token expiry", () => {
  it("counts expires_in from when the request was sent", () => {
    expect(resolveExpiry({ sentAt, accessToken: "x", expiresIn: 3600, defaultTtl: 60 })).toEqual(
      new Date("2030-01-01T01:00:00Z"),
    );
    expect(resolveExpiry({ sentAt, accessToken: "x", expiresIn: "120", defaultTtl: 60 })).toEqual(
      new Date("2030-01-01T00:02:00Z"),
    );
    expect(resolveExpiry({ sentAt, accessToken: "x", expiresIn: "soon", defaultTtl: 60 })).toBeUndefined();
  });

  it("reads expires_at as ISO, epoch seconds or epoch milliseconds", () => {
    const at = new Date("2030-01-01T00:10:00Z");
    expect(parseExpiresAt("2030-01-01T00:10:00Z")).toEqual(at);
    expect(parseExpiresAt(at.getTime() / 1000)).toEqual(at);
    expect(parseExpiresAt(String(at.getTime() / 1000))).toEqual(at);
    expect(parseExpiresAt(at.getTime())).toEqual(at);
    expect(parseExpiresAt("not a date")).toBeUndefined();
    expect(parseExpiresAt(-5)).toBeUndefined();
  });

  it("falls back to the JWT exp, then to the provider's default TTL — never to no expiry", async () => {
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime(1_893_456_900)
      .sign(new Uint8Array(32));
    expect(jwtExpiry(jwt)).toEqual(new Date(1_893_456_900_000));
    expect(resolveExpiry({ sentAt, accessToken: jwt, defaultTtl: 60 })).toEqual(new Date(1_893_456_900_000));
    expect(resolveExpiry({ sentAt, accessToken: "opaque.not.jwt", defaultTtl: 60 })).toEqual(
      new Date("2030-01-01T00:01:00Z"),
    );
  });

  it("refreshes ahead by at most half the lifetime, spread by jitter", () => {
    const expiresAt = new Date(sentAt.getTime() + 3600_000);
    expect(nextRefreshAt({ now: sentAt, expiresAt, refreshAhead: 300, random: () => 0 })).toEqual(
      new Date(expiresAt.getTime() - 300_000),
    );
    expect(nextRefreshAt({ now: sentAt, expiresAt, refreshAhead: 300, random: () => 1 })).toEqual(
      new Date(expiresAt.getTime() - 330_000),
    );
    const short = new Date(sentAt.getTime() + 10_000);
    expect(nextRefreshAt({ now: sentAt, expiresAt: short, refreshAhead: 300, random: () => 0 })).toEqual(
      new Date(sentAt.getTime() + 5_000),
    );
  });

  it("backs off exponentially up to five minutes, and reads Retry-After", () => {
    expect(backoffMs(1, () => 1)).toBe(2000);
    expect(backoffMs(3, () => 1)).toBe(8000);
    expect(backoffMs(30, () => 1)).toBe(300_000);
    expect(backoffMs(30, () => 0)).toBe(150_000);
    expect(retryAfterMs("120", sentAt)).toBe(120_000);
    expect(retryAfterMs(new Date(sentAt.getTime() + 30_000).toUTCString(), sentAt)).toBe(30_000);
    expect(retryAfterMs("later", sentAt)).toBeUndefined();
  });
});

describe("the upstream request", () => {
  const base: Provider = {
    name: "p",
    token_url: "https://p.example/token",
    client_id: "id with space",
    client_secret: "s:e/c",
    has_client_secret: true,
    auth_style: "basic",
    body_format: "form",
    refresh_ahead: 300,
    default_ttl: 3600,
    max_concurrency: null,
    extra_body: { audience: "api" },
    extra_headers: { "x-tenant": "t1" },
    response: {},
    created_at: sentAt,
    updated_at: sentAt,
  };

  it("authenticates with form-encoded Basic credentials, or in the body; form or JSON", () => {
    const basic = buildRefreshRequest(base, "rt");
    expect(basic.headers.get("authorization")).toBe(
      `Basic ${Buffer.from("id+with+space:s%3Ae%2Fc").toString("base64")}`,
    );
    expect(basic.headers.get("x-tenant")).toBe("t1");
    expect(Object.fromEntries(new URLSearchParams(basic.body))).toEqual({
      audience: "api",
      grant_type: "refresh_token",
      refresh_token: "rt",
    });
    const body = buildRefreshRequest({ ...base, auth_style: "body", body_format: "json" }, "rt");
    expect(body.headers.get("authorization")).toBeNull();
    expect(body.headers.get("content-type")).toBe("application/json");
    expect(JSON.parse(body.body)).toMatchObject({
      client_id: "id with space",
      client_secret: "s:e/c",
      refresh_token: "rt",
    });
    // extra_body cannot override the grant.
    const sneaky = buildRefreshRequest({ ...base, extra_body: { grant_type: "password" } }, "rt");
    expect(new URLSearchParams(sneaky.body).get("grant_type")).toBe("refresh_token");
  });

  it("removes every token from the response kept for diagnosis", () => {
    const mapped = {
      ...base,
      response: { access_token: "authorization.token", refresh_token: "refresh.token" },
    };
    const body = {
      authorization: { token: "A", expires_at: 1 },
      refresh: { token: "R" },
      id_token: "I",
      scope: "x",
    };
    expect(readPath(body, "authorization.token")).toBe("A");
    expect(readPath(body, "authorization.missing.deeper")).toBeUndefined();
    expect(sanitize(body, mapped)).toEqual({ authorization: { expires_at: 1 }, refresh: {}, scope: "x" });
    expect(body.authorization.token).toBe("A");
  });
});
