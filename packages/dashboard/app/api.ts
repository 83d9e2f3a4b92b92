/**
 * The admin API as the app calls it: every request carries `Authorization: Bearer` (the admin
 * token, or an admin's access token through the client SDK's session) and no cookie, so a
 * cross-site page can never make the browser act for the administrator.
 */
export interface Credentials {
  /** "token": the admin token; "issuer": signed in through the issuer. */
  kind: "token" | "issuer";
  fetch(input: string, init: RequestInit): Promise<Response>;
  signOut(): Promise<void>;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let current: Credentials | null = null;
let onUnauthorized: () => void = () => {};

export function setCredentials(c: Credentials | null): void {
  current = c;
}

export function credentials(): Credentials | null {
  return current;
}

/** What to do when the API stops accepting the credentials (expired session, changed token). */
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

/** One admin API call; JSON in and out. Errors become ApiError with the API's own message. */
export async function api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  if (!current) throw new ApiError(401, "unauthorized", "not signed in");
  const res = await current.fetch(path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const err = (data ?? {}) as { error?: string; error_description?: string };
    if (res.status === 401) onUnauthorized();
    throw new ApiError(
      res.status,
      err.error ?? "error",
      err.error_description ?? `${res.status} ${res.statusText}`,
    );
  }
  return data as T;
}

/** A query string from the set values (empty ones left out). */
export function query(params: Record<string, string | number | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const enc = encodeURIComponent;
