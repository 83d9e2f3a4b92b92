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

/** An issuer identifier without trailing slashes: `https://as.example/` names `https://as.example`. */
const trimmed = (issuer: string) => issuer.replace(/\/+$/, "");

/**
 * Fetches the metadata of `issuer`: first RFC 8414's `/.well-known/oauth-authorization-server`
 * (for an issuer with a path, the well-known segment inserted before the path, then appended
 * after it), and when the server has none of those (404), OpenID Connect Discovery's
 * `/.well-known/openid-configuration`. Any other failure is reported, not skipped. The
 * document's `issuer` must be the issuer asked for (RFC 8414 §3.3; a trailing slash aside),
 * else a DiscoveryError with code `issuer_mismatch`: endpoints named by another issuer's
 * metadata are never used.
 */
export async function discover(
  issuer: string,
  options: DiscoverOptions = {},
): Promise<AuthorizationServerMetadata> {
  const base = new URL(issuer);
  const path = base.pathname.replace(/\/+$/, "");
  const candidates = [`${base.origin}/.well-known/oauth-authorization-server${path}`];
  if (path) candidates.push(`${base.origin}${path}/.well-known/oauth-authorization-server`);
  candidates.push(`${base.origin}${path}/.well-known/openid-configuration`);
  for (const url of candidates) {
    let metadata: AuthorizationServerMetadata;
    try {
      const response = await send(options.fetch ?? fetch, url, {
        headers: { accept: "application/json" },
        signal: options.signal ?? null,
      });
      if (response.status === 404) {
        await response.body?.cancel().catch(() => undefined);
        continue; // not there: the next well-known location
      }
      if (!response.ok) throw new DiscoveryError(`${url} answered ${response.status}`);
      metadata = (await response.json()) as AuthorizationServerMetadata;
    } catch (error) {
      if (error instanceof DiscoveryError || (error as Error)?.name === "AbortError") throw error;
      throw new DiscoveryError(`metadata for ${issuer} could not be fetched from ${url}`, error);
    }
    if (typeof metadata?.issuer !== "string" || trimmed(metadata.issuer) !== trimmed(issuer)) {
      throw new DiscoveryError(
        `${url} is the metadata of issuer ${JSON.stringify(metadata?.issuer)}, not of ${issuer}`,
        undefined,
        "issuer_mismatch",
      );
    }
    if (typeof metadata.token_endpoint !== "string") {
      throw new DiscoveryError(`${url} names no token_endpoint`);
    }
    return metadata;
  }
  throw new DiscoveryError(`no metadata for ${issuer}: ${candidates.join(", ")} answered 404`);
}
