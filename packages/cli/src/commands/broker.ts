import { readFileSync } from "node:fs";
import { runBrokerWorker } from "@evergreen/broker";
import type { ServerConfig } from "@evergreen/server";
import { CliError, chooseBackend } from "../admin-backend.ts";
import { parse } from "../args.ts";
import { openCommandDatabase } from "../open-database.ts";
import { print as printTable } from "./output.ts";

/** Like `print`, with nested objects (metadata, mappings) shown as JSON instead of [object Object]. */
function print(value: unknown, json?: boolean): void {
  const flat = (o: unknown) =>
    typeof o === "object" && o !== null && !Array.isArray(o)
      ? Object.fromEntries(
          Object.entries(o).map(([k, x]) => [
            k,
            typeof x === "object" && x !== null && !Array.isArray(x) && !(x instanceof Date)
              ? JSON.stringify(x)
              : x,
          ]),
        )
      : o;
  printTable(json ? value : Array.isArray(value) ? value.map(flat) : flat(value), json);
}

const COMMON = `  --url URL   use a running server's admin API (default: the local server when one holds the
              embedded database, else the database directly)
  --json      machine-readable output
`;

const PROVIDERS_HELP = `evergreen providers — upstream OAuth providers the broker refreshes against

  evergreen providers add <name> --token-url URL [options]
  evergreen providers add <name> --template google|microsoft|github|salesforce|hubspot|xero|dropbox [options]
  evergreen providers ls
  evergreen providers show <name>
  evergreen providers rm <name>          refused while connections use it

Options for add:
  --client-id ID
  --client-secret-stdin      read the client secret from stdin (never from the command line)
  --auth basic|body          how the client authenticates (default body)
  --format form|json         request body format (default form)
  --refresh-ahead S          refresh this long before expiry (default 300)
  --default-ttl S            lifetime assumed when the provider names none (default 3600)
  --max-concurrency N        upstream calls in flight per worker process
  --map FIELD=PATH           response mapping, repeatable: access_token=authorization.token,
                             refresh_token=refresh.token, expires_at=authorization.expires_at
  --success-status N         the success status when it is not any 2xx (e.g. 201)
${COMMON}`;

const CONNECTIONS_HELP = `evergreen connections — third-party OAuth connections kept fresh by the broker

  evergreen connections add --provider NAME [--metadata JSON] < tokens.json
  evergreen connections ls [--provider NAME] [--status STATUS] [--limit N] [--cursor ID]
  evergreen connections show <id> [--events]
  evergreen connections reauth <id> < tokens.json     replace the tokens after the user re-authorised
  evergreen connections refresh <id>                  refresh now (under the same lease as workers)
  evergreen connections rm <id>

tokens.json (stdin): {"access_token": "...", "refresh_token": "...", "expires_in": 3600}
(or "expires_at": ISO time or epoch). Tokens never go on the command line.
${COMMON}`;

const API_KEYS_HELP = `evergreen api-keys — keys backend services use to read connection tokens

  evergreen api-keys add <name> [--connections ID,ID] [--providers NAME,NAME]
                                  without scopes the key reads every connection; shown once
  evergreen api-keys ls
  evergreen api-keys rm <id>
${COMMON}`;

const BROKER_HELP = `evergreen broker — the broker's worker

  evergreen broker worker     run only a refresh worker (no HTTP) until SIGTERM/SIGINT

Any number of workers may run against one PostgreSQL (DATABASE_URL): leases keep them from
refreshing one connection twice. With the embedded database "evergreen serve" already runs
a worker and holds the data directory. Settings: EVERGREEN_BROKER_POLL_MS, _LEASE_MS,
_UPSTREAM_TIMEOUT_MS (< lease), _BATCH, _CONCURRENCY, EVERGREEN_ENCRYPTION_KEY.
`;

const COMMON_OPTIONS = { url: { type: "string" }, json: { type: "boolean" } } as const;

async function readStdinJson(): Promise<Record<string, unknown>> {
  if (process.stdin.isTTY) throw new CliError("pipe the tokens as JSON on stdin");
  const text = readFileSync(0, "utf8").trim();
  try {
    const v = JSON.parse(text);
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error();
    return v;
  } catch {
    throw new CliError("stdin must hold a JSON object with access_token and refresh_token");
  }
}

