import { loadConfig } from "@evergreen/server";
import { CliError } from "./admin-backend.ts";
import { apiKeysCommand, brokerCommand, connectionsCommand, providersCommand } from "./commands/broker.ts";
import { clientsCommand } from "./commands/clients.ts";
import { loginCommand, tokenCommand } from "./commands/login.ts";
import { janitorCommand, keysCommand, migrateCommand } from "./commands/maintenance.ts";
import { serveCommand } from "./commands/serve.ts";
import { usersCommand } from "./commands/users.ts";

export const HELP = `evergreen — refresh tokens done right, end to end

Usage: evergreen <command> [options]

Commands:
  serve                 Start the issuer on http://127.0.0.1:8080
  migrate               Create or upgrade the database schema, then exit
  users <subcommand>    Manage users:   add, list, show, passwd, delete, sessions, revoke
  clients <subcommand>  Manage clients: add, list, show, update, rotate-secret, delete
  keys <subcommand>     Signing keys:   list, rotate, rotate-broker (re-seal broker secrets)
  providers <sub>       Broker providers:   add, ls, show, rm
  connections <sub>     Broker connections: add, ls, show, reauth, refresh, rm
  api-keys <sub>        Broker API keys:    add, ls, rm
  broker worker         Run only a broker refresh worker
  janitor               Delete expired sessions, grace-window seals and old audit events once
  login                 Sign in from this terminal with your browser (loopback redirect)
  token                 Print a fresh access token of that session (refreshes as needed)

Run "evergreen <command> --help" for a command's options.

Environment:
  DATABASE_URL              postgres://… (default: embedded PGlite in $EVERGREEN_DATA_DIR)
  EVERGREEN_DATA_DIR        data directory (default ./.evergreen)
  PORT, HOST, ISSUER        where to listen and the issuer URL (default 127.0.0.1:8080)
  EVERGREEN_ADMIN_TOKEN     admin API token (default: generated on first start, kept in the data dir)
  EVERGREEN_ENCRYPTION_KEY  base64 32-byte key(s) sealing private keys and broker tokens at rest:
                            "id:key[,id:key]" (the first seals, all open)
  EVERGREEN_BROKER_WORKER=off  serve without the in-process broker worker
  EVERGREEN_RATE_LIMIT=off  disable rate limits (benchmarks); REDIS_URL shares limits across processes
  LOG_LEVEL                 pino level (default info)
  EVERGREEN_HOME            where "login" keeps its encrypted session (default ~/.evergreen)
`;

/** Entry point; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const config = loadConfig();
  try {
    switch (command) {
      case "serve":
        return await serveCommand(config, rest);
      case "migrate":
        return await migrateCommand(config, rest);
      case "users":
        return await usersCommand(config, rest);
      case "clients":
        return await clientsCommand(config, rest);
      case "keys":
        return await keysCommand(config, rest);
      case "janitor":
        return await janitorCommand(config, rest);
      case "login":
        return await loginCommand(rest);
      case "token":
        return await tokenCommand(rest);
      case "providers":
        return await providersCommand(config, rest);
      case "connections":
        return await connectionsCommand(config, rest);
      case "api-keys":
        return await apiKeysCommand(config, rest);
      case "broker":
        return await brokerCommand(config, rest);
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(HELP);
        return command === undefined ? 1 : 0;
      default:
        process.stderr.write(`evergreen: unknown command "${command}"\n\n${HELP}`);
        return 2;
    }
  } catch (err) {
    const known =
      err instanceof CliError ||
      (err as Error)?.name === "AdminApiError" ||
      (err as Error)?.name === "TypeError";
    process.stderr.write(`evergreen: ${(err as Error)?.message ?? String(err)}\n`);
    if (!known && process.env.DEBUG) process.stderr.write(`${(err as Error)?.stack}\n`);
    return 1;
  }
}

const isEntry = process.argv[1] && /(?:main\.[jt]s|evergreen(?:\.js)?)$/.test(process.argv[1]);
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => {
      // serve keeps running; other commands exit with their code.
      if (code !== -1) process.exit(code);
    },
    (err) => {
      process.stderr.write(`evergreen: ${err?.message ?? err}\n`);
      process.exit(1);
    },
  );
}
