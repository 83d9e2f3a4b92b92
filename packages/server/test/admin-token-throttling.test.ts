import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveAdminToken } from "../src/admin-token.ts";
import { type TestIssuer, startTestIssuer } from "./harness.ts";

async function adminCall(ti: TestIssuer, token: string, ip: string) {
  const res = await fetch(`${ti.url}/admin/users`, {
    headers: { authorization: `Bearer ${token}`, "x-forwarded-for": ip },
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as { error?: string } };
}

/** Guessing the admin token is throttled per address; a short configured token refuses the start. */
describe("admin token guessing", () => {
  let ti: TestIssuer;
  let clock: ManualClock;
  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({
      clock,
      env: { EVERGREEN_TRUST_PROXY: "127.0.0.1", EVERGREEN_RATE_LIMIT_AUTH_FAILURES: "5" },
    });
  });
  afterAll(() => ti?.close());

  it("after 5 wrong tokens an address gets 429 with Retry-After, even with the right token; other addresses do not", async () => {
    for (let i = 0; i < 5; i++) {
      const res = await adminCall(ti, `wrong-token-${i}`, "203.0.113.5");
      expect(res.status).toBe(401);
      expect(res.body.error).toBe("unauthorized");
    }
    const refused = await adminCall(ti, "wrong-token-x", "203.0.113.5");
    expect(refused.status).toBe(429);
    expect(refused.body.error).toBe("too_many_requests");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await adminCall(ti, ti.adminToken, "203.0.113.5")).status).toBe(429);
    // the administrator at another address is not affected
    expect((await adminCall(ti, ti.adminToken, "198.51.100.5")).status).toBe(200);
    // after the window the address may try again
    clock.advance(15 * 60 + 1);
    expect((await adminCall(ti, ti.adminToken, "203.0.113.5")).status).toBe(200);
  });

  it("correct tokens are never counted", async () => {
    for (let i = 0; i < 10; i++)
      expect((await adminCall(ti, ti.adminToken, "198.51.100.6")).status).toBe(200);
  });
});

describe("admin token length", () => {
  const dir = mkdtempSync(join(tmpdir(), "evergreen-admin-token-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("a configured token under 32 characters is refused; 32 is accepted; unset generates one", () => {
    expect(() => resolveAdminToken("x".repeat(31), dir)).toThrow(/at least 32 characters/);
    expect(resolveAdminToken("x".repeat(32), dir)).toEqual({ token: "x".repeat(32), created: false });
    expect(resolveAdminToken(undefined, dir).token.length).toBeGreaterThanOrEqual(32);
  });

  it("`evergreen serve` with a short EVERGREEN_ADMIN_TOKEN exits non-zero with a clear message", async () => {
    const main = resolve(import.meta.dirname, "../../cli/src/main.ts");
    const result = await new Promise<{ code: number | null; stderr: string }>((done) => {
      const child = spawn(process.execPath, ["--import", "tsx", main, "serve", "--port", "0"], {
        env: {
          ...process.env,
          DATABASE_URL: "",
          EVERGREEN_DATA_DIR: join(dir, "serve"),
          EVERGREEN_ADMIN_TOKEN: "short-token",
        },
      });
      let stderr = "";
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      // a generous budget for a loaded machine; a start that got past the check would never exit
      const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      child.on("exit", (code) => {
        clearTimeout(timer);
        done({ code, stderr });
      });
    });
    expect(result.code).not.toBe(0);
    expect(result.code).not.toBeNull();
    expect(result.stderr).toContain("EVERGREEN_ADMIN_TOKEN must be at least 32 characters");
    expect(result.stderr).not.toContain("short-token");
  }, 90_000);
});
