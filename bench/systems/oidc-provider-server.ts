/**
 * oidc-provider 9 as a refresh-token server, run by the bench in its own process:
 *
 *   OIDC_ADAPTER=map|pg DATABASE_URL=… PORT=… node --import tsx bench/systems/oidc-provider-server.ts
 *
 * Configured to do what Evergreen does on a refresh and no more: rotation on
 * (`rotateRefreshToken: true`, reuse of a consumed token revokes the grant), access tokens as
 * JWTs signed with EdDSA (Ed25519, the algorithm Evergreen signs with; resource indicators with
 * a default resource is how oidc-provider issues JWT access tokens), no `openid` scope so no ID
 * token is signed on refresh, public client with PKCE. Refresh tokens are minted by its own
 * authorization code flow; `/interaction/:uid` is a minimal interaction that logs the bench
 * user in and grants the scope in one step (what a login and consent page would submit).
 */
import { generateKeyPairSync } from "node:crypto";
import { createServer } from "node:http";
import Provider from "oidc-provider";
import pg from "pg";
import { MapAdapter } from "./oidc-map-adapter.ts";
import { createOidcTables, pgAdapter } from "./oidc-pg-adapter.ts";

const PORT = Number(process.env.PORT ?? 0);
const ISSUER = `http://127.0.0.1:${PORT}`;
const RESOURCE = "https://api.bench.example";

let pool: pg.Pool | undefined;
let adapter: unknown = MapAdapter;
if (process.env.OIDC_ADAPTER === "pg") {
  pool = new pg.Pool({
    connectionString: process.env.DATABASE_URL,
    max: Number(process.env.OIDC_DB_POOL ?? 16),
  });
  await createOidcTables(pool);
  adapter = pgAdapter(pool);
}

const ed = generateKeyPairSync("ed25519").privateKey.export({ format: "jwk" });
const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ format: "jwk" });

const provider = new Provider(ISSUER, {
  adapter: adapter as never,
  clients: [
    {
      client_id: "bench",
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      redirect_uris: ["http://127.0.0.1/cb"],
    },
  ],
  jwks: {
    keys: [
      { ...rsa, kid: "rs", use: "sig" },
      { ...ed, kid: "ed", alg: "EdDSA", use: "sig" },
    ] as never,
  },
  enabledJWA: { idTokenSigningAlgValues: ["RS256", "EdDSA"] } as never,
  findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
  scopes: ["api"],
  rotateRefreshToken: true,
  issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(t: string): boolean }) =>
    client.grantTypeAllowed("refresh_token"),
  ttl: {
    AccessToken: 600,
    RefreshToken: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    Session: 3600,
    Interaction: 600,
  },
  features: {
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      useGrantedResource: async () => true,
      getResourceServerInfo: async () => ({
        scope: "api",
        audience: RESOURCE,
        accessTokenTTL: 600,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "EdDSA" } },
      }),
    },
  },
  interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
});
provider.on("server_error", (_ctx: unknown, err: unknown) =>
  process.stderr.write(`oidc-provider server_error: ${err}\n`),
);

const callback = provider.callback();
const server = createServer(async (req, res) => {
  if (req.url?.startsWith("/interaction/")) {
    try {
      // Throws unless this is a live interaction of this browser (its cookie).
      await provider.interactionDetails(req, res);
      const grant = new provider.Grant({ accountId: "bench", clientId: "bench" });
      grant.addOIDCScope("api");
      grant.addResourceScope(RESOURCE, "api");
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: "bench" }, consent: { grantId } },
        { mergeWithLastSubmission: false },
      );
    } catch (err) {
      res.statusCode = 500;
      res.end(String(err));
    }
    return;
  }
  callback(req, res);
});
server.keepAliveTimeout = 5_000;
server.listen(PORT, "127.0.0.1", () => process.stderr.write(`oidc-provider listening on ${ISSUER}\n`));

const stop = () => {
  server.close();
  server.closeAllConnections();
  if (pool) void pool.end().finally(() => process.exit(0));
  else process.exit(0);
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
