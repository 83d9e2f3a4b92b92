import { OAuthError } from "./errors.ts";

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** Splits a scope parameter; undefined stays undefined ("not requested"). */
export function parseScope(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(" ").filter((s) => s.length > 0);
  for (const p of parts)
    if (!SCOPE_TOKEN.test(p)) throw new OAuthError("invalid_scope", "scope contains an invalid character");
  return [...new Set(parts)];
}

export function formatScope(scopes: readonly string[]): string {
  return scopes.join(" ");
}

/** `granted` cut down to what `registered` still allows, in `granted`'s order. */
export function narrowScope(granted: string, registered: string): string {
  const allowed = new Set(registered.split(" "));
  return formatScope(granted.split(" ").filter((s) => s !== "" && allowed.has(s)));
}

/**
 * The scope granted at login: what was requested, which must be within what the client is
 * registered for; nothing requested means everything registered (RFC 6749 §3.3 default).
 */
export function grantScope(requested: string[] | undefined, registered: string): string {
  const allowed = registered.split(" ").filter(Boolean);
  if (requested === undefined) return formatScope(allowed);
  const outside = requested.filter((s) => !allowed.includes(s));
  if (outside.length > 0)
    throw new OAuthError("invalid_scope", `scope not allowed for this client: ${outside.join(" ")}`);
  return formatScope(requested);
}
