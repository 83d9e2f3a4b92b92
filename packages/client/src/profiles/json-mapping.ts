import { InvalidResponseError, TokenEndpointError } from "../errors.ts";
import { parseRetryAfter, send, serverDateOf, type TokenResult } from "../token-response.ts";
import type { RefreshProfile } from "./refresh-profile.ts";

/** Dotted paths into a JSON response (`"authorization.token"`). */
export interface ResponseMapping {
  accessToken: string;
  refreshToken?: string | undefined;
  /** Seconds until expiry. */
  expiresIn?: string | undefined;
  /** Absolute expiry: epoch seconds, epoch milliseconds or an ISO 8601 string. */
  expiresAt?: string | undefined;
}

export interface JsonProfileOptions {
  /** The refresh URL; default: the token endpoint. */
  url?: string | undefined;
  /** The JSON body for a refresh token, or the name of the one field that carries it. */
  request: string | ((refreshToken: string) => unknown);
  response: ResponseMapping;
  /** Statuses that count as success; default any 2xx. */
  successStatus?: number[] | undefined;
  /** Statuses that mean the refresh token is dead (the session ends); default 400, 401, 403. */
  expiredStatus?: number[] | undefined;
  headers?: Record<string, string> | undefined;
}

function pick(body: unknown, path: string | undefined): unknown {
  if (!path) return undefined;
  let value = body;
  for (const key of path.split(".")) {
    if (!value || typeof value !== "object") return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function toEpochMs(value: unknown): number | undefined {
  if (typeof value === "number") return value < 1e12 ? value * 1000 : value;
  if (typeof value === "string") {
    if (/^\d+(\.\d+)?$/.test(value)) return toEpochMs(Number(value));
    const parsed = Date.parse(value);
    return Number.isNaN(parsed) ? undefined : parsed;
  }
  return undefined;
}

/**
 * A declarative profile for refresh endpoints that are not OAuth 2: JSON in, JSON out, with
 * the fields found by dotted path. Django SimpleJWT is
 * `jsonProfile({ url, request: "refresh", response: { accessToken: "access", refreshToken: "refresh" } })`.
 */
export function jsonProfile(options: JsonProfileOptions): RefreshProfile {
  const expired = options.expiredStatus ?? [400, 401, 403];
  return {
    async refresh(refreshToken, context) {
      const url = options.url ?? (await context.tokenEndpoint());
      const body =
        typeof options.request === "string"
          ? { [options.request]: refreshToken }
          : options.request(refreshToken);
      const response = await send(context.fetch, url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json", ...options.headers },
        body: JSON.stringify(body),
        signal: context.signal ?? null,
      });
      const ok = options.successStatus ? options.successStatus.includes(response.status) : response.ok;
      if (!ok) {
        await response.body?.cancel();
        const error = expired.includes(response.status) ? "invalid_grant" : `http_${response.status}`;
        throw new TokenEndpointError(response.status, error, undefined, parseRetryAfter(response));
      }
      const raw = (await response.json().catch(() => undefined)) as Record<string, unknown> | undefined;
      const accessToken = pick(raw, options.response.accessToken);
      if (typeof accessToken !== "string") {
        throw new InvalidResponseError(`refresh response has no string at "${options.response.accessToken}"`);
      }
      const newRefreshToken = pick(raw, options.response.refreshToken);
      const expiresIn = Number(pick(raw, options.response.expiresIn));
      return {
        accessToken,
        tokenType: "Bearer",
        refreshToken: typeof newRefreshToken === "string" ? newRefreshToken : undefined,
        expiresIn: Number.isFinite(expiresIn) && options.response.expiresIn ? expiresIn : undefined,
        expiresAt: toEpochMs(pick(raw, options.response.expiresAt)),
        serverDate: serverDateOf(response),
        raw: raw ?? {},
      } satisfies TokenResult;
    },
  };
}
