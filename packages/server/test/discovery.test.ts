import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import { createClient, createUser, loginOk, refreshOk } from "./helpers.ts";

describe.each(DATABASES)("discovery metadata on %s", (kind) => {
  let ti: TestIssuer;

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind });
  });
  afterAll(() => ti?.close());

  const get = async (path: string) => {
    const res = await fetch(ti.url + path);
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, any> };
  };

  it("serves the same RFC 8414 document at both well-known paths", async () => {
    const as = await get("/.well-known/oauth-authorization-server");
    const oidc = await get("/.well-known/openid-configuration");
    expect(as.status).toBe(200);
    expect(oidc.status).toBe(200);
    expect(oidc.body).toEqual(as.body);
    expect(as.body.issuer).toBe(ti.config.issuer);
    expect(as.body.issuer).toBe(ti.url);
  });

  it("names every endpoint, and every named endpoint answers at that URL", async () => {
    const { body: meta } = await get("/.well-known/oauth-authorization-server");
    const endpoints = {
      token_endpoint: "/token",
      jwks_uri: "/jwks",
      revocation_endpoint: "/revoke",
      introspection_endpoint: "/introspect",
      userinfo_endpoint: "/userinfo",
    };
    for (const [field, path] of Object.entries(endpoints))
      expect(meta[field]).toBe(`${ti.config.issuer}${path}`);

    // discovered URLs lead to live endpoints (never the 404 handler)
    const jwks = await fetch(meta.jwks_uri);
    expect(jwks.status).toBe(200);
    expect(((await jwks.json()) as any).keys.length).toBeGreaterThan(0);
    const form = {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "",
    };
    for (const url of [meta.token_endpoint, meta.revocation_endpoint, meta.introspection_endpoint]) {
      const res = await fetch(url, form);
      expect(res.status, url).toBe(400);
      expect(((await res.json()) as any).error).toBe("invalid_request");
    }
    expect((await fetch(meta.userinfo_endpoint)).status).toBe(401);
    expect((await fetch(`${ti.url}/no-such-endpoint`)).status).toBe(404);

    // and a client that only knows the metadata can log in and refresh
    const app = await createClient(ti);
    const user = await createUser(ti);
    const t = await loginOk(ti, app, user);
    await refreshOk(ti, app, t.refresh_token!);
  });

  it("lists grants, auth methods and the signing algorithm actually in use", async () => {
    const { body: meta } = await get("/.well-known/openid-configuration");
    expect(meta.grant_types_supported).toEqual(
      expect.arrayContaining(["password", "refresh_token", "client_credentials"]),
    );
    expect(meta.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(["none", "client_secret_basic", "client_secret_post"]),
    );
    expect(meta.revocation_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(["none", "client_secret_basic", "client_secret_post"]),
    );
    expect(meta.introspection_endpoint_auth_methods_supported).not.toContain("none");
    const alg = ti.issuer.ctx.keys.current().alg;
    expect(meta.access_token_signing_alg_values_supported).toEqual([alg]);
  });

  it("health and metrics endpoints answer", async () => {
    expect((await get("/healthz")).body).toEqual({ status: "ok" });
    const metrics = await fetch(`${ti.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("evergreen_token_requests_total");
  });
  it("has every field OpenID Connect Discovery requires, and announces only what is implemented", async () => {
    const { body: meta } = await get("/.well-known/openid-configuration");
    const iss = ti.config.issuer;
    expect(meta.authorization_endpoint).toBe(`${iss}/authorize`);
    expect(meta.end_session_endpoint).toBe(`${iss}/end-session`);
    expect(meta.response_types_supported).toEqual(["code"]);
    expect(meta.response_modes_supported).toEqual(["query"]);
    expect(meta.subject_types_supported).toEqual(["public"]);
    expect(meta.id_token_signing_alg_values_supported).toEqual([ti.config.signingAlg]);
    expect(meta.code_challenge_methods_supported).toEqual(["S256"]);
    expect(meta.grant_types_supported).toContain("authorization_code");
    expect(meta.authorization_response_iss_parameter_supported).toBe(true);
    // OIDC Discovery defaults request_uri_parameter_supported to true: say false explicitly
    expect(meta.request_uri_parameter_supported).toBe(false);
    expect(meta.request_parameter_supported).toBe(false);
    // the announced browser endpoints answer (an error page for an empty request, not a 404)
    const authorize = await fetch(meta.authorization_endpoint, { redirect: "manual" });
    expect(authorize.status).toBe(400);
    expect(authorize.headers.get("content-type")).toMatch(/^text\/html/);
    const endSession = await fetch(meta.end_session_endpoint, { redirect: "manual" });
    expect(endSession.status).toBe(200);
  });
});
