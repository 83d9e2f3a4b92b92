import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import { createClient, createUser, loginOk } from "./helpers.ts";

const ORIGIN = "https://app.example.test";

describe.each(DATABASES)("CORS for browser apps on %s", (database) => {
  let ti: TestIssuer;
  let listed: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer({ database });
    listed = await startTestIssuer({
      database,
      env: { EVERGREEN_CORS_ORIGINS: `${ORIGIN}, https://other.test` },
    });
  });
  afterAll(async () => {
    await ti.close();
    await listed.close();
  });

  it("answers a preflight for /token with 204 and the allowed method and headers", async () => {
    const res = await fetch(`${ti.url}/token`, {
      method: "OPTIONS",
      headers: {
        origin: ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    expect(res.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
  });

  it("exposes Date and WWW-Authenticate on token responses and protected resources", async () => {
    const client = await createClient(ti);
    const user = await createUser(ti);
    const tokens = await loginOk(ti, client, user);
    const res = await fetch(`${ti.url}/userinfo`, {
      headers: { origin: ORIGIN, authorization: "Bearer nope" },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get("access-control-allow-origin")).toBe("*");
    const exposed = res.headers.get("access-control-expose-headers") ?? "";
    expect(exposed).toContain("Date");
    expect(exposed).toContain("WWW-Authenticate");
    const ok = await fetch(`${ti.url}/userinfo`, {
      headers: { origin: ORIGIN, authorization: `Bearer ${tokens.access_token}` },
    });
    expect(ok.status).toBe(200);
    expect(ok.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("never opens the admin API to other origins", async () => {
    const res = await fetch(`${ti.url}/admin/users`, {
      headers: { origin: ORIGIN, authorization: `Bearer ${ti.adminToken}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("with an origin list, answers listed origins by name and ignores the rest", async () => {
    const allowed = await fetch(`${listed.url}/jwks`, { headers: { origin: ORIGIN } });
    expect(allowed.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(allowed.headers.get("vary")).toContain("Origin");
    const other = await fetch(`${listed.url}/jwks`, { headers: { origin: "https://evil.test" } });
    expect(other.status).toBe(200);
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("answers preflights only for the OAuth endpoints and allowed origins; others get the ordinary 404", async () => {
    const preflight = (base: string, path: string, origin?: string) =>
      fetch(`${base}${path}`, {
        method: "OPTIONS",
        headers: { ...(origin ? { origin } : {}), "access-control-request-method": "POST" },
      });
    for (const path of ["/revoke", "/introspect", "/userinfo", "/.well-known/openid-configuration"]) {
      const res = await preflight(ti.url, path, ORIGIN);
      expect(res.status, path).toBe(204);
      expect(res.headers.get("access-control-allow-origin"), path).toBe("*");
    }
    for (const [base, path, origin] of [
      [ti.url, "/admin/users", ORIGIN],
      [ti.url, "/metrics", ORIGIN],
      [ti.url, "/token", undefined],
      [listed.url, "/token", "https://evil.test"],
    ] as const) {
      const res = await preflight(base, path, origin);
      expect(res.status, `${path} from ${origin}`).toBe(404);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
      expect(await res.json()).toMatchObject({ error: "not_found" });
    }
  });

  it("leaves scope out of token responses when the grant has none", async () => {
    const client = await createClient(ti, { scope: "" });
    const user = await createUser(ti);
    const tokens = await loginOk(ti, client, user);
    expect(tokens.refresh_token).toMatch(/^egr_/);
    expect("scope" in tokens).toBe(false);
  });
});
