/** The SDK never keeps a Node process alive: a script that only creates a session exits by itself. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const script = fileURLToPath(new URL("./support/idle-session.ts", import.meta.url));

/**
 * Runs the script; resolves with its exit code, or "still running" after `limit` ms (then kills
 * it). The limit is generous: booting tsx on a busy 2-core machine can take many seconds.
 */
function run(
  mode: string,
  limit = 60_000,
): Promise<{ code: number | null | "still running"; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, mode], {
      cwd: fileURLToPath(new URL("../../..", import.meta.url)),
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve({ code: "still running", stdout });
    }, limit);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
}

describe("a Node process with a session", { timeout: 90_000 }, () => {
  it("exits on its own with the default (memory) storage", async () => {
    expect(await run("memory")).toEqual({ code: 0, stdout: "created\n" });
  });

  it("exits on its own with a storage shared across realms (its BroadcastChannel is unref'd)", async () => {
    expect(await run("shared")).toEqual({ code: 0, stdout: "created\n" });
  });
});
