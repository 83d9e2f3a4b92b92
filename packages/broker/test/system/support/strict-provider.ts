/**
 * A real upstream OAuth token endpoint for the broker's system tests and benches: node:http on
 * 127.0.0.1 (random port) that rotates refresh tokens as strictly as the strictest real
 * providers. Presenting a refresh token that was already rotated is REUSE: the whole grant is
 * revoked (its current refresh token and every access token), and every later refresh of that
 * grant fails `invalid_grant`, for good.
 *
 * It answers with random latency, issues access tokens with a configurable TTL, and can be told
 * to misbehave per grant or globally (500, hang, garbage, 429 + Retry-After, invalid_grant,
 * hold until released). It answers the standard shape (RFC 6749 §5.1, JSON or form) or the
 * seed-004 shape (`201 {authorization: {token, expires_at, …}, refresh: {token, …}}`).
 *
 * It keeps a ledger the tests assert on: refreshes and reuse events per grant, every request's
 * arrival and answer time, and every access token ever issued with its expiry and revocation,
 * so a test can tell whether a token a consumer was handed was live at that moment.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** What the endpoint does with a refresh request. */
export type ProviderMode =
  /** rotate: a new access token and a new refresh token, the old refresh token is spent */
  | "ok"
  /** 500 with an HTML body; nothing rotates */
  | "error_500"
  /** never answers (until the client gives up or the provider closes); nothing rotates */
  | "hang"
  /** 200 with a body that is not JSON; nothing rotates */
  | "garbage"
  /** 429 with `Retry-After: retryAfterSeconds`; nothing rotates */
  | "rate_limited"
  /** the user revoked the grant upstream: the grant is revoked, 400 invalid_grant */
  | "invalid_grant"
  /** the request is held unprocessed until `releaseHeld()` drops or processes it */
  | "hold";

export type ResponseShape =
  /** RFC 6749 §5.1: `{access_token, token_type, expires_in, refresh_token}` as JSON, status 200 */
  | "standard"
  /** the same fields form-encoded (as some older providers answer) */
  | "standard-form"
  /** seed 004: `201 {authorization: {token, type, expires_in, expires_at, …}, refresh: {token, …}}` */
  | "seed-004";

export interface StrictProviderOptions {
  /** latency before a request is processed, uniformly random in [min, max] ms (default 5–30) */
  latencyMs?: [number, number];
  /** TTL of issued access tokens in seconds (default 3600) */
  accessTokenTtl?: number;
  /** omit `expires_in` from standard responses (the broker must fall back) */
  omitExpiresIn?: boolean;
  responseShape?: ResponseShape;
  /** when set, refreshes must authenticate with these (Basic or in the body) or get invalid_client */
  clientId?: string;
  clientSecret?: string;
  /** Retry-After seconds in "rate_limited" mode (default 5) */
  retryAfterSeconds?: number;
  /** path of the token endpoint (default /oauth/token) */
  path?: string;
}

export interface Grant {
  id: string;
  /** the one refresh token that can be used now (undefined once revoked) */
  currentRefreshToken: string | undefined;
  revokedAt?: number;
  revokedBecause?: "reuse" | "invalid_grant";
  /** successful rotations */
  refreshes: number;
  /** times an already-rotated refresh token of this grant was presented */
  reuses: number;
  /** time (ms) of each successful rotation, in order */
  refreshedAt: number[];
  /** access tokens issued for this grant, oldest first (the seed token first) */
  accessTokens: string[];
}

export interface AccessTokenRecord {
  token: string;
  grantId: string;
  issuedAt: number;
  expiresAt: number;
  /** set when the grant was revoked */
  revokedAt?: number;
}

/** One refresh request as the endpoint saw it. */
export interface RequestRecord {
  grantId: string | undefined;
  /** the refresh token that was presented (to check against what a worker should have held) */
  refreshToken: string | undefined;
  mode: ProviderMode;
  receivedAt: number;
  /** when the answer was written, or undefined while in flight / never answered */
  answeredAt?: number;
  status?: number;
  /** "rotated" | "reuse" | "unknown_token" | "revoked" | … */
  outcome?: string;
  /** the client went away before the answer was written */
  clientGone: boolean;
  bodyFormat: "form" | "json" | "unknown";
  clientAuth: "basic" | "body" | "none";
}

export interface SeededGrant {
  grantId: string;
  access_token: string;
  refresh_token: string;
  /** seconds from now */
  expires_in: number;
  /** ISO time the seed access token expires */
  expires_at: string;
  expiresAtMs: number;
}

interface HeldRequest {
  record: RequestRecord;
  res: ServerResponse;
  process: () => void;
}