function usage(help: string): number {
  process.stderr.write(help);
  return 2;
}

const enc = encodeURIComponent;
const num = (s: string | undefined) => (s === undefined ? undefined : Number(s));

export async function providersCommand(config: ServerConfig, args: string[]): Promise<number> {
  const parsed = parse(
    args,
    {
      ...COMMON_OPTIONS,
      "token-url": { type: "string" },
      template: { type: "string" },
      "client-id": { type: "string" },
      "client-secret-stdin": { type: "boolean" },
      auth: { type: "string" },
      format: { type: "string" },
      "refresh-ahead": { type: "string" },
      "default-ttl": { type: "string" },
      "max-concurrency": { type: "string" },
      map: { type: "string", multiple: true },
      "success-status": { type: "string" },
    },
    PROVIDERS_HELP,
  );
  if (!parsed) return 0;
  const [sub, name] = parsed.positionals;
  const v = parsed.values;
  if (!sub || !["add", "ls", "show", "rm"].includes(sub) || (sub !== "ls" && !name))
    return usage(PROVIDERS_HELP);
  const body: Record<string, unknown> = {};
  if (sub === "add") {
    const response: Record<string, unknown> = {};
    for (const m of v.map ?? []) {
      const [field, path] = m.split("=", 2);
      if (!field || !path) throw new CliError("--map takes FIELD=PATH");
      response[field] = path;
    }
    if (v["success-status"]) response.success_status = Number(v["success-status"]);
    Object.assign(body, {
      name,
      template: v.template,
      token_url: v["token-url"],
      client_id: v["client-id"],
      client_secret: v["client-secret-stdin"] ? readFileSync(0, "utf8").replace(/\r?\n$/, "") : undefined,
      auth_style: v.auth,
      body_format: v.format,
      refresh_ahead: num(v["refresh-ahead"]),
      default_ttl: num(v["default-ttl"]),
      max_concurrency: num(v["max-concurrency"]),
      response: Object.keys(response).length ? response : undefined,
    });
    for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  }
  const backend = await chooseBackend(config, v.url);
  try {
    if (sub === "add") print(await backend.call("POST", "/admin/providers", body), v.json);
    else if (sub === "ls") print(await backend.call("GET", "/admin/providers"), v.json);
    else if (sub === "show") print(await backend.call("GET", `/admin/providers/${enc(name!)}`), v.json);
    else {
      await backend.call("DELETE", `/admin/providers/${enc(name!)}`);
      process.stdout.write(`deleted provider ${name}\n`);
    }
    return 0;
  } finally {
    await backend.close();
  }
}

export async function connectionsCommand(config: ServerConfig, args: string[]): Promise<number> {
  const parsed = parse(
    args,
    {
      ...COMMON_OPTIONS,
      provider: { type: "string" },
      status: { type: "string" },
      limit: { type: "string" },
      cursor: { type: "string" },
      metadata: { type: "string" },
      events: { type: "boolean" },
    },
    CONNECTIONS_HELP,
  );
  if (!parsed) return 0;
  const [sub, id] = parsed.positionals;
  const v = parsed.values;
  const known = ["add", "ls", "show", "reauth", "refresh", "rm"];
  if (!sub || !known.includes(sub) || (!["add", "ls"].includes(sub) && !id)) return usage(CONNECTIONS_HELP);
  if (sub === "add" && !v.provider) return usage(CONNECTIONS_HELP);
  let tokens: Record<string, unknown> | undefined;
  if (sub === "add" || sub === "reauth") tokens = await readStdinJson();
  let metadata: unknown;
  if (v.metadata) {
    try {
      metadata = JSON.parse(v.metadata);
    } catch {
      throw new CliError("--metadata must be JSON");
    }
  }
  const backend = await chooseBackend(config, v.url);
  try {
    switch (sub) {
      case "add":
        print(
          await backend.call("POST", "/admin/connections", { provider: v.provider, ...tokens, metadata }),
          v.json,
        );
        break;
      case "ls": {
        const q = new URLSearchParams();
        for (const k of ["provider", "status", "limit", "cursor"] as const) if (v[k]) q.set(k, v[k]!);
        const page = await backend.call("GET", `/admin/connections${q.size ? `?${q}` : ""}`);
        if (v.json) print(page, true);
        else {
          print(
            page.connections.map((c: Record<string, unknown>) => ({
              id: c.id,
              provider: c.provider,
              status: c.status,
              reason: c.reason,
              expires_at: c.expires_at,
              generation: c.generation,
              failures: c.failure_count,
            })),
          );
          if (page.next_cursor) process.stdout.write(`next page: --cursor ${page.next_cursor}\n`);
        }
        break;
      }
      case "show": {
        const c = await backend.call("GET", `/admin/connections/${enc(id!)}`);
        print(c, v.json);
        if (v.events) print(await backend.call("GET", `/admin/connections/${enc(id!)}/events`), v.json);
        break;
      }
      case "reauth":
        print(await backend.call("POST", `/admin/connections/${enc(id!)}/reauth`, tokens), v.json);
        break;
      case "refresh": {
        print(await backend.call("POST", `/admin/connections/${enc(id!)}/refresh`), v.json);
        break;
      }
      case "rm":
        await backend.call("DELETE", `/admin/connections/${enc(id!)}`);
        process.stdout.write(`deleted connection ${id}\n`);
        break;
    }
    return 0;
  } finally {
    await backend.close();
  }
}

