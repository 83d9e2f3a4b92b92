import type { Provider } from "../providers/store.ts";
import { resolveExpiry, retryAfterMs } from "./expiry.ts";

/**
 * One refresh_token grant against a provider's token endpoint, and the classification of its
 * answer into the failure taxonomy. Error strings name status codes and OAuth error codes
 * only: never a token, a secret, or the provider's free text.
 */
export type UpstreamOutcome =
  | {
      kind: "success";
      status: number;
      accessToken: string;
      /** Absent when the provider did not return one: the stored one is kept. */
      refreshToken?: string;
      tokenType: string;
      expiresAt: Date;
      /** The response body with every token removed (stored sealed, for diagnosis). */
      sanitized: Record<string, unknown>;
    }
  | { kind: "rejected"; status: number; error: string; sanitized?: Record<string, unknown> }
  | { kind: "rate_limited"; status: number; retryAfterMs?: number; error: string }
  | {
      kind: "transient";
      status: number | null;
      error: string;
      /** The provider may have acted (rotated) without our reading its answer. */
      outcomeUnknown: boolean;
    };

/** OAuth errors that mean the grant itself is gone: only a human can fix them. */
const FATAL_ERRORS = new Set(["invalid_grant", "invalid_client", "unauthorized_client"]);
const MAX_TOKEN_LENGTH = 16 * 1024;

/** Reads a dotted path (`authorization.token`) from a parsed JSON body. */
export function readPath(body: unknown, path: string): unknown {
  let at: unknown = body;
  for (const part of path.split(".")) {
    if (typeof at !== "object" || at === null || !Object.hasOwn(at, part)) return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

function removePath(body: Record<string, unknown>, path: string): void {
  const parts = path.split(".");
  let at: unknown = body;
  for (const part of parts.slice(0, -1)) {
    if (typeof at !== "object" || at === null) return;
    at = (at as Record<string, unknown>)[part];
  }
  if (typeof at === "object" && at !== null) delete (at as Record<string, unknown>)[parts.at(-1)!];
}

/** The body without any token: the mapped paths and the standard token fields. */
export function sanitize(body: Record<string, unknown>, provider: Provider): Record<string, unknown> {
  const copy = structuredClone(body);
  const paths = [
    "access_token",
    "refresh_token",
    "id_token",
    provider.response.access_token,
    provider.response.refresh_token,
  ];
  for (const p of paths) if (p) removePath(copy, p);
  return copy;
}

function formEncode(value: string): string {
  // RFC 6749 §2.3.1: client id and secret are form-encoded before Basic.
  return encodeURIComponent(value).replace(/%20/g, "+");
}

/** Builds the request exactly as it goes on the wire. */
export function buildRefreshRequest(
  provider: Provider,
  refreshToken: string,
): { headers: Headers; body: string } {
  const fields: Record<string, unknown> = {
    ...provider.extra_body,
    grant_type: "refresh_token",
    refresh_token: refreshToken,
  };
  const headers = new Headers({ accept: "application/json" });
  for (const [k, v] of Object.entries(provider.extra_headers)) headers.set(k, v);
  if (provider.auth_style === "basic" && provider.client_id) {
    const cred = `${formEncode(provider.client_id)}:${formEncode(provider.client_secret ?? "")}`;
    headers.set("authorization", `Basic ${Buffer.from(cred).toString("base64")}`);
  } else if (provider.client_id) {
    fields.client_id = provider.client_id;
    if (provider.client_secret) fields.client_secret = provider.client_secret;
  }
  if (provider.body_format === "json") {
    headers.set("content-type", "application/json");
    return { headers, body: JSON.stringify(fields) };
  }
  headers.set("content-type", "application/x-www-form-urlencoded");
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) form.set(k, String(v));
  return { headers, body: form.toString() };
}

/**
 * Calls the token endpoint with `refreshToken`. `sentAt` is when the request leaves (the
 * expiry of `expires_in` counts from it); the call is aborted after `timeoutMs`.
 */
export async function callTokenEndpoint(input: {
  provider: Provider;
  refreshToken: string;
  sentAt: Date;
  timeoutMs: number;
  fetch: typeof fetch;
}): Promise<UpstreamOutcome> {
  const { provider, sentAt } = input;
  const { headers, body } = buildRefreshRequest(provider, input.refreshToken);
  let res: Response;
  let text: string;
  try {
    const signal = AbortSignal.timeout(input.timeoutMs);
    res = await input.fetch(provider.token_url, { method: "POST", headers, body, signal, redirect: "error" });
    text = await res.text();
  } catch (err) {
    const name = (err as Error)?.name;
    const timedOut = name === "TimeoutError" || name === "AbortError";
    const code = (err as { cause?: { code?: string } })?.cause?.code;
    return {
      kind: "transient",
      status: null,
      error: timedOut ? `timeout after ${input.timeoutMs} ms` : `network error${code ? ` ${code}` : ""}`,
      outcomeUnknown: true,
    };
  }
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  const obj =
    typeof json === "object" && json !== null && !Array.isArray(json)
      ? (json as Record<string, unknown>)
      : undefined;

  if (res.status === 429) {
    return {
      kind: "rate_limited",
      status: 429,
      retryAfterMs: retryAfterMs(res.headers.get("retry-after"), sentAt),
      error: "upstream 429 rate limited",
    };
  }
  const success = provider.response.success_status
    ? res.status === provider.response.success_status
    : res.status >= 200 && res.status < 300;
  if (!success) {
    const error = typeof obj?.error === "string" ? obj.error : undefined;
    if (res.status >= 400 && res.status < 500 && error && FATAL_ERRORS.has(error)) {
      return { kind: "rejected", status: res.status, error, sanitized: sanitize(obj!, provider) };
    }
    const code = error && /^[a-z_]{1,64}$/.test(error) ? ` ${error}` : "";
    return {
      kind: "transient",
      status: res.status,
      error: `upstream ${res.status}${code}`,
      outcomeUnknown: false,
    };
  }
  // A success status whose body we cannot use: the provider may have rotated the refresh token.
  const unusable = (why: string): UpstreamOutcome => ({
    kind: "transient",
    status: res.status,
    error: `unparseable response (${res.status}): ${why}`,
    outcomeUnknown: true,
  });
  if (!obj) return unusable("not a JSON object");
  const map = provider.response;
  const access = readPath(obj, map.access_token ?? "access_token");
  if (typeof access !== "string" || access.length === 0 || access.length > MAX_TOKEN_LENGTH) {
    return unusable("no access token");
  }
  const refresh = readPath(obj, map.refresh_token ?? "refresh_token");
  if (
    refresh !== undefined &&
    refresh !== null &&
    (typeof refresh !== "string" || refresh.length > MAX_TOKEN_LENGTH)
  ) {
    return unusable("refresh token is not a string");
  }
  const tokenType = readPath(obj, map.token_type ?? "token_type");
  const expiresAt = resolveExpiry({
    sentAt,
    accessToken: access,
    expiresIn: map.expires_at ? undefined : readPath(obj, map.expires_in ?? "expires_in"),
    expiresAt: map.expires_in ? undefined : readPath(obj, map.expires_at ?? "expires_at"),
    defaultTtl: provider.default_ttl,
  });
  if (!expiresAt) return unusable("unreadable expiry");
  return {
    kind: "success",
    status: res.status,
    accessToken: access,
    refreshToken: typeof refresh === "string" && refresh.length > 0 ? refresh : undefined,
    tokenType:
      typeof tokenType === "string" && /^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(tokenType) ? tokenType : "Bearer",
    expiresAt,
    sanitized: sanitize(obj, provider),
  };
}
