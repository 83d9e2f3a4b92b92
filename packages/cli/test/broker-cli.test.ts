import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseKeyRing } from "@evergreen/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type TestDatabase, createTestDatabase, freePort } from "../../server/test/harness.ts";
import { type FakeProvider, startFakeProvider } from "../../broker/test/support/fake-provider.ts";

const MAIN = resolve(import.meta.dirname, "../src/main.ts");

function run(args: string[], env: Record<string, string>, stdin?: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
      env: { ...process.env, DATABASE_URL: "", EVERGREEN_ADMIN_TOKEN: "", LOG_LEVEL: "warn", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.stdin.end(stdin ?? "");
    child.on("exit", (code) => done({ code: code ?? -1, stdout, stderr }));
  });
}

/** Spawns a long-running command and resolves once its stderr shows `ready`. */
function start(args: string[], env: Record<string, string>, ready: string) {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
    env: { ...process.env, DATABASE_URL: "", EVERGREEN_ADMIN_TOKEN: "", LOG_LEVEL: "warn", ...env },
  });
  let stderr = "";
  child.stderr!.on("data", (d) => {
    stderr += d;
  });
  return new Promise<{ child: ChildProcess; stderr: () => string }>((ok, fail) => {
    const timer = setInterval(() => {
      if (stderr.includes(ready)) {
        clearInterval(timer);
        ok({ child, stderr: () => stderr });
      }
    }, 50);
    child.on("exit", (code) => {
      clearInterval(timer);
      fail(new Error(`exited ${code}: ${stderr}`));
    });
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => {
    child.once("exit", (code) => r(code));
    child.kill("SIGTERM");
  });
}

const TOKENS = (t: { access_token: string; refresh_token: string }, expiresIn: number) =>
  JSON.stringify({ ...t, expires_in: expiresIn });

describe("evergreen broker commands", () => {
  let fake: FakeProvider;
  let pg: TestDatabase;
  beforeAll(async () => {
    fake = await startFakeProvider();
    pg = await createTestDatabase("postgres");
  });
  afterAll(async () => {
    await fake?.close();
    await pg?.drop();
  });

  it("explains every broker command with --help", async () => {
    for (const cmd of [["providers"], ["connections"], ["api-keys"], ["broker"]]) {
      const res = await run([...cmd, "--help"], {});
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain(`evergreen ${cmd[0]}`);
    }
    const keys = await run(["keys", "--help"], {});
    expect(keys.stdout).toContain("rotate-broker");
  }, 120_000);

  it("manages providers, connections and API keys on PostgreSQL, and a separate worker refreshes", async () => {
    const env = { DATABASE_URL: pg.url! };
    const add = await run(
      [
        "providers",
        "add",
        "acme",
        "--token-url",
        fake.url,
        "--client-id",
        "cid",
        "--client-secret-stdin",
        "--auth",
        "basic",
        "--json",
      ],
      env,
      "cli-secret\n",
    );
    expect(add.code, add.stderr).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({
      name: "acme",
      has_client_secret: true,
      auth_style: "basic",
    });
    expect(add.stdout).not.toContain("cli-secret");

    const tokens = fake.issue();
    const conn = await run(
      ["connections", "add", "--provider", "acme", "--metadata", '{"team":"billing"}', "--json"],
      env,
      TOKENS(tokens, 0),
    );
    expect(conn.code, conn.stderr).toBe(0);
    const id = JSON.parse(conn.stdout).id as string;
    expect(conn.stdout).not.toContain(tokens.access_token);

    const ls = await run(["connections", "ls", "--provider", "acme"], env);
    expect(ls.stdout).toContain(id);
    const key = await run(["api-keys", "add", "svc", "--providers", "acme", "--json"], env);
    expect(JSON.parse(key.stdout).key).toMatch(/^egk_/);

    // A worker process on its own refreshes the (already expired) connection, then stops on SIGTERM.
    const worker = await start(["broker", "worker"], env, "broker worker running");
    let generation = 1;
    const deadline = Date.now() + 60_000;
    while (generation === 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      const { rows } = await pg.db.query<{ generation: number }>(
        "SELECT generation FROM broker_connections WHERE id = $1",
        [id],
      );
      generation = rows[0]!.generation;
    }
    expect(generation).toBe(2);
    expect(await stop(worker.child)).toBe(0);
    for (const t of fake.issued) expect(worker.stderr()).not.toContain(t);

    const show = await run(["connections", "show", id, "--events", "--json"], env);
    expect(show.stdout).toContain('"refreshed"');
    const reauth = await run(["connections", "reauth", id, "--json"], env, TOKENS(fake.issue(), 3600));
    expect(JSON.parse(reauth.stdout)).toMatchObject({ status: "active", generation: 3 });
    const dev = parseKeyRing(undefined).current.key.toString("base64");
    const ring = `k9:${Buffer.alloc(32, 9).toString("base64")},dev:${dev}`;
    const rotate = await run(["keys", "rotate-broker", "--json"], { ...env, EVERGREEN_ENCRYPTION_KEY: ring });
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(JSON.parse(rotate.stdout)).toMatchObject({ key_id: "k9", connections: 1, providers: 1 });
    const { rows: sealed } = await pg.db.query<{ key_id: string }>("SELECT key_id FROM broker_connections");
    expect(sealed.map((r) => r.key_id)).toEqual(["k9"]);
    const rm = await run(["providers", "rm", "acme"], env);
    expect(rm.code).toBe(1);
    expect(rm.stderr).toContain("still has connections");
  }, 240_000);

  it("serves the broker beside the issuer on the embedded database; commands go through it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "evergreen-broker-cli-"));
    const port = await freePort();
    const env = {
      EVERGREEN_DATA_DIR: dir,
      PORT: String(port),
      EVERGREEN_ADMIN_TOKEN: "adm-broker-cli-at-least-32-characters-long",
    };
    const server = await start(["serve"], env, "listening on");
    try {
      const add = await run(["providers", "add", "acme", "--template", "google", "--client-id", "x"], env);
      expect(add.code, add.stderr).toBe(0);
      expect(add.stdout).toContain("oauth2.googleapis.com");
      const conn = await run(
        ["connections", "add", "--provider", "acme", "--json"],
        env,
        TOKENS(fake.issue(), 3600),
      );
      const id = JSON.parse(conn.stdout).id;
      const key = JSON.parse((await run(["api-keys", "add", "svc", "--json"], env)).stdout).key;
      const res = await fetch(`http://127.0.0.1:${port}/v1/connections/${id}/token?min_validity=60`, {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-store");
      expect((await res.json()).generation).toBe(1);
    } finally {
      expect(await stop(server.child)).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
