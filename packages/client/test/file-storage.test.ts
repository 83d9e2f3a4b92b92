/** The Node file store: encrypted at rest, mode 0600, and shared safely by processes. */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSession } from "../src/index.ts";
import { fileLock, fileStorage } from "../src/node/index.ts";
import { type IssuerFixture, PASSWORD, startIssuerFixture, TOKEN_TTL, viaProxy } from "./support/issuer.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "evergreen-client-"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("fileStorage", () => {
  it("encrypts the tokens in a 0600 file and reads them back", async () => {
    const path = join(dir, "a", "tokens.json");
    const storage = fileStorage({ path, key: "a passphrase" });
    await storage.set("session", '{"refresh":"egr_secret-value"}');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, "a"))).mode & 0o777).toBe(0o700);
    expect(await readFile(path, "utf8")).not.toContain("egr_secret-value");
    expect(await fileStorage({ path, key: "a passphrase" }).get("session")).toBe(
      '{"refresh":"egr_secret-value"}',
    );
    await expect(fileStorage({ path, key: "another passphrase" }).get("session")).rejects.toThrow();
    await storage.remove("session");
    expect(await storage.get("session")).toBeNull();
  });

  it("without a key keeps a random one beside the file, also 0600", async () => {
    const path = join(dir, "not-yet-created", "b.json");
    await fileStorage({ path }).set("k", "v");
    expect((await stat(`${path}.key`)).mode & 0o777).toBe(0o600);
    expect((await stat(`${path}.key`)).size).toBe(32);
    expect(await fileStorage({ path }).get("k")).toBe("v");
  });

  it("the file lock lets one holder in at a time", async () => {
    const a = fileLock(join(dir, "missing-dir", "c.lock"));
    const b = fileLock(join(dir, "missing-dir", "c.lock")); // a second instance, as another process would have
    let inside = 0;
    let most = 0;
    const hold = async () => {
      inside++;
      most = Math.max(most, inside);
      await new Promise((resolve) => setTimeout(resolve, 20));
      inside--;
    };
    await Promise.all([a, b, a, b, a, b].map((lock) => lock.run("x", hold)));
    expect(most).toBe(1);
  });
});

describe("two Node processes writing one file store", { timeout: 120_000 }, () => {
  it("lose no update: every read-modify-write holds the file lock", async () => {
    const path = join(dir, "writers", "tokens.json");
    const key = "writers passphrase";
    const worker = fileURLToPath(new URL("./support/file-writer-worker.ts", import.meta.url));
    const startAt = Date.now() + 1500;
    const run = (prefix: string) =>
      promisify(execFile)(
        process.execPath,
        ["--import", "tsx", worker, JSON.stringify({ path, key, prefix, count: 25, startAt })],
        { cwd: fileURLToPath(new URL("../../..", import.meta.url)) },
      );
    await Promise.all([run("a"), run("b")]);
    const storage = fileStorage({ path, key });
    const missing: string[] = [];
    for (const prefix of ["a", "b"]) {
      for (let i = 0; i < 25; i++) {
        if ((await storage.get(`${prefix}${i}`)) !== String(i)) missing.push(`${prefix}${i}`);
      }
    }
    expect(missing).toEqual([]);
  });
});

// Spawned processes boot slowly on a busy machine: generous budgets.
describe("two Node processes sharing one file store", { timeout: 120_000 }, () => {
  let fixture: IssuerFixture;
  beforeAll(async () => {
    fixture = await startIssuerFixture();
  }, 120_000);
  afterAll(() => fixture?.close());

  it("refresh once between them", async () => {
    const path = join(dir, "shared", "tokens.json");
    const key = "shared passphrase";
    const clientId = await fixture.client({ refresh_token_reuse_grace: 0 });
    const login = createSession({
      ...viaProxy(fixture, clientId),
      storage: fileStorage({ path, key }),
      autoRefresh: false,
    });
    const { refreshToken: first } = await login.loginWithPassword(fixture.username, PASSWORD);
    login.dispose();

    const worker = fileURLToPath(new URL("./support/file-store-worker.ts", import.meta.url));
    fixture.time.jump(TOKEN_TTL * 1000 + 1000); // the access token in the file has expired
    const options = {
      path,
      key,
      issuer: fixture.issuer.url,
      clientId,
      tokenEndpoint: `${fixture.proxy.url}/token`,
      resource: `${fixture.proxy.url}/userinfo`,
      offset: fixture.time.offset,
      requests: 20,
    };
    const workers = [1, 2].map(() =>
      spawn(process.execPath, ["--import", "tsx", worker, JSON.stringify(options)], {
        cwd: fileURLToPath(new URL("../../..", import.meta.url)),
        stdio: ["pipe", "pipe", "inherit"],
      }),
    );
    const outputs = workers.map((child) => {
      let stdout = "";
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
      });
      return {
        ready: new Promise<void>((resolve) =>
          child.stdout.on("data", () => stdout.startsWith("ready") && resolve()),
        ),
        done: new Promise<string>((resolve) =>
          child.on("exit", () => resolve(stdout.slice("ready\n".length))),
        ),
      };
    });
    // However long each took to boot, both start the race at once.
    await Promise.all(outputs.map((o) => o.ready));
    for (const child of workers) child.stdin.end("go\n");
    const results = await Promise.all(outputs.map(async (o) => ({ stdout: await o.done })));
    const statuses = results.flatMap((r) => JSON.parse(r.stdout).statuses as number[]);
    expect(statuses).toHaveLength(40);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(fixture.proxy.refreshes()).toHaveLength(1);
    expect(fixture.proxy.refreshes()[0]?.form?.get("refresh_token")).toBe(first);
    const stored = JSON.parse(
      (await fileStorage({ path, key }).get(`evergreen:${fixture.issuer.url}:${clientId}`)) ?? "",
    );
    expect(stored.tokens.refreshToken).not.toBe(first);
  });
});
