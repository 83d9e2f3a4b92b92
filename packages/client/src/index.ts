// Explicit protocol steps: each is one request, its inputs and outputs spelled out.
export { discover, type AuthorizationServerMetadata, type DiscoverOptions } from "./discovery.ts";
export { passwordGrant, type PasswordGrantParameters } from "./grants/password.ts";
export {
  authorizationCodeGrant,
  type AuthorizationCodeParameters,
} from "./grants/authorization-code.ts";
export { createPkce, randomToken } from "./pkce.ts";
export {
  createAuthorizationRequest,
  type AuthorizationParameters,
  type AuthorizationTransaction,
} from "./authorization/request.ts";
export { authorizationCode } from "./authorization/response.ts";
export { exchangeAuthorizationCode } from "./authorization/code-exchange.ts";
export { validateIdToken, type IdTokenClaims, type IdTokenExpectations } from "./id-token.ts";
export { refreshTokens } from "./grants/refresh-token.ts";
export { revokeToken } from "./revocation.ts";
export type { ClientCredentials } from "./client-auth.ts";
export type { FetchLike, TokenResult } from "./token-response.ts";

// Refresh profiles: standard OAuth 2, a declarative JSON mapping, or a function.
export { oauth2Profile } from "./profiles/oauth2.ts";
export { jsonProfile, type JsonProfileOptions, type ResponseMapping } from "./profiles/json-mapping.ts";
export type { RefreshContext, RefreshFunction, RefreshProfile } from "./profiles/refresh-profile.ts";

// The session built on those steps.
export {
  createSession,
  type RedirectLoginOptions,
  type Session,
  type SessionOptions,
} from "./session/create-session.ts";
export type { SessionEvents } from "./session/events.ts";
export { browserLifecycle, type Lifecycle } from "./session/lifecycle.ts";
export type { RetryPolicy } from "./session/retry.ts";
export type { StoredSession, TokenSet } from "./session/stored-session.ts";

// Storage and coordination.
export { memoryStorage, type TokenStorage } from "./storage/token-storage.ts";
export { webStorage } from "./storage/web-storage.ts";
export { indexedDBStorage } from "./storage/indexeddb.ts";
export { lockedStorage, type LockedStorage } from "./storage/locked.ts";
export { processLock, type Lock } from "./coordination/lock.ts";
export { webLock } from "./coordination/web-lock.ts";

// DPoP (RFC 9449): proofs, and where the key lives.
export { dpopFetch, type DpopFetch, type DpopFetchOptions } from "./dpop/dpop-fetch.ts";
export { createDpopProof, jwkThumbprint, type ProofClaims } from "./dpop/proof.ts";
export {
  type DpopKeys,
  generateDpopKeyPair,
  indexedDBDpopKeys,
  memoryDpopKeys,
  storageDpopKeys,
} from "./dpop/keys.ts";

// Time and errors.
export { systemClock, type Clock } from "./clock.ts";
export {
  AuthorizationError,
  BodyNotReplayableError,
  DiscoveryError,
  EvergreenError,
  InvalidResponseError,
  NetworkError,
  RefreshFailedError,
  SessionExpiredError,
  StorageLockedError,
  TokenEndpointError,
} from "./errors.ts";
