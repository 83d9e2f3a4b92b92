import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestIssuer, startTestIssuer } from "./harness.ts";

const TOKEN = "metrics-token-for-the-test-0123456789";

function metrics(ti: TestIssuer, authorization?: string) {
  return fetch(`${ti.url}/metrics`, { headers: authorization ? { authorization } : {} });
}

describe("/metrics with EVERGREEN_METRICS_TOKEN", () => {
  let ti: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer({
      env: { EVERGREEN_METRICS_TOKEN: TOKEN, EVERGREEN_RATE_LIMIT_AUTH_FAILURES: "3" },
    });
  });
  afterAll(() => ti?.close());

  it("requires the token as a Bearer token; wrong ones are refused and throttled", async () => {
    const none = await metrics(ti);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toMatch(/^Bearer /);
    expect(await none.text()).not.toContain("evergreen_token_requests_total");
    const ok = await metrics(ti, `Bearer ${TOKEN}`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("evergreen_token_requests_total");
    expect((await metrics(ti, "Bearer wrong-1")).status).toBe(401);
    expect((await metrics(ti, "Bearer wrong-2")).status).toBe(401);
    const throttled = await metrics(ti, `Bearer ${TOKEN}`);
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get("retry-after")).toBeTruthy();
  });
});

describe("/metrics without EVERGREEN_METRICS_TOKEN", () => {
  let ti: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer();
  });
  afterAll(() => ti?.close());

  it("stays open (the documented default)", async () => {
    const res = await metrics(ti);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("evergreen_token_requests_total");
  });
});