export async function apiKeysCommand(config: ServerConfig, args: string[]): Promise<number> {
  const parsed = parse(
    args,
    { ...COMMON_OPTIONS, connections: { type: "string" }, providers: { type: "string" } },
    API_KEYS_HELP,
  );
  if (!parsed) return 0;
  const [sub, arg] = parsed.positionals;
  const v = parsed.values;
  if (!sub || !["add", "ls", "rm"].includes(sub) || (sub !== "ls" && !arg)) return usage(API_KEYS_HELP);
  const list = (s: string | undefined) => (s ? s.split(",").map((x) => x.trim()) : undefined);
  const backend = await chooseBackend(config, v.url);
  try {
    if (sub === "add") {
      const key = await backend.call("POST", "/admin/api-keys", {
        name: arg,
        connections: list(v.connections),
        providers: list(v.providers),
      });
      print(key, v.json);
      if (!v.json) process.stderr.write("evergreen: the key is shown only now; store it as a secret.\n");
    } else if (sub === "ls") print(await backend.call("GET", "/admin/api-keys"), v.json);
    else {
      await backend.call("DELETE", `/admin/api-keys/${enc(arg!)}`);
      process.stdout.write(`deleted API key ${arg}\n`);
    }
    return 0;
  } finally {
    await backend.close();
  }
}

/** `evergreen keys rotate-broker`: re-seal every broker secret under the newest key. */
export async function rotateBrokerKeysCommand(config: ServerConfig, url: string | undefined, json?: boolean) {
  const backend = await chooseBackend(config, url);
  try {
    print(await backend.call("POST", "/admin/broker/keys/rotate"), json);
    return 0;
  } finally {
    await backend.close();
  }
}

/** Returns -1: the worker keeps running until SIGINT/SIGTERM. */
export async function brokerCommand(config: ServerConfig, args: string[]): Promise<number> {
  const parsed = parse(args, {}, BROKER_HELP);
  if (!parsed) return 0;
  if (parsed.positionals[0] !== "worker") return usage(BROKER_HELP);
  // One connection stays on LISTEN; refreshes hold one only for their short writes (not during
  // the upstream call), so a few more serve many in flight without crowding PostgreSQL.
  const { db, close } = await openCommandDatabase(config, { poolSize: Math.min(config.dbPoolSize, 6) });
  let stopWorker: () => Promise<void>;
  try {
    stopWorker = await runBrokerWorker({
      db,
      encryptionKey: config.encryptionKey,
      logLevel: config.logLevel,
    });
  } catch (err) {
    await close();
    throw err;
  }
  process.stderr.write(
    `evergreen: broker worker running on ${config.databaseUrl ? "PostgreSQL (DATABASE_URL)" : `embedded PGlite in ${config.dataDir}`}\n`,
  );
  const stop = async (signal: string) => {
    process.stderr.write(`evergreen: ${signal}, stopping the broker worker\n`);
    await stopWorker().catch(() => {});
    await close().catch(() => {});
    process.exit(0);
  };
  process.once("SIGINT", () => void stop("SIGINT"));
  process.once("SIGTERM", () => void stop("SIGTERM"));
  return -1;
}
