/**
 * A tiny upstream token endpoint for the broker's tests. It rotates strictly, like the
 * strictest real providers: each grant has one live refresh token, and presenting an older
 * one revokes the grant (counted in `reuse`). Failures are scripted per request.
 */
import { randomBytes } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";

export type Scripted =
  | { kind: "status"; status: number; body?: unknown; headers?: Record<string, string> }
  | { kind: "garbage" }
  | { kind: "hang" }
  | { kind: "drop_refresh_token" }
  | { kind: "no_expiry" }
  | { kind: "seed004" };

interface Grant {
  current: string;
  revoked: boolean;
}

export interface FakeProvider {
  url: string;
  /** refresh_token → grant; every token ever issued maps to its grant. */
  issue(expiresIn?: number): { access_token: string; refresh_token: string };
  /** Scripts the next answers (in order); afterwards answers are normal. */
  script(...answers: Scripted[]): void;
  /** Refreshes a grant the way another party would (simulates a request that reached it). */
  spend(refreshToken: string): string | undefined;
  expiresIn: number;
  /** The provider's clock for absolute expiries (tests hand it their ManualClock). */
  nowMs: () => number;
  calls: number;
  reuse: number;
  /** Every request body received (form or JSON), for assertions on the wire format. */
  requests: { headers: IncomingMessage["headers"]; body: Record<string, string> }[];
  /** Every token it issued, to search logs and rows for them. */
  issued: string[];
  close(): Promise<void>;
}

export async function startFakeProvider(): Promise<FakeProvider> {
  const byToken = new Map<string, Grant>();
  const queue: Scripted[] = [];
  const hanging: ServerResponse[] = [];
  const state = { expiresIn: 3600, calls: 0, reuse: 0, nowMs: () => Date.now() };
  const requests: FakeProvider["requests"] = [];
  const issued: string[] = [];

  const mint = (grant?: Grant) => {
    const access = `at_${randomBytes(12).toString("hex")}`;
    const refresh = `rt_${randomBytes(12).toString("hex")}`;
    issued.push(access, refresh);
    const g = grant ?? { current: refresh, revoked: false };
    g.current = refresh;
    byToken.set(refresh, g);
    return { access_token: access, refresh_token: refresh };
  };
  const rotate = (presented: string): { access_token: string; refresh_token: string } | "invalid" => {
    const g = byToken.get(presented);
    if (!g || g.revoked) return "invalid";
    if (g.current !== presented) {
      g.revoked = true;
      state.reuse++;
      return "invalid";
    }
    return mint(g);
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      state.calls++;
      const raw = Buffer.concat(chunks).toString("utf8");
      const body: Record<string, string> = (req.headers["content-type"] ?? "").includes("json")
        ? JSON.parse(raw)
        : Object.fromEntries(new URLSearchParams(raw));
      requests.push({ headers: req.headers, body });
      const send = (status: number, json: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...headers });
        res.end(JSON.stringify(json));
      };
      const next = queue.shift();
      if (next?.kind === "status") return send(next.status, next.body ?? {}, next.headers);
      if (next?.kind === "garbage") {
        res.writeHead(200, { "content-type": "text/html" });
        return res.end("<html>oops</html>");
      }
      if (next?.kind === "hang") {
        hanging.push(res);
        return;
      }
      if (next?.kind === "drop_refresh_token") {
        // A provider that does not rotate: a new access token, the refresh token stays valid.
        const g = byToken.get(body.refresh_token ?? "");
        if (!g || g.revoked || g.current !== body.refresh_token) return send(400, { error: "invalid_grant" });
        const access = `at_${randomBytes(12).toString("hex")}`;
        issued.push(access);
        return send(200, { access_token: access, token_type: "Bearer", expires_in: state.expiresIn });
      }
      const out = rotate(body.refresh_token ?? "");
      if (out === "invalid")
        return send(400, { error: "invalid_grant", error_description: "bad refresh token" });
      if (next?.kind === "no_expiry")
        return send(200, { access_token: out.access_token, refresh_token: out.refresh_token });
      if (next?.kind === "seed004") {
        return send(201, {
          authorization: {
            token: out.access_token,
            expires_at: new Date(state.nowMs() + state.expiresIn * 1000).toISOString(),
          },
          refresh: { token: out.refresh_token },
        });
      }
      return send(200, { ...out, token_type: "Bearer", expires_in: state.expiresIn, scope: "read" });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/token`,
    issue: () => mint(),
    script: (...answers) => queue.push(...answers),
    spend: (rt) => {
      const out = rotate(rt);
      return out === "invalid" ? undefined : out.refresh_token;
    },
    get expiresIn() {
      return state.expiresIn;
    },
    set expiresIn(v: number) {
      state.expiresIn = v;
    },
    get nowMs() {
      return state.nowMs;
    },
    set nowMs(fn: () => number) {
      state.nowMs = fn;
    },
    get calls() {
      return state.calls;
    },
    get reuse() {
      return state.reuse;
    },
    requests,
    issued,
    async close() {
      for (const r of hanging) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
