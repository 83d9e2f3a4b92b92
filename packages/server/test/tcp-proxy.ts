/**
 * A TCP proxy the tests put between the issuer and a real PostgreSQL or Redis, to take the
 * dependency away the ways production does: `stop()` refuses connections and drops the open
 * ones (the server was stopped), `freeze()` keeps every connection open but forwards nothing
 * (a hung server or a partitioned network), `restore()` brings it back on the same port.
 */
import { type Server, type Socket, connect, createServer } from "node:net";

interface Pair {
  client: Socket;
  upstream: Socket;
}

function forward(p: Pair): void {
  p.client.pipe(p.upstream);
  p.upstream.pipe(p.client);
}

function hold(p: Pair): void {
  p.client.unpipe(p.upstream);
  p.upstream.unpipe(p.client);
  p.client.pause();
  p.upstream.pause();
}

export class TcpProxy {
  #server: Server;
  #pairs = new Set<Pair>();
  #frozen = false;
  #listening = false;
  port = 0;

  private readonly targetPort: number;
  private readonly targetHost: string;

  private constructor(targetPort: number, targetHost: string) {
    this.targetPort = targetPort;
    this.targetHost = targetHost;
    this.#server = this.#createServer();
  }

  /** Starts a proxy on a random local port forwarding to `targetHost:targetPort`. */
  static async start(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort, targetHost);
    await proxy.#listen(0);
    return proxy;
  }

  /** `postgres://` or `redis://` URL `url` rewritten to go through this proxy. */
  wrap(url: string): string {
    const u = new URL(url);
    u.hostname = "127.0.0.1";
    u.port = String(this.port);
    return u.toString();
  }

  /** The dependency is stopped: new connections are refused, open ones are reset. */
  async stop(): Promise<void> {
    if (this.#listening) {
      this.#listening = false;
      await new Promise<void>((resolve) => {
        this.#server.close(() => resolve());
        this.#dropAll();
      });
    }
    this.#dropAll();
  }

  /** The dependency hangs: connections are accepted and kept, but no byte goes through. */
  freeze(): void {
    this.#frozen = true;
    for (const p of this.#pairs) hold(p);
  }

  /** The dependency is back on the same address. */
  async restore(): Promise<void> {
    if (this.#frozen) {
      this.#frozen = false;
      for (const p of this.#pairs) forward(p);
    }
    if (!this.#listening) {
      this.#server = this.#createServer();
      await this.#listen(this.port);
    }
  }

  async close(): Promise<void> {
    await this.stop();
  }

  #createServer(): Server {
    return createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      const pair = { client, upstream };
      this.#pairs.add(pair);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.#pairs.delete(pair);
      };
      client.on("error", drop).on("close", drop);
      upstream.on("error", drop).on("close", drop);
      if (this.#frozen) hold(pair);
      else forward(pair);
    });
  }

  #listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once("error", reject);
      this.#server.listen(port, "127.0.0.1", () => {
        this.#server.off("error", reject);
        this.port = (this.#server.address() as { port: number }).port;
        this.#listening = true;
        resolve();
      });
    });
  }

  #dropAll(): void {
    for (const p of this.#pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.#pairs.clear();
  }
}
