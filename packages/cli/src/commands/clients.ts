import type { ServerConfig } from "@evergreen/server";
import { chooseBackend } from "../admin-backend.ts";
import { parse } from "../args.ts";
import { print } from "./output.ts";

const HELP = `evergreen clients — manage OAuth clients

  evergreen clients add <client_id> [options]
  evergreen clients list
  evergreen clients show <client_id>
  evergreen clients update <client_id> [options]
  evergreen clients rotate-secret <client_id>     issue a new secret (shown once)
  evergreen clients delete <client_id>            also ends every session of the client

Options for add/update:
  --public                  no secret (mobile, SPA, CLI); token_endpoint_auth_method "none"
  --auth METHOD             client_secret_basic (default for confidential) | client_secret_post | none
  --grants LIST             comma-separated: password,refresh_token,client_credentials,authorization_code,
                            urn:ietf:params:oauth:grant-type:device_code
  --redirect-uris LIST      comma-separated redirect URIs (authorization_code); http://127.0.0.1/path
                            matches any port (native apps)
  --skip-consent            first-party app: sign-in never shows the consent page
  --refresh-policy P        always (default) | offline_access | never: when a login gets a refresh token
  --scope "a b"             scopes the client may request
  --name NAME               display name
  --access-ttl S            access-token lifetime, seconds (default 600)
  --idle-ttl S              refresh-token idle (sliding) lifetime (default 14 days)
  --absolute-ttl S          refresh-token absolute lifetime from login (default 90 days)
  --no-rotate / --rotate    turn rotation of refresh tokens on use off / on (default on)
  --grace S                 reuse grace window for concurrent/retried refreshes (default 15)
  --max-sessions N          live sessions per user; the oldest is evicted beyond it (default 50)
  --url URL, --json         as for "evergreen users"

The secret of a confidential client is printed once, on add or rotate-secret.
`;

export async function clientsCommand(config: ServerConfig, args: string[]): Promise<number> {
  const parsed = parse(
    args,
    {
      public: { type: "boolean" },
      auth: { type: "string" },
      grants: { type: "string" },
      "redirect-uris": { type: "string" },
      "skip-consent": { type: "boolean" },
      "refresh-policy": { type: "string" },
      scope: { type: "string" },
      name: { type: "string" },
      "access-ttl": { type: "string" },
      "idle-ttl": { type: "string" },
      "absolute-ttl": { type: "string" },
      "no-rotate": { type: "boolean" },
      rotate: { type: "boolean" },
      grace: { type: "string" },
      "max-sessions": { type: "string" },
      url: { type: "string" },
      json: { type: "boolean" },
    },
    HELP,
  );
  if (!parsed) return 0;
  const [sub, id] = parsed.positionals;
  const v = parsed.values;
  const known = ["add", "list", "show", "update", "rotate-secret", "delete"];
  if (!sub || !known.includes(sub) || (sub !== "list" && !id)) {
    process.stderr.write(HELP);
    return 2;
  }
  const num = (s: string | undefined) => (s === undefined ? undefined : Number(s));
  const body: Record<string, unknown> = {
    client_name: v.name,
    token_endpoint_auth_method: v.public ? "none" : v.auth,
    grant_types: v.grants?.split(",").map((g) => g.trim()),
    redirect_uris: v["redirect-uris"]?.split(",").map((u) => u.trim()),
    skip_consent: v["skip-consent"] ? true : undefined,
    refresh_token_policy: v["refresh-policy"],
    scope: v.scope,
    access_token_ttl: num(v["access-ttl"]),
    refresh_token_idle_ttl: num(v["idle-ttl"]),
    refresh_token_absolute_ttl: num(v["absolute-ttl"]),
    rotate_refresh_tokens: v["no-rotate"] ? false : v.rotate ? true : undefined,
    refresh_token_reuse_grace: num(v.grace),
    max_sessions_per_user: num(v["max-sessions"]),
  };
  for (const k of Object.keys(body)) if (body[k] === undefined) delete body[k];
  const backend = await chooseBackend(config, v.url);
  try {
    switch (sub) {
      case "add":
        if (!body.grant_types) body.grant_types = ["password", "refresh_token"];
        print(await backend.createClient({ client_id: id, ...body }), v.json);
        break;
      case "list":
        print(await backend.listClients(), v.json);
        break;
      case "show":
        print(await backend.getClient(id!), v.json);
        break;
      case "update":
        print(await backend.updateClient(id!, body), v.json);
        break;
      case "rotate-secret":
        print(await backend.updateClient(id!, { rotate_secret: true }), v.json);
        break;
      case "delete":
        await backend.deleteClient(id!);
        process.stdout.write("deleted\n");
        break;
    }
    return 0;
  } finally {
    await backend.close();
  }
}
