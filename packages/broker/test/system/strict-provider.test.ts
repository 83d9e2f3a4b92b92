/**
 * The strict provider the system tests rely on: if it did not revoke on reuse, count reuse or
 * fail as told, the broker tests could not fail. Plain HTTP calls, no broker.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StrictProvider, startStrictProvider } from "./support/strict-provider.ts";

async function refresh(
  p: StrictProvider,
  refreshToken: string,
  init: { json?: boolean; basic?: string } = {},
) {
  const headers: Record<string, string> = {
    "content-type": init.json ? "application/json" : "application/x-www-form-urlencoded",
  };
  if (init.basic) headers.authorization = `Basic ${Buffer.from(init.basic).toString("base64")}`;
  const body = init.json
    ? JSON.stringify({ grant_type: "refresh_token", refresh_token: refreshToken })
    : new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken }).toString();
  const res = await fetch(p.url, { method: "POST", headers, body, signal: AbortSignal.timeout(3000) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text, headers: res.headers };
}

describe("strict provider", () => {
  let p: StrictProvider;
  beforeAll(async () => {
    p = await startStrictProvider({
      latencyMs: [0, 5],
      accessTokenTtl: 60,
      clientId: "c",
      clientSecret: "s",
    });
  });
  afterAll(() => p.close());

  it("rotates, and a reused refresh token revokes the whole grant for good", async () => {
    const g = p.seedGrant(30);
    const r1 = await refresh(p, g.refresh_token, { basic: "c:s" });
    expect(r1.status, r1.text).toBe(200);
    expect(r1.json.expires_in).toBe(60);
    expect(p.isLive(r1.json.access_token, Date.now(), 59)).toBe(true);
    expect(p.isLive(g.access_token)).toBe(true);
    const reuse = await refresh(p, g.refresh_token, { basic: "c:s" });
    expect(reuse.status).toBe(400);
    expect(reuse.json.error).toBe("invalid_grant");
    expect(p.grant(g.grantId).reuses).toBe(1);
    expect(p.reuseCount).toBe(1);
    // the successor is dead too, and so are the access tokens
    const after = await refresh(p, r1.json.refresh_token, { basic: "c:s" });
    expect(after.json.error).toBe("invalid_grant");
    expect(p.isLive(r1.json.access_token)).toBe(false);
    expect(p.isLive(g.access_token)).toBe(false);
  });

  it("checks client credentials in Basic or in the body, and reads JSON bodies", async () => {
    const g = p.seedGrant();
    expect((await refresh(p, g.refresh_token, { basic: "c:wrong" })).status).toBe(401);
    const ok = await refresh(p, g.refresh_token, { json: true, basic: "c:s" });
    expect(ok.status, ok.text).toBe(200);
    expect(p.requestsFor(g.grantId).at(-1)!.bodyFormat).toBe("json");
  });

  it("fails as told without rotating: 500, garbage, 429 + Retry-After, hang; invalid_grant revokes", async () => {
    const g = p.seedGrant();
    p.setGrantMode(g.grantId, "error_500");
    expect((await refresh(p, g.refresh_token, { basic: "c:s" })).status).toBe(500);
    p.setGrantMode(g.grantId, "garbage");
    const garbage = await refresh(p, g.refresh_token, { basic: "c:s" });
    expect(garbage.status).toBe(200);
    expect(garbage.json).toBeUndefined();
    p.setGrantMode(g.grantId, "rate_limited");
    const limited = await refresh(p, g.refresh_token, { basic: "c:s" });
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("5");
    p.setGrantMode(g.grantId, "hang");
    await expect(refresh(p, g.refresh_token, { basic: "c:s" })).rejects.toThrow();
    expect(p.grant(g.grantId).refreshes).toBe(0);
    p.setGrantMode(g.grantId, undefined);
    expect((await refresh(p, g.refresh_token, { basic: "c:s" })).status).toBe(200);
    p.setGrantMode(g.grantId, "invalid_grant");
    const cur = p.grant(g.grantId).currentRefreshToken!;
    expect((await refresh(p, cur, { basic: "c:s" })).json.error).toBe("invalid_grant");
    expect(p.grant(g.grantId).revokedBecause).toBe("invalid_grant");
    expect(p.reuseCount).toBe(1); // only the first test's
  });

  it("holds requests until released: dropped ones never rotate, processed ones do", async () => {
    const a = p.seedGrant();
    const b = p.seedGrant();
    p.setMode("hold");
    const ra = refresh(p, a.refresh_token, { basic: "c:s" }).catch((e) => e);
    const rb = refresh(p, b.refresh_token, { basic: "c:s" });
    while (p.heldCount() < 2) await new Promise((r) => setTimeout(r, 10));
    p.setMode("ok");
    expect(p.releaseHeld("drop", a.grantId)).toBe(1);
    expect(p.releaseHeld("process", b.grantId)).toBe(1);
    expect(await ra).toBeInstanceOf(Error);
    expect((await rb).status).toBe(200);
    expect(p.grant(a.grantId).refreshes).toBe(0);
    expect(p.grant(b.grantId).refreshes).toBe(1);
  });

  it("answers the seed-004 shape with 201", async () => {
    const q = await startStrictProvider({ responseShape: "seed-004", latencyMs: [0, 0] });
    try {
      const g = q.seedGrant();
      const res = await fetch(q.url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refresh_token: g.refresh_token }),
      });
      expect(res.status).toBe(201);
      const body: any = await res.json();
      expect(q.isLive(body.authorization.token)).toBe(true);
      expect(Date.parse(body.authorization.expires_at)).toBeGreaterThan(Date.now());
      expect(body.refresh.token).toBe(q.grant(g.grantId).currentRefreshToken);
    } finally {
      await q.close();
    }
  });
});
