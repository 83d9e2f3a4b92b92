import { InvalidResponseError, NetworkError, TokenEndpointError } from "./errors.ts";

/** A token response, normalised. Standard and mapped (non-standard) endpoints both produce it. */
export interface TokenResult {
  accessToken: string;
  tokenType: string;
  /** Absent when the server did not rotate: the session then keeps the refresh token it has. */
  refreshToken?: string | undefined;
  /** Seconds the access token lives, counted from when the response was received. */
  expiresIn?: number | undefined;
  /** Absolute expiry in epoch milliseconds on the server's clock (for `expires_at` style APIs). */
  expiresAt?: number | undefined;
  scope?: string | undefined;
  idToken?: string | undefined;
  /** The response's `Date` header in epoch milliseconds, when present and readable. */
  serverDate?: number | undefined;
  /** The parsed response body, as received. */
  raw: Record<string, unknown>;
}

export type FetchLike = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;

/** `fetch` that turns a failure to get any response into a NetworkError (aborts pass through). */
export async function send(fetchFn: FetchLike, url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetchFn(url, init);
  } catch (error) {
    if ((error as { name?: string })?.name === "AbortError") throw error;
    throw new NetworkError(`request to ${url} failed: ${(error as Error)?.message ?? error}`, error);
  }
}

/** Parses `Retry-After` (seconds or an HTTP date) into milliseconds from now. */
export function parseRetryAfter(response: Response): number | undefined {
  const value = response.headers.get("retry-after");
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  if (Number.isNaN(at)) return undefined;
  const reference = Date.parse(response.headers.get("date") ?? "") || Date.now();
  return Math.max(0, at - reference);
}

export function serverDateOf(response: Response): number | undefined {
  const date = Date.parse(response.headers.get("date") ?? "");
  return Number.isNaN(date) ? undefined : date;
}

async function readJson(response: Response): Promise<Record<string, unknown> | undefined> {
  const text = await response.text().catch(() => "");
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Throws a TokenEndpointError for a non-2xx response, keeping the RFC 6749 `error` code. */
export async function throwResponseError(response: Response): Promise<never> {
  const body = await readJson(response);
  const error = typeof body?.["error"] === "string" ? body["error"] : `http_${response.status}`;
  const description = typeof body?.["error_description"] === "string" ? body["error_description"] : undefined;
  throw new TokenEndpointError(response.status, error, description, parseRetryAfter(response));
}

/** Parses an RFC 6749 §5.1 token response (or throws the §5.2 error it carries). */
export async function parseTokenResponse(response: Response): Promise<TokenResult> {
  if (!response.ok) return throwResponseError(response);
  const raw = await readJson(response);
  if (!raw || typeof raw["access_token"] !== "string") {
    throw new InvalidResponseError("token response has no access_token");
  }
  const expiresIn = raw["expires_in"] === undefined ? undefined : Number(raw["expires_in"]);
  if (expiresIn !== undefined && !Number.isFinite(expiresIn)) {
    throw new InvalidResponseError("token response has a non-numeric expires_in");
  }
  const optional = (key: string) => (typeof raw[key] === "string" ? (raw[key] as string) : undefined);
  return {
    accessToken: raw["access_token"],
    tokenType: optional("token_type") ?? "Bearer",
    refreshToken: optional("refresh_token"),
    expiresIn,
    scope: optional("scope"),
    idToken: optional("id_token"),
    serverDate: serverDateOf(response),
    raw,
  };
}
