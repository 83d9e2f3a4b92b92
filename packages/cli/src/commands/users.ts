import type { ServerConfig } from "@evergreen/server";
import { chooseBackend } from "../admin-backend.ts";
import { parse, readSecret } from "../args.ts";
import { print } from "./output.ts";

const HELP = `evergreen users — manage users

  evergreen users add <username> [--email E] [--password-stdin] [--admin]
  evergreen users list
  evergreen users set-admin <id|username> [--off]  allow (or stop) signing in to the dashboard
  evergreen users show <id|username>
  evergreen users passwd <id|username> [--password-stdin]
  evergreen users delete <id|username>
  evergreen users disable <id|username>            end their sessions, refuse their logins
  evergreen users enable <id|username>
  evergreen users sessions <id|username>           the user's sessions (refresh-token families)
  evergreen users revoke <id|username> [<sid>]     revoke one session, or all of them

Passwords are read from stdin with --password-stdin, or asked for without echo; never
put them on the command line.
Options: --url URL  use a running server's admin API (needed while "serve" runs on the
         embedded database; found automatically on the default address); --json
`;

export async function usersCommand(config: ServerConfig, args: string[]): Promise<number> {
  const parsed = parse(
    args,
    {
      email: { type: "string" },
      "password-stdin": { type: "boolean" },
      admin: { type: "boolean" },
      off: { type: "boolean" },
      url: { type: "string" },
      json: { type: "boolean" },
    },
    HELP,
  );
  if (!parsed) return 0;
  const [sub, target, sid] = parsed.positionals;
  const v = parsed.values;
  const needsTarget = [
    "add",
    "show",
    "passwd",
    "delete",
    "sessions",
    "revoke",
    "set-admin",
    "disable",
    "enable",
  ];
  if (!sub || (needsTarget.includes(sub) && !target) || ![...needsTarget, "list"].includes(sub)) {
    process.stderr.write(HELP);
    return 2;
  }
  const password =
    sub === "add" || sub === "passwd"
      ? await readSecret("Password: ", v["password-stdin"] === true)
      : undefined;
  const backend = await chooseBackend(config, v.url);
  try {
    switch (sub) {
      case "add":
        print(
          await backend.createUser({ username: target, password, email: v.email, admin: v.admin === true }),
          v.json,
        );
        break;
      case "list":
        print(await backend.listUsers(), v.json);
        break;
      case "show":
        print(await backend.getUser(target!), v.json);
        break;
      case "passwd":
        await backend.updateUser(target!, { password });
        process.stdout.write("password changed\n");
        break;
      case "set-admin":
        print(await backend.updateUser(target!, { admin: v.off !== true }), v.json);
        break;
      case "disable":
      case "enable":
        print(await backend.updateUser(target!, { disabled: sub === "disable" }), v.json);
        break;
      case "delete":
        await backend.deleteUser(target!);
        process.stdout.write("deleted\n");
        break;
      case "sessions":
        print(await backend.listSessions(target!), v.json);
        break;
      case "revoke":
        print(await backend.revokeSessions(target!, sid), v.json);
        break;
    }
    return 0;
  } finally {
    await backend.close();
  }
}
