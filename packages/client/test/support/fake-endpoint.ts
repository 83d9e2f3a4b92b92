/**
 * An in-process OAuth server behind an injected `fetch`, for unit tests that move a manual
 * clock instead of sleeping. Access tokens are `at-<n>`, refresh tokens `rt-<n>`.
 */
export interface FakeServer {
  fetch: (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
  /** Refresh-token requests received, with the token each presented. */
  refreshes: string[];
  /** Resource requests received: method, authorization, body text. */
  resources: { method: string; authorization: string | null; body: string }[];
  /** Access tokens the resource rejects with 401 invalid_token. */
  rejected: Set<string>;
  /** Queue of overrides for the next token responses (a Response, or an Error to throw). */
  next: (Response | Error | (() => Response | Error))[];
  /** Rotate refresh tokens (default true). */
  rotate: boolean;
  expiresIn: number | undefined;
  date?: () => string | undefined;
  counter: number;
  issue(): Record<string, unknown>;
}

export const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });

export function fakeServer(): FakeServer {
  const server: FakeServer = {
    refreshes: [],
    resources: [],
    rejected: new Set(),
    next: [],
    rotate: true,
    expiresIn: 60,
    counter: 0,
    issue() {
      server.counter++;
      const body: Record<string, unknown> = { access_token: `at-${server.counter}`, token_type: "Bearer" };
      if (server.expiresIn !== undefined) body["expires_in"] = server.expiresIn;
      if (server.rotate || server.counter === 1) body["refresh_token"] = `rt-${server.counter}`;
      return body;
    },
    async fetch(input, init) {
      const request = new Request(input, init);
      const url = new URL(request.url);
      await Promise.resolve();
      if (url.pathname === "/token") {
        const form = new URLSearchParams(await request.text());
        if (form.get("grant_type") === "refresh_token")
          server.refreshes.push(form.get("refresh_token") ?? "");
        const override = server.next.shift();
        const outcome = typeof override === "function" ? override() : override;
        if (outcome instanceof Error) throw outcome;
        if (outcome) return outcome;
        const date = server.date?.();
        return json(200, server.issue(), date ? { date } : {});
      }
      if (url.pathname === "/revoke") return new Response(null, { status: 200 });
      const authorization = request.headers.get("authorization");
      server.resources.push({ method: request.method, authorization, body: await request.text() });
      const token = authorization?.replace(/^Bearer /, "") ?? "";
      if (server.rejected.has(token)) {
        return new Response(null, {
          status: 401,
          headers: { "www-authenticate": 'Bearer error="invalid_token"' },
        });
      }
      return json(200, { token });
    },
  };
  return server;
}
