import { DiscoveryError } from "./errors.ts";
import { type FetchLike, send } from "./token-response.ts";

/** RFC 8414 authorization server metadata (the fields this SDK reads). */
export interface AuthorizationServerMetadata {
  issuer: string;
  token_endpoint: string;
  revocation_endpoint?: string | undefined;
  introspection_endpoint?: string | undefined;
  userinfo_endpoint?: string | undefined;
  jwks_uri?: string | undefined;
  [field: string]: unknown;
}

export interface DiscoverOptions {
  fetch?: FetchLike | undefined;
  signal?: AbortSignal | undefined;
}

/**
 * Fetches `/.well-known/oauth-authorization-server` for `issuer`. For an issuer with a path,
 * tries the RFC 8414 location (well-known segment inserted before the path) and then the
 * well-known segment appended after it.
 */
export async function discover(
  issuer: string,
  options: DiscoverOptions = {},
): Promise<AuthorizationServerMetadata> {
  const base = new URL(issuer);
  const path = base.pathname.replace(/\/+$/, "");
  const candidates = [`${base.origin}/.well-known/oauth-authorization-server${path}`];
  if (path) candidates.push(`${base.origin}${path}/.well-known/oauth-authorization-server`);
  let lastError: unknown;
  for (const url of candidates) {
    try {
      const response = await send(options.fetch ?? fetch, url, {
        headers: { accept: "application/json" },
        signal: options.signal ?? null,
      });
      if (!response.ok) throw new DiscoveryError(`${url} answered ${response.status}`);
      const metadata = (await response.json()) as AuthorizationServerMetadata;
      if (typeof metadata?.token_endpoint !== "string") {
        throw new DiscoveryError(`${url} names no token_endpoint`);
      }
      return metadata;
    } catch (error) {
      lastError = error;
    }
  }
  if (lastError instanceof DiscoveryError) throw lastError;
  throw new DiscoveryError(`metadata for ${issuer} could not be fetched`, lastError);
}
