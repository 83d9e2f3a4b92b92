import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { createSession } from "@evergreen/client";
import { fileStorage, loginWithLoopback } from "@evergreen/client/node";
import { CliError } from "../admin-backend.ts";
import { parse } from "../args.ts";

const LOGIN_HELP = `evergreen login — sign in from this terminal with your browser (RFC 8252 loopback)

  evergreen login --issuer URL --client-id ID [--scope "openid offline_access"] [--no-browser]

The client must be public, allow authorization_code and refresh_token, and have the redirect
URI http://127.0.0.1/callback registered (any port matches). The session is kept encrypted in
$EVERGREEN_HOME/session (default ~/.evergreen), and "evergreen token" prints a fresh access token.
`;

const TOKEN_HELP = `evergreen token — print a valid access token of the session "evergreen login" started

  curl -H "Authorization: Bearer $(npx evergreen token)" https://api.example/…

Refreshes first when the token is about to expire. Exit code 1 when there is no session.
`;

interface LoginProfile {
  issuer: string;
  clientId: string;
}

/** Where the CLI keeps its own session (not the server's data directory). */
function home(): string {
  return process.env.EVERGREEN_HOME || join(homedir(), ".evergreen");
}

function storage() {
  return fileStorage({ path: join(home(), "session") });
}

/** Opens a URL in the system browser; prints it too, for terminals without one. */
function systemBrowser(url: string): void {
  const command =
    process.platform === "darwin" ? "open" : process.platform === "win32" ? "explorer" : "xdg-open";
  const child = spawn(command, [url], { stdio: "ignore", detached: true });
  child.on("error", () => {});
  child.unref();
}

export interface LoginIo {
  /** Replaces the system browser (tests). */
  openBrowser?: (url: string) => void | Promise<void>;
  out?: (text: string) => void;
  err?: (text: string) => void;
}

/** `evergreen login`: the loopback flow, then the session stored for `evergreen token`. */
export async function loginCommand(args: string[], io: LoginIo = {}): Promise<number> {
  const parsed = parse(
    args,
    {
      issuer: { type: "string" },
      "client-id": { type: "string" },
      scope: { type: "string" },
      "no-browser": { type: "boolean" },
    },
    LOGIN_HELP,
  );
  if (!parsed) return 0;
  const issuer = parsed.values.issuer?.replace(/\/+$/, "");
  const clientId = parsed.values["client-id"];
  if (!issuer || !clientId) throw new CliError("--issuer and --client-id are required");
  const err = io.err ?? ((t: string) => process.stderr.write(t));
  const tokens = await loginWithLoopback({
    issuer,
    client: { clientId },
    scope: parsed.values.scope ?? "openid offline_access",
    openBrowser: async (url) => {
      err(`Opening your browser to sign in. If it does not open, visit:\n  ${url}\n`);
      if (io.openBrowser) await io.openBrowser(url);
      else if (!parsed.values["no-browser"]) systemBrowser(url);
    },
  });
  if (!tokens.refreshToken)
    err("warning: the issuer returned no refresh token; the session ends with the access token\n");
  const session = createSession({ issuer, clientId, storage: storage(), autoRefresh: false });
  try {
    await session.setTokens(tokens);
  } finally {
    session.dispose();
  }
  const profile: LoginProfile = { issuer, clientId };
  await mkdir(home(), { recursive: true, mode: 0o700 });
  await writeFile(join(home(), "login.json"), `${JSON.stringify(profile)}\n`, { mode: 0o600 });
  err(`Signed in to ${issuer}.\n`);
  return 0;
}

/** `evergreen token`: prints a valid access token, refreshing first if needed. */
export async function tokenCommand(args: string[], io: LoginIo = {}): Promise<number> {
  if (!parse(args, {}, TOKEN_HELP)) return 0;
  let profile: LoginProfile;
  try {
    profile = JSON.parse(await readFile(join(home(), "login.json"), "utf8")) as LoginProfile;
  } catch {
    throw new CliError('not signed in: run "evergreen login --issuer … --client-id …" first');
  }
  const session = createSession({ ...profile, storage: storage(), autoRefresh: false });
  try {
    const token = await session.getAccessToken().catch((e: Error) => {
      throw new CliError(`no valid session (${e.message}): run "evergreen login" again`);
    });
    (io.out ?? ((t: string) => process.stdout.write(t)))(`${token}\n`);
    return 0;
  } finally {
    session.dispose();
  }
}
