import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, parseTrustProxy } from "../src/config.ts";
import { type TestIssuer, startTestIssuer } from "./harness.ts";
import { postForm } from "./helpers.ts";

/** Two requests "from" different X-Forwarded-For addresses against a per-IP budget of 1. */
async function secondFromAnotherAddress(ti: TestIssuer): Promise<number> {
  const send = (ip: string) =>
    postForm(ti, "/token", { grant_type: "nope" }, false, { "x-forwarded-for": ip });
  expect((await send("203.0.113.1")).status).toBe(400);
  return (await send("203.0.113.2")).status;
}

describe("EVERGREEN_TRUST_PROXY", () => {
  it("parses a list of addresses, CIDRs and names; 1/true mean loopback; unset/0/false trust nobody", () => {
    expect(parseTrustProxy(undefined)).toBe(false);
    expect(parseTrustProxy("")).toBe(false);
    expect(parseTrustProxy("0")).toBe(false);
    expect(parseTrustProxy("false")).toBe(false);
    expect(parseTrustProxy("1")).toEqual(["loopback"]);
    expect(parseTrustProxy("true")).toEqual(["loopback"]);
    expect(parseTrustProxy("10.0.0.1, 10.1.0.0/16,2001:db8::/32 ,uniquelocal")).toEqual([
      "10.0.0.1",
      "10.1.0.0/16",
      "2001:db8::/32",
      "uniquelocal",
    ]);
    for (const bad of ["*", "2", "anyone", "10.0.0.0/33", "10.0.0/8", "example.com"]) {
      expect(() => parseTrustProxy(bad), bad).toThrow(/EVERGREEN_TRUST_PROXY/);
    }
    expect(() => loadConfig({ EVERGREEN_TRUST_PROXY: "*" })).toThrow(/EVERGREEN_TRUST_PROXY/);
  });

  describe("with the connecting address listed", () => {
    let ti: TestIssuer;
    beforeAll(async () => {
      ti = await startTestIssuer({
        env: { EVERGREEN_TRUST_PROXY: "127.0.0.0/8", EVERGREEN_RATE_LIMIT_PER_IP: "1" },
      });
    });
    afterAll(() => ti?.close());

    it("X-Forwarded-For names the client (each address has its own budget)", async () => {
      expect(await secondFromAnotherAddress(ti)).toBe(400);
    });
  });

  describe("with only other proxies listed", () => {
    let ti: TestIssuer;
    beforeAll(async () => {
      ti = await startTestIssuer({
        env: { EVERGREEN_TRUST_PROXY: "10.0.0.0/8", EVERGREEN_RATE_LIMIT_PER_IP: "1" },
      });
    });
    afterAll(() => ti?.close());

    it("X-Forwarded-For from anyone else is ignored (both requests share the socket address's budget)", async () => {
      expect(await secondFromAnotherAddress(ti)).toBe(429);
    });
  });

  describe("unset", () => {
    let ti: TestIssuer;
    beforeAll(async () => {
      ti = await startTestIssuer({ env: { EVERGREEN_RATE_LIMIT_PER_IP: "1" } });
    });
    afterAll(() => ti?.close());

    it("X-Forwarded-For is ignored", async () => {
      expect(await secondFromAnotherAddress(ti)).toBe(429);
    });
  });
});
