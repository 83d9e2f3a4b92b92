import type { Client } from "../clients.ts";

/**
 * Whether a login gets a refresh token: the client must hold the refresh_token grant, and its
 * `refresh_token_policy` decides the rest — `always` (the default, as before the policy
 * existed), `offline_access` (only when that scope was requested and granted), `never`.
 */
export function issuesRefreshToken(client: Client, grantedScope: string): boolean {
  if (!client.grant_types.includes("refresh_token")) return false;
  switch (client.refresh_token_policy) {
    case "never":
      return false;
    case "offline_access":
      return grantedScope.split(" ").includes("offline_access");
    default:
      return true;
  }
}
