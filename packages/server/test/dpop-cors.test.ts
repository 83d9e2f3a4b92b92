/** A browser app on another origin may send the DPoP header and read DPoP-Nonce (RFC 9449 in browsers). */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dpopKey, makeProof } from "./dpop-keys.ts";
import { type TestIssuer, startTestIssuer } from "./harness.ts";
import { createClient, createUser, encodeForm } from "./helpers.ts";

const ORIGIN = "https://app.example.test";

describe("CORS for DPoP", () => {
  let ti: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer({ env: { EVERGREEN_CORS_ORIGINS: ORIGIN } });
  });
  afterAll(() => ti?.close());

  it("allows the DPoP request header in preflights of /token and /userinfo", async () => {
    for (const [path, method] of [
      ["/token", "POST"],
      ["/userinfo", "GET"],
    ] as const) {
      const res = await fetch(`${ti.url}${path}`, {
        method: "OPTIONS",
        headers: {
          origin: ORIGIN,
          "access-control-request-method": method,
          "access-control-request-headers": "content-type, dpop",
        },
      });
      expect(res.status).toBe(204);
      const allowed = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase().split(/, */);
      expect(allowed).toContain("dpop");
    }
  });

  it("exposes DPoP-Nonce on a token response", async () => {
    const client = await createClient(ti);
    const user = await createUser(ti);
    const key = await dpopKey();
    const res = await fetch(`${ti.url}/token`, {
      method: "POST",
      headers: {
        origin: ORIGIN,
        "content-type": "application/x-www-form-urlencoded",
        dpop: await makeProof(key, { htu: `${ti.url}/token` }),
      },
      body: encodeForm({
        grant_type: "password",
        username: user.username,
        password: user.password,
        client_id: client.client_id,
      }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe(ORIGIN);
    expect(res.headers.get("access-control-expose-headers")).toContain("DPoP-Nonce");
    expect(res.headers.get("dpop-nonce")).toBeTruthy();
  });
});
