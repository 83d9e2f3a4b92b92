export { buildIssuer, type Issuer, type IssuerExtension, type IssuerOptions } from "./app.ts";
export type { IssuerContext } from "./context.ts";
export { startServer, type RunningServer } from "./server.ts";
export { loadConfig, type ServerConfig, CLIENT_DEFAULTS } from "./config.ts";
export { runJanitor } from "./janitor.ts";
export { markAdminTokenShown, readStoredAdminToken, resolveAdminToken } from "./admin-token.ts";
export { parseKeyRing } from "./crypto/secret-box.ts";
export { OAuthError, BearerTokenError, AdminApiError } from "./errors.ts";
export { bearerSecretCheck } from "./bearer-secret.ts";
