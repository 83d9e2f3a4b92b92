import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "..");
const run = promisify(execFile);

describe("package-lock.json", () => {
  const dir = mkdtempSync(join(tmpdir(), "evergreen-lockfile-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // npm ci refuses a lockfile that is out of sync with the manifests — on a fresh clone, that is
  // the first command that fails. Its dry run performs the same check on the manifests alone.
  it("is what npm ci accepts on a fresh clone (every platform's optional packages included)", async () => {
    const root = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { workspaces: string[] };
    for (const file of [
      "package.json",
      "package-lock.json",
      ...root.workspaces.map((w) => `${w}/package.json`),
    ]) {
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      copyFileSync(join(ROOT, file), join(dir, file));
    }
    const result = await run(
      "npm",
      ["ci", "--dry-run", "--ignore-scripts", "--prefer-offline", "--no-audit"],
      {
        cwd: dir,
        timeout: 120_000,
      },
    ).then(
      () => ({ ok: true, stderr: "" }),
      (error: { stderr?: string }) => ({ ok: false, stderr: error.stderr ?? String(error) }),
    );
    const missing = result.stderr.split("\n").filter((line) => /Missing|Invalid|sync/.test(line));
    expect(missing, "run `npm install`, then `node scripts/lockfile-platforms.mjs`").toEqual([]);
    expect(result.ok, result.stderr).toBe(true);
  }, 180_000);
});