function token(prefix: string): string {
  return `${prefix}${randomBytes(24).toString("base64url")}`;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export class StrictProvider {
  readonly grants = new Map<string, Grant>();
  readonly accessTokens = new Map<string, AccessTokenRecord>();
  readonly requests: RequestRecord[] = [];
  /** every token this provider ever issued (access and refresh), to search logs and rows for */
  readonly issued: string[] = [];
  /** refresh token → grant and whether it is spent */
  private readonly refreshTokens = new Map<string, { grantId: string; spent: boolean }>();
  private readonly grantModes = new Map<string, ProviderMode>();
  private mode: ProviderMode = "ok";
  private readonly held: HeldRequest[] = [];
  private readonly hanging = new Set<ServerResponse>();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  options: Required<Omit<StrictProviderOptions, "clientId" | "clientSecret">> &
    Pick<StrictProviderOptions, "clientId" | "clientSecret">;
  url = "";

  constructor(options: StrictProviderOptions = {}) {
    this.options = {
      latencyMs: [5, 30],
      accessTokenTtl: 3600,
      omitExpiresIn: false,
      responseShape: "standard",
      retryAfterSeconds: 5,
      path: "/oauth/token",
      ...options,
    };
  }

  /** Starts listening on 127.0.0.1 (random port); `url` is the token endpoint. */
  async start(): Promise<this> {
    const server = createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 30_000;
    server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.server = server;
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}${this.options.path}`;
    return this;
  }

  /** Stops listening and drops every open, hanging or held request. */
  async close(): Promise<void> {
    for (const h of this.held.splice(0)) h.res.destroy();
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Creates a grant as an authorization-code exchange would: its first access and refresh token. */
  seedGrant(expiresIn = this.options.accessTokenTtl): SeededGrant {
    const id = randomBytes(8).toString("hex");
    const now = Date.now();
    const refreshToken = token("rt_");
    const grant: Grant = {
      id,
      currentRefreshToken: refreshToken,
      refreshes: 0,
      reuses: 0,
      refreshedAt: [],
      accessTokens: [],
    };
    this.grants.set(id, grant);
    this.refreshTokens.set(refreshToken, { grantId: id, spent: false });
    this.issued.push(refreshToken);
    const access = this.issueAccessToken(grant, now, expiresIn);
    return {
      grantId: id,
      access_token: access.token,
      refresh_token: refreshToken,
      expires_in: expiresIn,
      expires_at: new Date(access.expiresAt).toISOString(),
      expiresAtMs: access.expiresAt,
    };
  }

  /** Sets the mode for every grant without a mode of its own. */
  setMode(mode: ProviderMode): void {
    this.mode = mode;
  }

  /** Sets (or with undefined, clears) the mode of one grant. */
  setGrantMode(grantId: string, mode: ProviderMode | undefined): void {
    if (mode === undefined) this.grantModes.delete(grantId);
    else this.grantModes.set(grantId, mode);
  }

  grant(id: string): Grant {
    const g = this.grants.get(id);
    if (!g) throw new Error(`no grant ${id}`);
    return g;
  }

  /** Reuse events across all grants (a correct broker keeps this at 0). */
  get reuseCount(): number {
    let n = 0;
    for (const g of this.grants.values()) n += g.reuses;
    return n;
  }

  get refreshCount(): number {
    let n = 0;
    for (const g of this.grants.values()) n += g.refreshes;
    return n;
  }

  /** Requests received and not answered yet. */
  inFlight(): RequestRecord[] {
    return this.requests.filter((r) => r.answeredAt === undefined && !r.clientGone);
  }

  /** Requests of one grant, oldest first. */
  requestsFor(grantId: string): RequestRecord[] {
    return this.requests.filter((r) => r.grantId === grantId);
  }

  /**
   * Whether `accessToken` is one this provider issued and still honours at time `at`
   * (default now) for at least `minValiditySeconds`: not expired, grant not revoked.
   */
  isLive(accessToken: string, at = Date.now(), minValiditySeconds = 0): boolean {
    const rec = this.accessTokens.get(accessToken);
    if (!rec) return false;
    if (rec.revokedAt !== undefined && rec.revokedAt <= at) return false;
    return rec.expiresAt >= at + minValiditySeconds * 1000;
  }

  accessToken(accessToken: string): AccessTokenRecord | undefined {
    return this.accessTokens.get(accessToken);
  }

  /** The latest access token issued for a grant. */
  latestAccessToken(grantId: string): AccessTokenRecord {
    const g = this.grant(grantId);
    return this.accessTokens.get(g.accessTokens.at(-1)!)!;
  }

  /** Held requests (mode "hold") waiting for `releaseHeld`, of one grant or all. */
  heldCount(grantId?: string): number {
    return this.held.filter((h) => grantId === undefined || h.record.grantId === grantId).length;
  }

  /**
   * Lets held requests go: "drop" closes their connections unprocessed (the request was lost
   * on the way: nothing rotates), "process" handles them now as mode "ok" would (the answer
   * goes to whoever sent them, even a paused process). Only `grantId`'s when given.
   */
  releaseHeld(how: "drop" | "process", grantId?: string): number {
    const list = this.held.filter((h) => grantId === undefined || h.record.grantId === grantId);
    for (const h of list) this.held.splice(this.held.indexOf(h), 1);
    for (const h of list) {
      if (how === "drop") {
        h.record.outcome = "dropped";
        h.res.destroy();
      } else h.process();
    }
    return list.length;
  }

  private issueAccessToken(grant: Grant, now: number, ttl: number): AccessTokenRecord {
    const rec: AccessTokenRecord = {
      token: token("at_"),
      grantId: grant.id,
      issuedAt: now,
      expiresAt: now + ttl * 1000,
    };
    this.accessTokens.set(rec.token, rec);
    grant.accessTokens.push(rec.token);
    this.issued.push(rec.token);
    return rec;
  }

  private revoke(grant: Grant, because: "reuse" | "invalid_grant", now: number): void {
    if (grant.revokedAt !== undefined) return;
    grant.revokedAt = now;
    grant.revokedBecause = because;
    grant.currentRefreshToken = undefined;
    for (const t of grant.accessTokens) {
      const rec = this.accessTokens.get(t)!;
      if (rec.revokedAt === undefined) rec.revokedAt = now;
    }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const url = new URL(req.url ?? "/", "http://provider");
      if (req.method !== "POST" || url.pathname !== this.options.path) {
        res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not_found"}');
        return;
      }
      const ctype = String(req.headers["content-type"] ?? "");
      let params: Record<string, unknown> = {};
      let bodyFormat: RequestRecord["bodyFormat"] = "unknown";
      try {
        if (ctype.includes("json")) {
          params = JSON.parse(raw);
          bodyFormat = "json";
        } else if (ctype.includes("x-www-form-urlencoded")) {
          params = Object.fromEntries(new URLSearchParams(raw));
          bodyFormat = "form";
        }
      } catch {
        params = {};
      }
      const refreshToken = typeof params.refresh_token === "string" ? params.refresh_token : undefined;
      const known = refreshToken ? this.refreshTokens.get(refreshToken) : undefined;
      const grantId = known?.grantId;
      const mode = (grantId && this.grantModes.get(grantId)) || this.mode;
      const record: RequestRecord = {
        grantId,
        refreshToken,
        mode,
        receivedAt: Date.now(),
        clientGone: false,
        bodyFormat,
        clientAuth: "none",
      };
      this.requests.push(record);
      res.on("close", () => {
        if (!res.writableFinished) record.clientGone = true;
      });

      // client authentication, when the provider has credentials configured
      let clientId: string | undefined;
      let clientSecret: string | undefined;
      const basic = /^Basic (.+)$/i.exec(String(req.headers.authorization ?? ""));
      if (basic) {
        const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
        const i = decoded.indexOf(":");
        clientId = decodeURIComponent(decoded.slice(0, i).replace(/\+/g, " "));
        clientSecret = decodeURIComponent(decoded.slice(i + 1).replace(/\+/g, " "));
        record.clientAuth = "basic";
      } else if (typeof params.client_id === "string") {
        clientId = params.client_id;
        clientSecret = typeof params.client_secret === "string" ? params.client_secret : undefined;
        record.clientAuth = "body";
      }

      const [lo, hi] = this.options.latencyMs;
      const delay = lo + Math.random() * Math.max(0, hi - lo);
      const run = () => {
        if (this.options.clientId !== undefined) {
          const ok =
            clientId !== undefined &&
            sameSecret(clientId, this.options.clientId) &&
            (this.options.clientSecret === undefined ||
              (clientSecret !== undefined && sameSecret(clientSecret, this.options.clientSecret)));
          if (!ok) {
            this.answerError(res, record, 401, "invalid_client", "client authentication failed");
            return;
          }
        }
        this.respond(res, record, params, mode);
      };
      if (mode === "hold") {
        this.held.push({ record, res, process: () => this.respond(res, record, params, "ok") });
        return;
      }
      if (delay > 0) setTimeout(run, delay);
      else run();
    });
  }

  private respond(
    res: ServerResponse,
    record: RequestRecord,
    params: Record<string, unknown>,
    mode: ProviderMode,
  ): void {
    const now = Date.now();
    if (mode === "hang") {
      record.outcome = "hung";
      this.hanging.add(res);
      res.on("close", () => this.hanging.delete(res));
      return;
    }
    if (mode === "error_500") {
      this.answer(res, record, 500, "text/html", "<html><body>Internal Server Error</body></html>", mode);
      return;
    }
    if (mode === "garbage") {
      this.answer(res, record, 200, "application/json", "{<not json>", mode);
      return;
    }
    if (mode === "rate_limited") {
      res.setHeader("retry-after", String(this.options.retryAfterSeconds));
      this.answer(res, record, 429, "application/json", JSON.stringify({ error: "rate_limited" }), mode);
      return;
    }
    const grantType = params.grant_type;
    if (this.options.responseShape !== "seed-004" && grantType !== "refresh_token") {
      this.answerError(res, record, 400, "unsupported_grant_type", "grant_type must be refresh_token");
      return;
    }
    const refreshToken = record.refreshToken;
    const known = refreshToken ? this.refreshTokens.get(refreshToken) : undefined;
    if (!known) {
      record.outcome = "unknown_token";
      this.answerError(res, record, 400, "invalid_grant", "unknown refresh token");
      return;
    }
    const grant = this.grant(known.grantId);
    if (mode === "invalid_grant") {
      this.revoke(grant, "invalid_grant", now);
      record.outcome = "invalid_grant";
      this.answerError(res, record, 400, "invalid_grant", "the grant was revoked");
      return;
    }
    if (known.spent) {
      // REUSE: an already-rotated refresh token: revoke the whole grant, for good
      grant.reuses++;
      this.revoke(grant, "reuse", now);
      record.outcome = "reuse";
      this.answerError(res, record, 400, "invalid_grant", "refresh token reuse: grant revoked");
      return;
    }
    if (grant.revokedAt !== undefined) {
      record.outcome = "revoked";
      this.answerError(res, record, 400, "invalid_grant", "grant revoked");
      return;
    }
    // rotate
    known.spent = true;
    const nextRefresh = token("rt_");
    this.refreshTokens.set(nextRefresh, { grantId: grant.id, spent: false });
    this.issued.push(nextRefresh);
    grant.currentRefreshToken = nextRefresh;
    grant.refreshes++;
    grant.refreshedAt.push(now);
    const ttl = this.options.accessTokenTtl;
    const access = this.issueAccessToken(grant, now, ttl);
    record.outcome = "rotated";
    if (this.options.responseShape === "seed-004") {
      const body = {
        authorization: {
          token: access.token,
          type: "Bearer",
          expires_in: ttl,
          expires_at: new Date(access.expiresAt).toISOString(),
          not_before: Math.floor(now / 1000),
          note: "access token",
        },
        refresh: {
          token: nextRefresh,
          expires_in: 30 * 86400,
          expires_at: new Date(now + 30 * 86400_000).toISOString(),
          note: "refresh token",
        },
      };
      this.answer(res, record, 201, "application/json", JSON.stringify(body), "rotated");
      return;
    }
    const fields: Record<string, string | number> = {
      access_token: access.token,
      token_type: "Bearer",
      refresh_token: nextRefresh,
    };
    if (!this.options.omitExpiresIn) fields.expires_in = ttl;
    if (this.options.responseShape === "standard-form") {
      const form = new URLSearchParams(Object.entries(fields).map(([k, v]) => [k, String(v)]));
      this.answer(res, record, 200, "application/x-www-form-urlencoded", form.toString(), "rotated");
    } else this.answer(res, record, 200, "application/json", JSON.stringify(fields), "rotated");
  }

  private answerError(
    res: ServerResponse,
    record: RequestRecord,
    status: number,
    error: string,
    description: string,
  ): void {
    this.answer(
      res,
      record,
      status,
      "application/json",
      JSON.stringify({ error, error_description: description }),
      record.outcome ?? error,
    );
  }

  private answer(
    res: ServerResponse,
    record: RequestRecord,
    status: number,
    contentType: string,
    body: string,
    outcome: string,
  ): void {
    record.outcome = outcome;
    record.status = status;
    record.answeredAt = Date.now();
    if (res.destroyed) {
      record.clientGone = true;
      return;
    }
    res.writeHead(status, { "content-type": contentType, "cache-control": "no-store" }).end(body);
  }
}

/** Starts a strict provider; close it with `provider.close()`. */
export async function startStrictProvider(options: StrictProviderOptions = {}): Promise<StrictProvider> {
  return new StrictProvider(options).start();
}
