/**
 * Real `evergreen` processes for the broker's system tests and benches: `serve` (issuer +
 * broker routes, in-process worker unless EVERGREEN_BROKER_WORKER=off) and
 * `broker worker` (a worker alone). The command that starts `evergreen` is defined here
 * and nowhere else; EVERGREEN_TEST_BIN switches it to a compiled bin (`node path/to/bin.js`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../../../../", import.meta.url));

/** argv (after the node executable) that runs the `evergreen` command. */
export function evergreenCommand(): string[] {
  const bin = process.env.EVERGREEN_TEST_BIN;
  if (bin) return [bin];
  return ["--import", "tsx", `${ROOT}packages/cli/src/main.ts`];
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Environment every broker process of one test run shares. */
export interface BrokerEnv {
  DATABASE_URL?: string;
  EVERGREEN_ADMIN_TOKEN: string;
  EVERGREEN_ENCRYPTION_KEY: string;
  [name: string]: string | undefined;
}

/** A fresh admin token (≥ 32 chars) and encryption key (`id:base64 32 bytes`). */
export function brokerSecrets(): { EVERGREEN_ADMIN_TOKEN: string; EVERGREEN_ENCRYPTION_KEY: string } {
  return {
    EVERGREEN_ADMIN_TOKEN: `admin-${randomBytes(24).toString("hex")}`,
    EVERGREEN_ENCRYPTION_KEY: `k1:${randomBytes(32).toString("base64")}`,
  };
}

export class EvergreenProcess {
  readonly child: ChildProcess;
  readonly name: string;
  /** http://127.0.0.1:port for `serve` */
  url = "";
  private readonly out: string[] = [];
  readonly exited: Promise<number | null>;

  constructor(name: string, args: string[], env: Record<string, string | undefined>) {
    this.name = name;
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, LOG_LEVEL: "warn", ...env }))
      if (v !== undefined) clean[k] = v;
    this.child = spawn(process.execPath, [...evergreenCommand(), ...args], {
      cwd: ROOT,
      env: clean,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout!.on("data", (d) => this.out.push(String(d)));
    this.child.stderr!.on("data", (d) => this.out.push(String(d)));
    this.exited = new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Everything the process wrote to stdout and stderr so far. */
  output(): string {
    return this.out.join("");
  }

  signal(sig: NodeJS.Signals): void {
    if (this.running) this.child.kill(sig);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return;
    this.child.kill("SIGCONT");
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Waits until `pattern` appears in the output (or the process exits, or time runs out). */
  async waitForOutput(pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (pattern.test(this.output())) return;
      if (!this.running) throw new Error(`${this.name} exited:\n${this.output()}`);
      await sleep(100);
    }
    throw new Error(`${this.name}: no ${pattern} within ${timeoutMs} ms:\n${this.output()}`);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Starts `evergreen serve` on a random port and waits until /healthz answers. */
export async function startServe(env: BrokerEnv, timeoutMs = 90_000): Promise<EvergreenProcess> {
  const port = await freePort();
  const proc = new EvergreenProcess("serve", ["serve"], {
    HOST: "127.0.0.1",
    EVERGREEN_RATE_LIMIT: "off",
    ...env,
    PORT: String(port),
  });
  proc.url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!proc.running) throw new Error(`evergreen serve exited:\n${proc.output()}`);
    const ok = await fetch(`${proc.url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return proc;
    await sleep(200);
  }
  await proc.stop(1000);
  throw new Error(`evergreen serve did not become healthy:\n${proc.output()}`);
}

/**
 * Starts `evergreen broker worker`. It has no port; it is taken as started once it has
 * logged its start line (the workers' env should leave LOG_LEVEL at info or lower) or, if it
 * logs nothing, after `settleMs` while still running.
 */
export async function startWorker(
  env: BrokerEnv,
  name = "worker",
  settleMs = 8_000,
): Promise<EvergreenProcess> {
  const proc = new EvergreenProcess(name, ["broker", "worker"], { LOG_LEVEL: "info", ...env });
  const deadline = Date.now() + Math.max(settleMs, 60_000);
  const started = Date.now();
  while (Date.now() < deadline) {
    if (!proc.running) throw new Error(`${name} exited:\n${proc.output()}`);
    if (/worker[^\n]*(start|listen|running|ready)/i.test(proc.output())) return proc;
    if (Date.now() - started > settleMs && proc.output() === "") return proc;
    await sleep(100);
  }
  if (proc.running) return proc;
  throw new Error(`${name} did not start:\n${proc.output()}`);
}

/** Stops every process given, in parallel, ignoring ones already gone. */
export async function stopAll(procs: (EvergreenProcess | undefined)[]): Promise<void> {
  await Promise.all(procs.map((p) => p?.stop()));
}
