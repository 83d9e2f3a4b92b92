/**
 * The load generator, run in its own process (forked by bench/run.ts, messages over IPC), so its
 * CPU is measured apart from the orchestrator's and never shares an event loop with a server.
 *
 * Each virtual client owns one keep-alive TCP connection and one refresh token: it POSTs the
 * refresh, reads the response, takes the `refresh_token` from the JSON body and sends the next
 * request with it. HTTP/1.1 is written and parsed by hand (request line, Content-Length body)
 * because node:http's client costs more CPU per request than the servers under test spend on
 * some of them; both servers answer with Content-Length.
 */
import { connect, type Socket } from "node:net";

export interface LoadRequest {
  port: number;
  path: string;
  /** The form body before the token, e.g. "grant_type=refresh_token&client_id=x&refresh_token=". */
  bodyPrefix: string;
  tokens: string[];
  warmupMs: number;
  durationMs: number;
}

export interface LoadResult {
  concurrency: number;
  requests: number;
  elapsed_s: number;
  per_s: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
  errors: number;
  error_samples: string[];
  /** Fraction of one core the load generator used while measuring. */
  loadgen_cpu: number;
  /** The tokens each client holds at the end (to continue with the next run). */
  tokens: string[];
}

const HEADER_END = Buffer.from("\r\n\r\n");

class Connection {
  private readonly socket: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private waiting: ((r: { status: number; body: string }) => void) | undefined;
  private failing: ((e: Error) => void) | undefined;
  constructor(socket: Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on("data", (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.parse();
    });
    socket.on("error", (e) => this.failing?.(e));
    socket.on("close", () => this.failing?.(new Error("connection closed")));
  }

  static open(port: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const s = connect(port, "127.0.0.1", () => resolve(new Connection(s)));
      s.once("error", reject);
    });
  }

  private parse(): void {
    const end = this.buf.indexOf(HEADER_END);
    if (end < 0 || !this.waiting) return;
    const head = this.buf.toString("latin1", 0, end);
    const status = Number(head.slice(9, 12));
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!m) {
      this.failing?.(new Error(`response without content-length: ${head.slice(0, 200)}`));
      return;
    }
    const len = Number(m[1]);
    if (this.buf.length < end + 4 + len) return;
    const body = this.buf.toString("utf8", end + 4, end + 4 + len);
    this.buf = this.buf.subarray(end + 4 + len);
    const w = this.waiting;
    this.waiting = undefined;
    this.failing = undefined;
    w({ status, body });
  }

  post(head: string, body: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failing = reject;
      this.socket.write(`${head}${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
  }

  close(): void {
    this.failing = undefined;
    this.socket.destroy();
  }
}

function pct(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

const r2 = (x: number) => Number(x.toFixed(2));

/** Runs one measurement: warm-up, then `durationMs` of refreshes by `tokens.length` clients. */
export async function runLoad(req: LoadRequest): Promise<LoadResult> {
  const tokens = [...req.tokens];
  const head =
    `POST ${req.path} HTTP/1.1\r\nHost: 127.0.0.1:${req.port}\r\nConnection: keep-alive\r\n` +
    "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ";
  const conns = await Promise.all(tokens.map(() => Connection.open(req.port)));
  let latencies = new Float64Array(1 << 16);
  let n = 0;
  let errors = 0;
  const samples: string[] = [];
  let measuring = false;
  let stop = false;
  const loop = async (i: number) => {
    let conn = conns[i]!;
    while (!stop) {
      const t0 = performance.now();
      let res: { status: number; body: string };
      try {
        res = await conn.post(head, req.bodyPrefix + tokens[i]);
      } catch (e) {
        errors++;
        if (samples.length < 5) samples.push(String(e));
        conn.close();
        conn = conns[i] = await Connection.open(req.port);
        continue;
      }
      const dt = performance.now() - t0;
      if (res.status !== 200) {
        errors++;
        if (samples.length < 5) samples.push(`${res.status} ${res.body.slice(0, 200)}`);
        // a client whose token failed has nothing left to refresh with
        if (res.status === 400) return;
        continue;
      }
      tokens[i] = (JSON.parse(res.body) as { refresh_token: string }).refresh_token;
      if (measuring) {
        if (n === latencies.length) {
          const bigger = new Float64Array(latencies.length * 2);
          bigger.set(latencies);
          latencies = bigger;
        }
        latencies[n++] = dt;
      }
    }
  };
  const loops = tokens.map((_, i) => loop(i));
  await new Promise((r) => setTimeout(r, req.warmupMs));
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  measuring = true;
  await new Promise((r) => setTimeout(r, req.durationMs));
  measuring = false;
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  stop = true;
  await Promise.all(loops);
  for (const c of conns) c.close();
  const sorted = latencies.subarray(0, n).sort();
  return {
    concurrency: tokens.length,
    requests: n,
    elapsed_s: r2(elapsed),
    per_s: Math.round(n / elapsed),
    p50_ms: r2(pct(sorted, 50)),
    p90_ms: r2(pct(sorted, 90)),
    p99_ms: r2(pct(sorted, 99)),
    p999_ms: r2(pct(sorted, 99.9)),
    max_ms: r2(sorted[n - 1] ?? 0),
    errors,
    error_samples: samples,
    loadgen_cpu: r2((cpu.user + cpu.system) / 1e6 / elapsed),
    tokens,
  };
}

// As a forked child: one LoadRequest in, one LoadResult out, per message.
if (process.send) {
  process.on("message", (msg: LoadRequest | "exit") => {
    if (msg === "exit") process.exit(0);
    runLoad(msg).then(
      (r) => process.send!({ ok: r }),
      (e) => process.send!({ error: String(e?.stack ?? e) }),
    );
  });
}
