import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { newOpaqueToken } from "./crypto/opaque-token.ts";

/**
 * The admin token: EVERGREEN_ADMIN_TOKEN if set; otherwise the one kept in the data
 * directory, generated (mode 0600) on first start. `created` tells the caller to print it once.
 */
export function resolveAdminToken(
  configured: string | undefined,
  dataDir: string,
): { token: string; created: boolean } {
  if (configured) return { token: configured, created: false };
  const file = join(dataDir, "admin-token");
  if (existsSync(file)) return { token: readFileSync(file, "utf8").trim(), created: false };
  mkdirSync(dataDir, { recursive: true });
  const token = newOpaqueToken("ega_");
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: "wx" });
  return { token, created: true };
}
