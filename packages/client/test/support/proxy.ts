import { createServer, request as httpRequest, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

/** What the proxy does with one request. */
export type Fault =
  | "pass"
  /** Close the connection without forwarding (the issuer never sees it). */
  | "refuse"
  /** Forward, let the issuer answer, then cut the connection before the client gets the answer. */
  | "drop-response"
  /** Answer 401 invalid_token without forwarding. */
  | "unauthorized"
  /** Answer 503 without forwarding. */
  | "unavailable";

export interface ProxiedRequest {
  method: string;
  path: string;
  /** Parsed form body for POSTs to /token. */
  form?: URLSearchParams;
  authorization?: string;
}

/**
 * A reverse proxy in front of the issuer that counts what passes and injects faults: the only
 * way to observe "exactly one refresh call" and "the response was lost" from outside the SDK.
 * `date` gives the `Date` header the issuer's answers carry (the issuer runs on a test clock,
 * while Node stamps its responses with the real time).
 */
export async function startProxy(
  target: string,
  pages: Record<string, { type: string; body: string }> = {},
  options: { date?: () => string } = {},
) {
  const seen: (ProxiedRequest & { status?: number })[] = [];
  let decide: (request: ProxiedRequest) => Fault = () => "pass";

  const server = createServer(async (req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const path = req.url ?? "/";
    const page = pages[path.split("?")[0] ?? ""];
    if (page) {
      res.writeHead(200, { "content-type": page.type });
      return res.end(page.body);
    }
    const entry: ProxiedRequest & { status?: number } = {
      method: req.method ?? "GET",
      path,
      authorization: req.headers.authorization,
    };
    if (path.startsWith("/token")) entry.form = new URLSearchParams(body.toString());
    seen.push(entry);
    const fault = decide(entry);
    if (fault === "refuse") return req.socket.destroy();
    if (fault === "unauthorized" || fault === "unavailable") {
      entry.status = fault === "unauthorized" ? 401 : 503;
      res.writeHead(
        entry.status,
        fault === "unauthorized" ? { "www-authenticate": 'Bearer error="invalid_token"' } : {},
      );
      return res.end();
    }
    const headers = { ...req.headers };
    delete headers.host;
    const upstream = httpRequest(new URL(path, target), { method: req.method, headers }, (answer) => {
      entry.status = answer.statusCode;
      const parts: Buffer[] = [];
      answer.on("data", (part: Buffer) => parts.push(part));
      answer.on("end", () => {
        if (fault === "drop-response") return req.socket.destroy();
        const headers = options.date ? { ...answer.headers, date: options.date() } : answer.headers;
        res.writeHead(answer.statusCode ?? 502, headers);
        res.end(Buffer.concat(parts));
      });
    });
    upstream.on("error", () => req.socket.destroy());
    upstream.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const refreshes = () => seen.filter((r) => r.form?.get("grant_type") === "refresh_token");
  return {
    url,
    seen,
    /** Decide the fault for each request from now on. */
    setFault(fn: (request: ProxiedRequest) => Fault) {
      decide = fn;
    },
    /** Refresh-token grant requests that reached the proxy. */
    refreshes,
    /** Refresh requests the issuer answered with 200. */
    successfulRefreshes: () => refreshes().filter((r) => r.status === 200),
    /** 401 responses that came back for a path. */
    unauthorized: (prefix: string) => seen.filter((r) => r.path.startsWith(prefix) && r.status === 401),
    reset() {
      seen.length = 0;
      decide = () => "pass";
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export type TestProxy = Awaited<ReturnType<typeof startProxy>>;
