import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MAIN = resolve(import.meta.dirname, "../src/main.ts");

// Every test here starts node + tsx (+ PGlite) several times; on a loaded 2-core machine one
// start can take tens of seconds. Budgets are generous so only a real hang fails.
/** Per test: several process starts in a row. */
const TEST_BUDGET_MS = 600_000;
/** One command or one server start. */
const PROCESS_BUDGET_MS = 120_000;

/** Kills `child` if it is still running after the process budget; the test then fails with its output. */
function budget(child: ChildProcess, what: string): NodeJS.Timeout {
  const timer = setTimeout(() => {
    process.stderr.write(`${what} still running after ${PROCESS_BUDGET_MS} ms; killed\n`);
    child.kill("SIGKILL");
  }, PROCESS_BUDGET_MS);
  timer.unref();
  return timer;
}

function run(args: string[], env: Record<string, string>, stdin?: string) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
      env: { ...process.env, DATABASE_URL: "", EVERGREEN_ADMIN_TOKEN: "", ...env },
    });
    const timer = budget(child, `evergreen ${args.join(" ")}`);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.stdin.end(stdin ?? "");
    child.on("exit", (code) => {
      clearTimeout(timer);
      done({ code: code ?? -1, stdout, stderr });
    });
  });
}

async function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => r(port));
    });
  });
}

function serve(env: Record<string, string>): Promise<{ child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, ["--import", "tsx", MAIN, "serve"], {
    env: { ...process.env, DATABASE_URL: "", EVERGREEN_ADMIN_TOKEN: "", LOG_LEVEL: "warn", ...env },
  });
  let stderr = "";
  const timer = budget(child, "evergreen serve (starting)");
  return new Promise((ok, fail) => {
    let listening = false;
    child.stderr!.on("data", (d) => {
      stderr += d;
      if (listening || !stderr.includes("listening on")) return;
      listening = true;
      // The banner (admin token included) is written right after "listening on", possibly in a
      // later chunk: wait until the server answers /readyz, by when the whole banner has arrived.
      void untilReady(`http://127.0.0.1:${env.PORT}`).then(() => {
        clearTimeout(timer);
        ok({ child, stderr: () => stderr });
      }, fail);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      fail(new Error(`serve exited ${code}: ${stderr}`));
    });
  });
}

