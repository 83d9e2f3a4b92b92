/**
 * `npm run demo`: the issuer, the todo API and the web app in one process, with a seeded user.
 *
 *   npm run demo -- --help
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { startDemo } from "./demo.ts";

const HELP = `Usage: npm run demo -- [options]

Starts the Evergreen issuer (embedded database in .evergreen-demo/, or DATABASE_URL), the todo
API and its web app; seeds a user and two public clients; prints the URL and the credentials.

Options:
  --legacy              preselect the seed's legacy /refresh/ endpoint in the sign-in form
  --port <n>            the web app and API (default 8091)
  --issuer-port <n>     the issuer (default 8090)
  --ttl <seconds>       access-token lifetime (default 30)
  --data-dir <path>     issuer data and embedded database (default .evergreen-demo)
  --verbose             the issuer's request log
  -h, --help            show this help`;

const { values } = parseArgs({
  options: {
    legacy: { type: "boolean", default: false },
    port: { type: "string", default: "8091" },
    "issuer-port": { type: "string", default: "8090" },
    ttl: { type: "string", default: "30" },
    "data-dir": { type: "string", default: ".evergreen-demo" },
    verbose: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const number = (name: string, value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a whole number (see --help)`);
    process.exit(2);
  }
  return n;
};

console.log("Starting the issuer, the todo API and the web app …");
const demo = await startDemo({
  dataDir: resolve(values["data-dir"]),
  databaseUrl: process.env.DATABASE_URL,
  port: number("port", values.port),
  issuerPort: number("issuer-port", values["issuer-port"]),
  accessTokenTtl: number("ttl", values.ttl),
  legacy: values.legacy,
  verbose: values.verbose,
});

console.log(`
  Todo app   ${demo.appUrl}      (open it in two tabs: one session, one refresh)
  Issuer     ${demo.issuerUrl}
  Sign in    ${demo.username} / ${demo.password}   (a new password each start)
  Refresh    ${values.legacy ? "legacy POST /refresh/ {refresh} → {access}" : "standard OAuth, rotating"} (switch on the sign-in form)
  Tokens     access tokens live ${values.ttl} s; watch the activity log

Ctrl-C stops everything.`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await demo.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
