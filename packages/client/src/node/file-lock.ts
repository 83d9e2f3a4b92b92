import { mkdir, open, readFile, stat, unlink, utimes } from "node:fs/promises";
import { dirname } from "node:path";
import { type Lock, processLock } from "../coordination/lock.ts";
import { isProcessAlive } from "./process-alive.ts";

export interface FileLockOptions {
  /** A lock file older than this (ms) whose holder is not alive is taken over. Default 30 000. */
  staleAfter?: number;
  /** Give up waiting after this long (ms). Default 60 000. */
  timeout?: number;
}

async function isStale(path: string, staleAfter: number): Promise<boolean> {
  try {
    const [info, text] = await Promise.all([stat(path), readFile(path, "utf8")]);
    const pid = Number(JSON.parse(text || "{}").pid);
    if (Number.isInteger(pid) && pid > 0 && !isProcessAlive(pid)) return true;
    return Date.now() - info.mtimeMs > staleAfter;
  } catch {
    return false; // vanished or half-written: try again
  }
}

/**
 * A lock held by creating `path` exclusively (O_CREAT|O_EXCL), shared by every process on this
 * machine that uses the same path. The holder touches the file while it works; a file left by a
 * dead process, or not touched for `staleAfter`, is removed. Within one process callers queue
 * in memory first, so only one of them polls the file.
 */
export function fileLock(path: string, options: FileLockOptions = {}): Lock {
  const staleAfter = options.staleAfter ?? 30_000;
  const timeout = options.timeout ?? 60_000;
  const local = processLock();
  return {
    run: (name, fn) =>
      local.run(name, async () => {
        const deadline = Date.now() + timeout;
        for (;;) {
          try {
            const handle = await open(path, "wx", 0o600);
            await handle.writeFile(JSON.stringify({ pid: process.pid, at: Date.now() }));
            await handle.close();
            break;
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === "ENOENT") {
              await mkdir(dirname(path), { recursive: true, mode: 0o700 });
              continue;
            }
            if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
            if (await isStale(path, staleAfter)) {
              await unlink(path).catch(() => undefined);
              continue;
            }
            if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${path}`);
            await new Promise((resolve) => setTimeout(resolve, 15 + Math.random() * 35));
          }
        }
        const heartbeat = setInterval(() => {
          const now = new Date();
          utimes(path, now, now).catch(() => undefined);
        }, staleAfter / 3);
        heartbeat.unref();
        try {
          return await fn();
        } finally {
          clearInterval(heartbeat);
          await unlink(path).catch(() => undefined);
        }
      }),
  };
}