async function untilReady(url: string): Promise<void> {
  const deadline = Date.now() + PROCESS_BUDGET_MS;
  for (;;) {
    const status = await fetch(`${url}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return new Promise((r) => setImmediate(r));
    if (Date.now() > deadline) throw new Error(`${url} not ready after ${PROCESS_BUDGET_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SIGTERM, and SIGKILL if the server has not exited within the process budget. */
function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    child.removeAllListeners("exit");
    const timer = budget(child, "evergreen serve (stopping)");
    child.once("exit", () => {
      clearTimeout(timer);
      r();
    });
    child.kill("SIGTERM");
  });
}

describe("evergreen CLI on the embedded database", { timeout: TEST_BUDGET_MS }, () => {
  let dir: string;
  let env: Record<string, string>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "evergreen-cli-"));
    env = { EVERGREEN_DATA_DIR: dir, PORT: String(await freePort()) };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("explains itself with --help and refuses unknown commands", async () => {
    const help = await run(["--help"], env);
    expect(help.code).toBe(0);
    for (const cmd of ["serve", "migrate", "users", "clients", "keys", "janitor"])
      expect(help.stdout).toContain(cmd);
    const clientsHelp = await run(["clients", "--help"], env);
    expect(clientsHelp.stdout).toContain("--no-rotate");
    const bad = await run(["frobnicate"], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('unknown command "frobnicate"');
  });

  it("manages users and clients directly on the database while no server runs", async () => {
    const add = await run(
      ["users", "add", "alice", "--password-stdin", "--json"],
      env,
      "correct horse battery\n",
    );
    expect(add.code).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({ username: "alice", email: null });
    expect(add.stdout).not.toContain("correct horse");

    const dup = await run(["users", "add", "alice", "--password-stdin"], env, "another password\n");
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain("exists");

    const pub = JSON.parse(
      (await run(["clients", "add", "app", "--public", "--scope", "openid", "--json"], env)).stdout,
    );
    expect(pub).toMatchObject({ client_id: "app", token_endpoint_auth_method: "none", scope: "openid" });
    expect(pub.client_secret).toBeUndefined();
    const conf = JSON.parse(
      (
        await run(
          ["clients", "add", "svc", "--grants", "client_credentials", "--access-ttl", "60", "--json"],
          env,
        )
      ).stdout,
    );
    expect(conf.client_secret).toMatch(/^egs_/);
    expect(conf.access_token_ttl).toBe(60);
    const shown = JSON.parse((await run(["clients", "show", "svc", "--json"], env)).stdout);
    expect(shown.client_secret).toBeUndefined();

    const root = await run(
      ["users", "add", "root", "--admin", "--password-stdin", "--json"],
      env,
      "root password 1\n",
    );
    expect(JSON.parse(root.stdout)).toMatchObject({ username: "root", is_admin: true });
    const demoted = await run(["users", "set-admin", "root", "--off", "--json"], env);
    expect(JSON.parse(demoted.stdout).is_admin).toBe(false);
    const promoted = await run(["users", "set-admin", "root", "--json"], env);
    expect(JSON.parse(promoted.stdout).is_admin).toBe(true);
    const disabled = await run(["users", "disable", "root", "--json"], env);
    expect(JSON.parse(disabled.stdout).disabled_at).not.toBeNull();
    const enabled = await run(["users", "enable", "root", "--json"], env);
    expect(JSON.parse(enabled.stdout).disabled_at).toBeNull();
    await run(["users", "delete", "root"], env);

    const migrate = await run(["migrate"], env);
    expect(migrate.stdout).toContain("schema is up to date");
  });

  it("serves, prints the generated admin token once, and routes admin commands through the running server", async () => {
    const first = await serve(env);
    try {
      const token = /\n\s+(ega_[A-Za-z0-9_-]{43})\n/.exec(first.stderr())?.[1];
      expect(token).toBeDefined();
      expect(statSync(join(dir, "admin-token")).mode & 0o777).toBe(0o600);

      // serve registers the dashboard as a client of its issuer and serves it at /dashboard.
      expect(first.stderr()).toContain(`dashboard http://127.0.0.1:${env.PORT}/dashboard`);
      const dashboardClient = await fetch(`http://127.0.0.1:${env.PORT}/admin/clients/evergreen-dashboard`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(await dashboardClient.json()).toMatchObject({
        token_endpoint_auth_method: "none",
        redirect_uris: [`http://127.0.0.1:${env.PORT}/dashboard/callback`],
        skip_consent: true,
      });
      const config = await fetch(`http://127.0.0.1:${env.PORT}/dashboard/config.json`);
      expect(await config.json()).toMatchObject({ client_id: "evergreen-dashboard", issuer_sign_in: true });

      // The embedded database is locked by the server; the CLI must use the admin API instead.
      const list = await run(["users", "list", "--json"], env);
      expect(list.code).toBe(0);
      expect(JSON.parse(list.stdout).map((u: { username: string }) => u.username)).toEqual(["alice"]);

      const res = await fetch(`http://127.0.0.1:${env.PORT}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "password",
          username: "alice",
          password: "correct horse battery",
          client_id: "app",
        }),
      });
      expect(res.status).toBe(200);
      expect((await res.json()).refresh_token).toMatch(/^egr_/);

      const second = spawn(process.execPath, ["--import", "tsx", MAIN, "serve"], {
        env: { ...process.env, ...env, PORT: String(await freePort()), DATABASE_URL: "" },
      });
      const secondBudget = budget(second, "second evergreen serve");
      let err = "";
      second.stderr.on("data", (d) => {
        err += d;
      });
      const code = await new Promise((r) => second.on("exit", r));
      clearTimeout(secondBudget);
      expect(code).toBe(1);
      expect(err).toContain("in use by process");
    } finally {
      await stop(first.child);
    }
    const again = await serve(env);
    try {
      expect(again.stderr()).not.toContain("ega_");
    } finally {
      await stop(again.child);
    }
  });

  it("rotates signing keys and keeps the previous one published", async () => {
    const rotated = JSON.parse((await run(["keys", "rotate", "--json"], env)).stdout);
    const keys = JSON.parse((await run(["keys", "list", "--json"], env)).stdout) as {
      kid: string;
      current: boolean;
    }[];
    expect(keys.length).toBe(2);
    expect(keys.find((k) => k.current)?.kid).toBe(rotated.kid);
  });

  it("turns rotation off and on again with clients update", async () => {
    const off = JSON.parse((await run(["clients", "update", "app", "--no-rotate", "--json"], env)).stdout);
    expect(off.rotate_refresh_tokens).toBe(false);
    const on = JSON.parse((await run(["clients", "update", "app", "--rotate", "--json"], env)).stdout);
    expect(on.rotate_refresh_tokens).toBe(true);
  });
});

describe("evergreen serve when the first start fails", { timeout: TEST_BUDGET_MS }, () => {
  it("still shows the generated admin token on the next successful start", async () => {
    const dir = mkdtempSync(join(tmpdir(), "evergreen-cli-first-"));
    const busy = createServer();
    const busyPort = await new Promise<number>((r) =>
      busy.listen(0, "127.0.0.1", () => r((busy.address() as { port: number }).port)),
    );
    try {
      const failed = await run(["serve"], {
        EVERGREEN_DATA_DIR: dir,
        PORT: String(busyPort),
        LOG_LEVEL: "silent",
      });
      expect(failed.code).toBe(1);
      expect(failed.stderr).not.toContain("ega_");
      const bad = await run(["serve", "--port", "abc"], { EVERGREEN_DATA_DIR: dir });
      expect(bad.code).toBe(2);
      const ok = await serve({ EVERGREEN_DATA_DIR: dir, PORT: String(await freePort()) });
      try {
        const stored = readFileSync(join(dir, "admin-token"), "utf8").trim();
        expect(ok.stderr()).toContain(stored);
      } finally {
        await stop(ok.child);
      }
    } finally {
      busy.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
