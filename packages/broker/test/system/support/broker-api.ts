/**
 * The broker's HTTP API as an outside service sees it: the admin routes (providers,
 * connections, API keys, webhooks, events) and the consumer token route. Shapes follow
 * ARCHITECTURE.md ("Broker admin", "Broker consumers").
 */

export interface HttpResult<T = any> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

export interface ConnectionView {
  id: string;
  provider: string;
  status: "active" | "refreshing" | "degraded" | "needs_reauth" | "error";
  reason: string | null;
  expires_at: string | null;
  next_refresh_at: string | null;
  generation: number;
  failure_count: number;
  last_error: string | null;
  last_refreshed_at: string | null;
  metadata: unknown;
  [field: string]: unknown;
}

export interface ConnectionEvent {
  type: "refreshed" | "refresh_failed" | "degraded" | "recovered" | "needs_reauth" | string;
  generation?: number;
  [field: string]: unknown;
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_at: string | number;
  generation: number;
}

async function call(
  base: string,
  method: string,
  path: string,
  bearer: string,
  body?: unknown,
): Promise<HttpResult> {
  const res = await fetch(base + path, {
    method,
    headers: {
      authorization: `Bearer ${bearer}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

function expectStatus(res: HttpResult, status: number, what: string): void {
  if (res.status !== status) throw new Error(`${what}: expected ${status}, got ${res.status}: ${res.text}`);
}

/** `expires_at` as the broker returns it (ISO string or epoch seconds) in ms. */
export function expiresAtMs(value: string | number | null | undefined): number {
  if (value === null || value === undefined) return Number.NaN;
  if (typeof value === "number") return value < 1e12 ? value * 1000 : value;
  if (/^\d+(\.\d+)?$/.test(value)) return expiresAtMs(Number(value));
  return Date.parse(value);
}

export class BrokerApi {
  readonly url: string;
  readonly adminToken: string;

  constructor(url: string, adminToken: string) {
    this.url = url;
    this.adminToken = adminToken;
  }

  admin(method: string, path: string, body?: unknown): Promise<HttpResult> {
    return call(this.url, method, path, this.adminToken, body);
  }

  async createProvider(body: Record<string, unknown>): Promise<any> {
    const res = await this.admin("POST", "/admin/providers", body);
    expectStatus(res, 201, "POST /admin/providers");
    return res.body;
  }

  async createConnection(
    body: Record<string, unknown>,
  ): Promise<{ id: string; status: string; expires_at: string }> {
    const res = await this.admin("POST", "/admin/connections", body);
    expectStatus(res, 201, "POST /admin/connections");
    return res.body;
  }

  async connection(id: string): Promise<ConnectionView> {
    const res = await this.admin("GET", `/admin/connections/${id}`);
    expectStatus(res, 200, `GET /admin/connections/${id}`);
    return res.body;
  }

  async events(id: string): Promise<ConnectionEvent[]> {
    const res = await this.admin("GET", `/admin/connections/${id}/events`);
    expectStatus(res, 200, `GET /admin/connections/${id}/events`);
    const b = res.body;
    return Array.isArray(b) ? b : (b?.events ?? b?.items ?? b?.data ?? []);
  }

  async createApiKey(body: Record<string, unknown>): Promise<{ id: string; key: string }> {
    const res = await this.admin("POST", "/admin/api-keys", body);
    expectStatus(res, 201, "POST /admin/api-keys");
    return res.body;
  }

  async createWebhook(body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
    const res = await this.admin("POST", "/admin/webhooks", body);
    expectStatus(res, 201, "POST /admin/webhooks");
    return res.body;
  }

  /** GET /v1/connections/:id/token as a consumer service. */
  token(id: string, apiKey: string, minValidity?: number): Promise<HttpResult<TokenResponse | any>> {
    const q = minValidity === undefined ? "" : `?min_validity=${minValidity}`;
    return call(this.url, "GET", `/v1/connections/${id}/token${q}`, apiKey);
  }

  /** Fetches many connections with bounded concurrency. */
  async connections(ids: string[], concurrency = 16): Promise<ConnectionView[]> {
    const out: ConnectionView[] = new Array(ids.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < ids.length) {
          const i = next++;
          out[i] = await this.connection(ids[i]!);
        }
      }),
    );
    return out;
  }
}

/** Polls `probe` until it returns a truthy value or `timeoutMs` passes (then throws `what`). */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false | null>,
  timeoutMs = 60_000,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(
    `timed out waiting for ${what} (last: ${last instanceof Error ? last.message : String(last)})`,
  );
}
