import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestDatabase, createTestDatabase, freePort } from "./harness.ts";
import {
  type HttpResult,
  type TestClient,
  auditEvents,
  createClient,
  createUser,
  family,
  familyOf,
  liveTokens,
  loginOk,
  refresh,
} from "./helpers.ts";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CLI = join(ROOT, "packages/cli/src/main.ts");
const ADMIN_TOKEN = "multi-process-admin-token-at-least-32-chars";
// Both processes stand behind one issuer URL, as behind a load balancer.
const ISSUER = "http://evergreen.test";

// Starting node + tsx on a loaded 2-core machine can take tens of seconds: generous budgets,
// so only a real hang fails.
const START_BUDGET_MS = 120_000;

interface Proc {
  url: string;
  child: ChildProcess;
  stderr: string[];
}

async function serve(databaseUrl: string, dataDir: string): Promise<Proc> {
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", "tsx", CLI, "serve"], {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: "127.0.0.1",
      ISSUER,
      EVERGREEN_ADMIN_TOKEN: ADMIN_TOKEN,
      EVERGREEN_DATA_DIR: dataDir,
      LOG_LEVEL: "warn",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const proc: Proc = { url: `http://127.0.0.1:${port}`, child, stderr: [] };
  child.stderr!.on("data", (d) => proc.stderr.push(String(d)));
  const deadline = Date.now() + START_BUDGET_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`evergreen serve exited: ${proc.stderr.join("")}`);
    try {
      // Ready (keys loaded, schema current, database answering), not merely alive.
      const res = await fetch(`${proc.url}/readyz`);
      if (res.ok) return proc;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill("SIGKILL");
  throw new Error(`evergreen serve did not become ready: ${proc.stderr.join("")}`);
}

async function stop(proc: Proc | undefined): Promise<void> {
  if (!proc || proc.child.exitCode !== null) return;
  const exited = new Promise((r) => proc.child.once("exit", r));
  proc.child.kill("SIGTERM");
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), 30_000);
  await exited;
  clearTimeout(timer);
}

/** The harness's helpers only need url, adminToken, admin() and db. */
function asIssuer(p: Proc, db: TestDatabase) {
  return {
    url: p.url,
    adminToken: ADMIN_TOKEN,
    db: db.db,
    async admin(method: string, path: string, body?: unknown) {
      const res = await fetch(p.url + path, {
        method,
        headers: {
          authorization: `Bearer ${ADMIN_TOKEN}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
  } as any;
}

describe.skipIf(!existsSync(CLI))(
  "two `evergreen serve` processes on one PostgreSQL database",
  { timeout: 120_000 },
  () => {
    let db: TestDatabase;
    let dirs: string[] = [];
    let a: Proc;
    let b: Proc;

    beforeAll(async () => {
      db = await createTestDatabase("postgres");
      dirs = [mkdtempSync(join(tmpdir(), "evergreen-a-")), mkdtempSync(join(tmpdir(), "evergreen-b-"))];
      // started one after the other's migration and key generation, then concurrently serving
      [a, b] = await Promise.all([serve(db.url!, dirs[0]!), serve(db.url!, dirs[1]!)]);
    }, 2 * START_BUDGET_MS);
    afterAll(async () => {
      await Promise.all([stop(a), stop(b)]);
      await db?.drop();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it("both serve the same issuer and keys", async () => {
      const [ja, jb] = await Promise.all([a, b].map(async (p) => (await fetch(`${p.url}/jwks`)).json()));
      expect(ja).toEqual(jb);
      expect((ja as any).keys).toHaveLength(1);
    });

    it("refreshing one family through both processes at once: all succeed, one successor, one live token", async () => {
      const A = asIssuer(a, db);
      const B = asIssuer(b, db);
      const app: TestClient = await createClient(A, { refresh_token_reuse_grace: 60 });
      const user = await createUser(A);
      const t1 = await loginOk(B, app, user);
      const fid = await familyOf(db.db, t1.refresh_token!);

      let rt = t1.refresh_token!;
      for (let round = 0; round < 3; round++) {
        const results: HttpResult[] = await Promise.all(
          Array.from({ length: 40 }, (_, i) => refresh(i % 2 === 0 ? A : B, app, rt)),
        );
        expect(
          results.map((r) => r.status),
          results.map((r) => r.text).join("\n"),
        ).toEqual(Array(40).fill(200));
        const successors = new Set(results.map((r) => r.body.refresh_token));
        expect(successors.size).toBe(1);
        expect(new Set(results.map((r) => r.body.access_token)).size).toBe(1);
        const [next] = [...successors];
        expect(next).not.toBe(rt);
        rt = next as string;
        expect(await liveTokens(db.db, fid)).toBe(1);
      }
      expect((await family(db.db, fid))!.revoked_at).toBeNull();
      expect(await auditEvents(db.db, "refresh_token_reuse", fid)).toHaveLength(0);
      expect(await auditEvents(db.db, "refresh", fid)).toHaveLength(3);
      const { rows } = await db.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM refresh_tokens WHERE family_id = $1",
        [fid],
      );
      expect(rows[0]!.n).toBe(4);

      // the access token works on either process
      const last = await refresh(A, app, rt);
      expect(last.status).toBe(200);
      for (const p of [a, b]) {
        const res = await fetch(`${p.url}/userinfo`, {
          headers: { authorization: `Bearer ${last.body.access_token}` },
        });
        expect(res.status).toBe(200);
      }
    });
  },
);
