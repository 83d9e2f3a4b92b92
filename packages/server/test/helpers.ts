/**
 * Protocol helpers for the issuer tests: register users and clients through the admin API,
 * call the token, revocation and introspection endpoints as a real client would (form bodies,
 * Basic or body client authentication), and snapshot the database.
 */
import { createHash, randomBytes } from "node:crypto";
import type { Database } from "@evergreen/db";
import { expect } from "vitest";
import type { TestIssuer } from "./harness.ts";

export type AuthMethod = "none" | "client_secret_basic" | "client_secret_post";

export interface TestClient {
  client_id: string;
  client_secret?: string;
  method: AuthMethod;
}

export interface TestUser {
  id: string;
  username: string;
  password: string;
}

export interface HttpResult {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

/** A short unique suffix so names never collide across tests, databases or runs. */
export function uniq(prefix = ""): string {
  return `${prefix}${randomBytes(5).toString("hex")}`;
}

export async function createUser(ti: TestIssuer, name = uniq("user-")): Promise<TestUser> {
  const password = `pw-${randomBytes(9).toString("base64url")}`;
  const res = await ti.admin("POST", "/admin/users", {
    username: name,
    password,
    email: `${name}@example.test`,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { id: res.body.id, username: name, password };
}

/** Registers a client; defaults to a public first-party app (password + refresh_token). */
export async function createClient(ti: TestIssuer, body: Record<string, unknown> = {}): Promise<TestClient> {
  const res = await ti.admin("POST", "/admin/clients", {
    client_id: uniq("client-"),
    token_endpoint_auth_method: "none",
    grant_types: ["password", "refresh_token"],
    scope: "openid profile email offline_access",
    ...body,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return {
    client_id: res.body.client_id,
    client_secret: res.body.client_secret,
    method: res.body.token_endpoint_auth_method,
  };
}

export function basicAuth(id: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString("base64")}`;
}

/** POSTs a raw body. */
export async function post(
  url: string,
  body: string | undefined,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  const res = await fetch(url, { method: "POST", headers, body });
  const text = await res.text();
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

export type FormInput = Record<string, string | string[] | undefined>;

export function encodeForm(params: FormInput): string {
  const usp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) usp.append(k, item);
  }
  return usp.toString();
}

/**
 * POSTs a form to an issuer endpoint, authenticating as `client` with its registered method
 * (or `auth: false` to send the parameters exactly as given).
 */
export async function postForm(
  ti: TestIssuer,
  path: string,
  params: FormInput,
  client?: TestClient | false,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  const h: Record<string, string> = { "content-type": "application/x-www-form-urlencoded", ...headers };
  const p: FormInput = { ...params };
  if (client) {
    if (client.method === "client_secret_basic")
      h.authorization = basicAuth(client.client_id, client.client_secret!);
    else if (client.method === "client_secret_post") {
      p.client_id = client.client_id;
      p.client_secret = client.client_secret;
    } else p.client_id = client.client_id;
  }
  return post(ti.url + path, encodeForm(p), h);
}

export function token(ti: TestIssuer, params: FormInput, client?: TestClient | false) {
  return postForm(ti, "/token", params, client);
}

export function login(ti: TestIssuer, client: TestClient, user: TestUser, extra: FormInput = {}) {
  return token(
    ti,
    { grant_type: "password", username: user.username, password: user.password, ...extra },
    client,
  );
}

/** Logs in and asserts success; returns the token response body. */
export async function loginOk(ti: TestIssuer, client: TestClient, user: TestUser, extra: FormInput = {}) {
  const res = await login(ti, client, user, extra);
  expect(res.status, res.text).toBe(200);
  return res.body as { access_token: string; refresh_token?: string; expires_in: number; scope: string };
}

export function refresh(ti: TestIssuer, client: TestClient, refreshToken: string, extra: FormInput = {}) {
  return token(ti, { grant_type: "refresh_token", refresh_token: refreshToken, ...extra }, client);
}

export async function refreshOk(
  ti: TestIssuer,
  client: TestClient,
  refreshToken: string,
  extra: FormInput = {},
) {
  const res = await refresh(ti, client, refreshToken, extra);
  expect(res.status, res.text).toBe(200);
  return res.body as { access_token: string; refresh_token?: string; expires_in: number; scope: string };
}

export async function userinfo(ti: TestIssuer, accessToken: string): Promise<HttpResult> {
  const res = await fetch(`${ti.url}/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined, text };
}

/** Asserts an RFC 6750 invalid_token rejection. */
export function expectInvalidToken(res: HttpResult): void {
  expect(res.status, res.text).toBe(401);
  expect(res.headers.get("www-authenticate") ?? "").toMatch(/^Bearer .*error="invalid_token"/);
}

/** Asserts an RFC 6749 §5.2 error response. */
export function expectOAuthError(res: HttpResult, status: number, error: string): void {
  expect(res.status, res.text).toBe(status);
  expect(res.body?.error, res.text).toBe(error);
  expect(res.headers.get("cache-control")).toBe("no-store");
  expect(res.headers.get("content-type") ?? "").toMatch(/^application\/json/);
}

export function sha256(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/** The short id the issuer writes in audit events for a token. */
export function tokenId(value: string): string {
  return sha256(value).subarray(0, 8).toString("hex");
}

export function decodeJwt(jwt: string): { header: any; payload: any } {
  const [h, p] = jwt.split(".");
  return {
    header: JSON.parse(Buffer.from(h!, "base64url").toString()),
    payload: JSON.parse(Buffer.from(p!, "base64url").toString()),
  };
}

export interface TokenRow {
  family_id: string;
  generation: number;
  expires_at: Date;
  consumed_at: Date | null;
  successor_sealed: Buffer | null;
}

export async function tokenRow(db: Database, refreshToken: string): Promise<TokenRow | undefined> {
  const { rows } = await db.query<TokenRow>(
    "SELECT family_id, generation, expires_at, consumed_at, successor_sealed FROM refresh_tokens WHERE hash = $1",
    [sha256(refreshToken)],
  );
  return rows[0];
}

export async function family(db: Database, familyId: string) {
  const { rows } = await db.query<{
    id: string;
    scope: string;
    absolute_expires_at: Date;
    revoked_at: Date | null;
    revoked_reason: string | null;
  }>("SELECT id, scope, absolute_expires_at, revoked_at, revoked_reason FROM families WHERE id = $1", [
    familyId,
  ]);
  return rows[0];
}

export async function liveTokens(db: Database, familyId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM refresh_tokens WHERE family_id = $1 AND consumed_at IS NULL",
    [familyId],
  );
  return rows[0]!.n;
}

export async function familyOf(db: Database, refreshToken: string): Promise<string> {
  const row = await tokenRow(db, refreshToken);
  if (!row) throw new Error("no such refresh token in the database");
  return row.family_id;
}

/** Every row of the tables a failed request must not change, in a stable order. */
export async function snapshot(db: Database): Promise<string> {
  const tables: Record<string, string> = {
    users: "SELECT * FROM users ORDER BY id",
    clients: "SELECT * FROM clients ORDER BY client_id",
    families: "SELECT * FROM families ORDER BY id",
    refresh_tokens: "SELECT * FROM refresh_tokens ORDER BY hash",
    signing_keys: "SELECT kid, alg, created_at, retired_at, delete_after FROM signing_keys ORDER BY kid",
  };
  const out: Record<string, unknown> = {};
  for (const [name, sql] of Object.entries(tables)) out[name] = (await db.query(sql)).rows;
  return JSON.stringify(out, (_k, v) =>
    v && typeof v === "object" && v.type === "Buffer" && Array.isArray(v.data)
      ? Buffer.from(v.data).toString("hex")
      : v,
  );
}

export async function auditEvents(db: Database, type: string, familyId?: string) {
  const { rows } = await db.query<{
    type: string;
    family_id: string | null;
    token_id: string | null;
    user_id: string | null;
    client_id: string | null;
    detail: any;
  }>(
    "SELECT type, family_id, token_id, user_id, client_id, detail FROM audit_events WHERE type = $1 AND ($2::uuid IS NULL OR family_id = $2) ORDER BY id",
    [type, familyId ?? null],
  );
  return rows;
}
