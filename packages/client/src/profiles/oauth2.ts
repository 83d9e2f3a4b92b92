import type { ClientCredentials } from "../client-auth.ts";
import { refreshTokens } from "../grants/refresh-token.ts";
import type { RefreshProfile } from "./refresh-profile.ts";

/** The standard RFC 6749 refresh: form-encoded `grant_type=refresh_token` with client auth. */
export function oauth2Profile(
  client: Omit<ClientCredentials, "clientId"> & { scope?: string | undefined } = {},
): RefreshProfile {
  return {
    async refresh(refreshToken, context) {
      return refreshTokens(
        await context.tokenEndpoint(),
        { ...client, clientId: context.clientId },
        refreshToken,
        {
          scope: client.scope,
          fetch: context.fetch,
          signal: context.signal,
        },
      );
    },
  };
}
