/**
 * oidc-provider as a bench case: its own process (oidc-provider-server.ts), refresh tokens minted
 * through its authorization code flow with PKCE, one flow per virtual client, each with its own
 * cookie jar.
 */
import { createHash, randomBytes } from "node:crypto";
import { freePort, inParallel, startProcess } from "./process.ts";
import type { RefreshSystem } from "./system.ts";

const REDIRECT = "http://127.0.0.1/cb";

/** Follows the code flow by hand: authorize → interaction → resume → code → token. */
async function mintOne(base: string): Promise<string> {
  const jar = new Map<string, string>();
  const cookies = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const keep = (res: Response) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair!.indexOf("=");
      jar.set(pair!.slice(0, i), pair!.slice(i + 1));
    }
  };
  const verifier = randomBytes(32).toString("base64url");
  const challenge = createHash("sha256").update(verifier).digest("base64url");
  const q = new URLSearchParams({
    client_id: "bench",
    response_type: "code",
    redirect_uri: REDIRECT,
    scope: "api",
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: randomBytes(8).toString("hex"),
  });
  let url = `${base}/auth?${q}`;
  for (let hop = 0; hop < 8; hop++) {
    const res = await fetch(url, { redirect: "manual", headers: { cookie: cookies() } });
    keep(res);
    await res.arrayBuffer();
    const location = res.headers.get("location");
    if (!location) throw new Error(`oidc-provider authorize flow stopped at ${res.status} ${url}`);
    const next = new URL(location, url);
    if (next.href.startsWith(REDIRECT)) {
      const code = next.searchParams.get("code");
      if (!code) throw new Error(`no code: ${next.search}`);
      const tok = await fetch(`${base}/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "authorization_code",
          code,
          redirect_uri: REDIRECT,
          client_id: "bench",
          code_verifier: verifier,
        }),
      });
      const body = (await tok.json()) as { refresh_token?: string };
      if (!body.refresh_token) throw new Error(`no refresh token: ${JSON.stringify(body)}`);
      return body.refresh_token;
    }
    url = next.href;
  }
  throw new Error("oidc-provider authorize flow did not finish");
}

export async function startOidcProvider(adapter: "map" | "pg", databaseUrl?: string): Promise<RefreshSystem> {
  const port = await freePort();
  const proc = await startProcess(
    ["--import", "tsx", "bench/systems/oidc-provider-server.ts"],
    { OIDC_ADAPTER: adapter, DATABASE_URL: databaseUrl ?? "", NODE_ENV: "production" },
    port,
    "/.well-known/openid-configuration",
  );
  const base = `http://127.0.0.1:${port}`;
  return {
    proc,
    port,
    path: "/token",
    body: (token) => `grant_type=refresh_token&client_id=bench&refresh_token=${token}`,
    mint: (n) => inParallel(n, 4, () => mintOne(base)),
    stop: () => proc.stop(),
  };
}
