import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { newOpaqueToken } from "./crypto/opaque-token.ts";

/**
 * The admin token: EVERGREEN_ADMIN_TOKEN if set; otherwise the one kept in the data
 * directory, generated (mode 0600) on first start. `created` is true until the token has been
 * shown once (see markAdminTokenShown), so a first start that fails before it could print the
 * token does not lose it. A configured token shorter than ADMIN_TOKEN_MIN_LENGTH is refused:
 * the admin API is reachable wherever the issuer is, and a short token can be guessed.
 */
export const ADMIN_TOKEN_MIN_LENGTH = 32;

export function resolveAdminToken(
  configured: string | undefined,
  dataDir: string,
): { token: string; created: boolean } {
  if (configured) {
    if (configured.length < ADMIN_TOKEN_MIN_LENGTH) {
      throw new Error(
        `EVERGREEN_ADMIN_TOKEN must be at least ${ADMIN_TOKEN_MIN_LENGTH} characters (e.g. openssl rand -hex 32); refusing to start`,
      );
    }
    return { token: configured, created: false };
  }
  const stored = readStoredAdminToken(dataDir);
  if (stored !== undefined)
    return { token: stored, created: !existsSync(join(dataDir, "admin-token.shown")) };
  mkdirSync(dataDir, { recursive: true });
  const token = newOpaqueToken("ega_");
  writeFileSync(join(dataDir, "admin-token"), `${token}\n`, { mode: 0o600, flag: "wx" });
  return { token, created: true };
}

/** Records that the generated token was printed, so later starts stay quiet about it. */
export function markAdminTokenShown(dataDir: string): void {
  writeFileSync(join(dataDir, "admin-token.shown"), "", { mode: 0o600 });
}

/** The admin token a first start generated and kept in the data directory, if there is one. */
export function readStoredAdminToken(dataDir: string): string | undefined {
  const file = join(dataDir, "admin-token");
  return existsSync(file) ? readFileSync(file, "utf8").trim() : undefined;
}
