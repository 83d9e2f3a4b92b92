/**
 * A small CLI session: logs in against an Evergreen issuer, then keeps calling /userinfo through
 * several access-token lifetimes, printing each refresh as it happens. Tokens live in an
 * encrypted 0600 file, so a second run (or a second copy running at once) reuses the session.
 *
 *   node --conditions=@evergreen/source --import tsx examples/cli-session/main.ts --help
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createSession, discover, memoryStorage, SessionExpiredError } from "@evergreen/client";
import { fileStorage } from "@evergreen/client/node";

const HELP = `Usage: node --conditions=@evergreen/source --import tsx examples/cli-session/main.ts [options]

Logs in to an Evergreen issuer and calls its /userinfo endpoint every few seconds,
refreshing the access token ahead of expiry and printing every refresh.

Options:
  --issuer <url>        issuer URL (default: $EVERGREEN_ISSUER or http://127.0.0.1:8080)
  --client-id <id>      a client allowed the password and refresh_token grants (required)
  --username <name>     log in as this user (needed unless a stored session exists)
  --password <pw>       the password (default: $EVERGREEN_PASSWORD)
  --scope <scope>       requested scope
  --duration <seconds>  how long to keep calling (default: 60)
  --interval <seconds>  pause between calls (default: 2)
  --store <path>        encrypted token file (default: ~/.evergreen/cli-session.tokens)
  --memory              keep tokens in memory only
  --logout              revoke the stored session and exit
  -h, --help            show this help

Tip: give the client a short access_token_ttl (e.g. 10 s) to watch several refreshes a minute.`;

const { values } = parseArgs({
  options: {
    issuer: { type: "string" },
    "client-id": { type: "string" },
    username: { type: "string" },
    password: { type: "string" },
    scope: { type: "string" },
    duration: { type: "string", default: "60" },
    interval: { type: "string", default: "2" },
    store: { type: "string" },
    memory: { type: "boolean", default: false },
    logout: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help) {
  console.log(HELP);
  process.exit(0);
}

const issuer = values.issuer ?? process.env.EVERGREEN_ISSUER ?? "http://127.0.0.1:8080";
const clientId = values["client-id"];
if (!clientId) {
  console.error("--client-id is required (see --help)");
  process.exit(2);
}

const time = () => new Date().toISOString().slice(11, 23);
const storage = values.memory
  ? memoryStorage()
  : fileStorage({ path: values.store ?? join(homedir(), ".evergreen", "cli-session.tokens") });
const session = createSession({ issuer, clientId, storage, refreshLeeway: 5 });

session.on("refreshed", ({ expiresAt, source }) => {
  const by = source === "this" ? "refreshed" : "picked up a refresh by another process";
  const left = expiresAt === undefined ? "unknown" : `${((expiresAt - Date.now()) / 1000).toFixed(1)} s`;
  console.log(`${time()}  ↻ ${by}; new access token valid for ~${left}`);
});
session.on("expired", () => console.log(`${time()}  ✗ session expired: log in again`));
session.on("error", ({ error }) =>
  console.log(`${time()}  ✗ background refresh stopped: ${(error as Error).message} (check the client)`),
);

if (values.logout) {
  const { revoked } = await session.logout();
  console.log(revoked ? "logged out; refresh token revoked" : "logged out locally");
  process.exit(0);
}

if (!(await session.getTokens())) {
  const password = values.password ?? process.env.EVERGREEN_PASSWORD;
  if (!values.username || !password) {
    console.error("no stored session: pass --username and --password (or $EVERGREEN_PASSWORD)");
    process.exit(2);
  }
  const tokens = await session.loginWithPassword(values.username, password, { scope: values.scope });
  const ttl =
    tokens.expiresAt === undefined ? "?" : ((tokens.expiresAt - tokens.receivedAt) / 1000).toFixed(0);
  console.log(`${time()}  ✓ logged in as ${values.username}; access token lifetime ${ttl} s`);
} else {
  console.log(`${time()}  ✓ reusing the stored session`);
}

const userinfo = (await discover(issuer)).userinfo_endpoint ?? `${issuer}/userinfo`;
const until = Date.now() + Number(values.duration) * 1000;
let calls = 0;
while (Date.now() < until) {
  try {
    const response = await session.fetch(userinfo);
    const body = response.ok ? ((await response.json()) as { preferred_username?: string }) : undefined;
    calls++;
    console.log(
      `${time()}  GET /userinfo → ${response.status}${body ? ` (${body.preferred_username})` : ""}`,
    );
  } catch (error) {
    if (error instanceof SessionExpiredError) process.exit(1);
    console.log(`${time()}  ! ${(error as Error).message} (tokens kept; retrying)`);
  }
  await new Promise((resolve) => setTimeout(resolve, Number(values.interval) * 1000));
}
console.log(`${time()}  done: ${calls} calls`);
session.dispose();
