import type { ServerConfig } from "@evergreen/server";
import { chooseBackend, janitorOnce } from "../admin-backend.ts";
import { openCommandDatabase } from "../open-database.ts";
import { parse } from "../args.ts";
import { rotateBrokerKeysCommand } from "./broker.ts";
import { print } from "./output.ts";

export async function migrateCommand(config: ServerConfig, args: string[]): Promise<number> {
  const help = "evergreen migrate — apply pending schema migrations to the configured database, then exit\n";
  if (!parse(args, {}, help)) return 0;
  const { applied, close } = await openCommandDatabase(config);
  await close();
  process.stdout.write(
    applied.length ? `applied migrations: ${applied.join(", ")}\n` : "schema is up to date\n",
  );
  return 0;
}

const KEYS_HELP = `evergreen keys — access-token signing keys

  evergreen keys list      the published keys (JWKS) and which one signs
  evergreen keys rotate    start signing with a new key; the old ones stay published until
                           every token they signed has expired (longest access TTL + 60 s)
  evergreen keys rotate-broker
                           re-seal broker tokens and secrets under the first key of
                           EVERGREEN_ENCRYPTION_KEY (in batches), so older keys can be removed
Options: --url URL  use a running server's admin API; --json  machine-readable output
`;

export async function keysCommand(config: ServerConfig, args: string[]): Promise<number> {
  const parsed = parse(args, { url: { type: "string" }, json: { type: "boolean" } }, KEYS_HELP);
  if (!parsed) return 0;
  const [sub] = parsed.positionals;
  if (sub === "rotate-broker") return rotateBrokerKeysCommand(config, parsed.values.url, parsed.values.json);
  if (sub !== "list" && sub !== "rotate") {
    process.stderr.write(KEYS_HELP);
    return 2;
  }
  const backend = await chooseBackend(config, parsed.values.url);
  try {
    print(sub === "list" ? await backend.listKeys() : await backend.rotateKeys(), parsed.values.json);
    return 0;
  } finally {
    await backend.close();
  }
}

export async function janitorCommand(config: ServerConfig, args: string[]): Promise<number> {
  const help = `evergreen janitor — delete what can never be used again, once:
  sessions revoked or expired longer than EVERGREEN_RETENTION seconds ago (default 7 days),
  rotated refresh tokens whose idle expiry is that long past, sealed grace-window successors,
  retired signing keys past their overlap, audit partitions older than EVERGREEN_AUDIT_RETENTION
  (default 90 days); it also creates the coming days' audit partitions.
  "evergreen serve" also runs it every EVERGREEN_JANITOR_INTERVAL seconds (default 600).
`;
  const parsed = parse(args, { json: { type: "boolean" } }, help);
  if (!parsed) return 0;
  print(await janitorOnce(config), parsed.values.json);
  return 0;
}
