import type { Clock, Database } from "@evergreen/db";
import { clientQueries } from "./queries.ts";

export type AuthMethod = "none" | "client_secret_basic" | "client_secret_post";
export const AUTH_METHODS: AuthMethod[] = ["none", "client_secret_basic", "client_secret_post"];
/** RFC 8628 device authorization grant. */
export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
export const GRANT_TYPES = [
  "password",
  "refresh_token",
  "client_credentials",
  "authorization_code",
  DEVICE_CODE_GRANT,
] as const;

/** When a login gets a refresh token (besides the client holding the refresh_token grant). */
export type RefreshTokenPolicy = "always" | "offline_access" | "never";
export const REFRESH_TOKEN_POLICIES: RefreshTokenPolicy[] = ["always", "offline_access", "never"];

export interface Client {
  client_id: string;
  client_name: string | null;
  secret_hash: Buffer | null;
  token_endpoint_auth_method: AuthMethod;
  grant_types: string[];
  redirect_uris: string[];
  scope: string;
  access_token_ttl: number;
  refresh_token_idle_ttl: number;
  refresh_token_absolute_ttl: number;
  rotate_refresh_tokens: boolean;
  refresh_token_reuse_grace: number;
  max_sessions_per_user: number;
  created_at: Date;
  updated_at: Date;
  /** First-party apps: sign-in never shows the consent page. */
  skip_consent: boolean;
  refresh_token_policy: RefreshTokenPolicy;
  /** Every token request must carry a DPoP proof (RFC 9449 §5.2); its tokens are all DPoP-bound. */
  dpop_bound_access_tokens: boolean;
  /** /authorize accepts only pushed requests (RFC 9126 §6), by `request_uri`. */
  require_pushed_authorization_requests: boolean;
}

// Clients are read on every token request. A few seconds of staleness in *other* processes
// after an admin change is acceptable: every refresh statement re-joins the clients table,
// so a deleted client cannot refresh even through a stale cache entry.
const CACHE_TTL_MS = 5_000;

/** Client lookups with a short, loss-safe cache. */
export class ClientRegistry {
  #cache = new Map<string, { client: Client | null; at: number }>();
  private readonly db: Database;
  private readonly clock: Clock;
  constructor(db: Database, clock: Clock) {
    this.db = db;
    this.clock = clock;
  }

  async get(clientId: string): Promise<Client | null> {
    const hit = this.#cache.get(clientId);
    const now = this.clock.now().getTime();
    if (hit && now - hit.at < CACHE_TTL_MS && now >= hit.at) return hit.client;
    const { rows } = await this.db.query<Client>(clientQueries.byId({ client_id: clientId }));
    const client = rows[0] ?? null;
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(clientId, { client, at: now });
    return client;
  }

  invalidate(clientId: string): void {
    this.#cache.delete(clientId);
  }
}
