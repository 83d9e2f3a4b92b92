/**
 * Encryption at rest, looked at the way an attacker with a database dump, a disk image or the
 * logs would: no access token, refresh token, client secret, webhook secret or API key in clear
 * text (nor hex or base64 of it) in any row of any table on PostgreSQL, in any file of the PGlite
 * data directory, or anywhere in the processes' stdout/stderr at LOG_LEVEL=trace.
 *
 * Every search also looks for a canary that IS stored in clear (connection metadata), so an
 * empty result cannot come from searching the wrong place.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BrokerApi } from "./support/broker-api.ts";
import { type BrokerSystem, registerProvider, startBrokerSystem } from "./support/broker-system.ts";
import { dumpAllRows } from "./support/database.ts";
import { type EvergreenProcess, brokerSecrets, startServe } from "./support/processes.ts";
import { type StrictProvider, startStrictProvider } from "./support/strict-provider.ts";

/** The forms a secret could leak in: as is, hex of its bytes (bytea), base64 / base64url. */
function leakForms(secret: string): string[] {
  const b = Buffer.from(secret, "utf8");
  return [secret, b.toString("hex"), b.toString("base64").replace(/=+$/, ""), b.toString("base64url")];
}

/** The secrets of `haystack` it contains in any leak form (one entry per secret found). */
function findLeaks(haystack: string, secrets: Map<string, string>): string[] {
  const found: string[] = [];
  for (const [label, secret] of secrets)
    if (leakForms(secret).some((f) => haystack.includes(f))) found.push(label);
  return found;
}

interface Scenario {
  secrets: Map<string, string>;
  canary: string;
}

/**
 * Three providers (Basic + form, body credentials + JSON, the seed-004 shape), connections that
 * rotate every few seconds, consumers reading them, one grant failing invalid_grant and one
 * failing 500, an API key and a webhook: every path that handles a secret runs.
 */
async function exercise(api: BrokerApi, providers: StrictProvider[]): Promise<Scenario> {
  const secrets = new Map<string, string>();
  const canary = `canary-${randomBytes(12).toString("hex")}`;
  const styles = [
    { auth_style: "basic", body_format: "form" },
    { auth_style: "body", body_format: "json" },
    {
      auth_style: "body",
      body_format: "json",
      response: {
        access_token: "authorization.token",
        expires_at: "authorization.expires_at",
        refresh_token: "refresh.token",
        success_status: 201,
      },
    },
  ];
  const hook = await api.createWebhook({ url: "http://127.0.0.1:9/unreachable" });
  secrets.set("webhook secret", hook.secret);
  const ids: string[] = [];
  for (const [i, p] of providers.entries()) {
    secrets.set(`client secret ${i}`, p.options.clientSecret!);
    await registerProvider(api, p, `enc-${i}`, { refresh_ahead: 3, default_ttl: 6, ...styles[i] });
    for (let k = 0; k < 4; k++) {
      const g = p.seedGrant(4 + k);
      if (k === 2) p.setGrantMode(g.grantId, "invalid_grant");
      if (k === 3) p.setGrantMode(g.grantId, "error_500");
      const c = await api.createConnection({
        provider: `enc-${i}`,
        access_token: g.access_token,
        refresh_token: g.refresh_token,
        expires_in: 4 + k,
        metadata: { canary, k },
      });
      ids.push(c.id);
    }
  }
  const key = await api.createApiKey({ name: "enc", providers: providers.map((_, i) => `enc-${i}`) });
  secrets.set("api key", key.key);
  // let them rotate a few times while consumers read
  const until = Date.now() + 12_000;
  while (Date.now() < until) {
    for (const id of ids) await api.token(id, key.key, 1);
    await new Promise((r) => setTimeout(r, 500));
  }
  for (const p of providers) expect(p.refreshCount, "the providers rotated tokens").toBeGreaterThan(4);
  for (const p of providers) for (const [n, t] of p.issued.entries()) secrets.set(`provider token ${n}`, t);
  return { secrets, canary };
}

function providerOptions(i: number) {
  return {
    accessTokenTtl: 6,
    clientId: `enc-client-${i}`,
    clientSecret: `cs_${randomBytes(18).toString("base64url")}`,
    responseShape: i === 2 ? ("seed-004" as const) : ("standard" as const),
  };
}

describe("encryption at rest on PostgreSQL, and logs at trace level", () => {
  let sys: BrokerSystem;
  let providers: StrictProvider[];
  let scenario: Scenario;
  let rows: Map<string, string[]>;
  let output: string;

  beforeAll(async () => {
    sys = await startBrokerSystem({
      provider: providerOptions(0),
      workers: 1,
      serveWorker: true,
      env: { LOG_LEVEL: "trace", EVERGREEN_BROKER_POLL_MS: "250" },
    });
    providers = [
      sys.provider,
      await startStrictProvider(providerOptions(1)),
      await startStrictProvider(providerOptions(2)),
    ];
    scenario = await exercise(sys.api, providers);
    scenario.secrets.set("admin token", sys.env.EVERGREEN_ADMIN_TOKEN);
    scenario.secrets.set("encryption key", sys.env.EVERGREEN_ENCRYPTION_KEY.split(":")[1]!);
    await Promise.all([...sys.workers, sys.serve].map((p) => p.stop()));
    output = [...sys.workers, sys.serve].map((p) => p.output()).join("\n");
    rows = await dumpAllRows(sys.db.pool);
  }, 180_000);

  afterAll(async () => {
    await providers?.[1]?.close();
    await providers?.[2]?.close();
    await sys?.close();
  }, 60_000);

  it("stores no token or secret in clear text in any row of any table", () => {
    const all = [...rows.values()].flat().join("\n");
    expect(all, "the dump holds the broker's rows").toContain(scenario.canary);
    expect(rows.get("broker_connections")?.length).toBe(12);
    const dbSecrets = new Map(scenario.secrets);
    dbSecrets.delete("admin token"); // not stored by the broker; checked in the logs
    dbSecrets.delete("encryption key");
    const leaks: string[] = [];
    for (const [table, list] of rows)
      for (const label of findLeaks(list.join("\n"), dbSecrets)) leaks.push(`${table}: ${label}`);
    expect(leaks).toEqual([]);
  });

  it("writes no token or secret to stdout/stderr at LOG_LEVEL=trace", () => {
    expect(output.split("\n").length, "trace logging produced lines").toBeGreaterThan(20);
    const leaks = findLeaks(output, scenario.secrets);
    expect(leaks.slice(0, 10), `${leaks.length} leaks`).toEqual([]);
  });
});

describe("encryption at rest on PGlite: the data directory's files", () => {
  let dir: string;
  let provider: StrictProvider;
  let serve: EvergreenProcess | undefined;
  let scenario: Scenario;
  const files: { path: string; bytes: Buffer }[] = [];
  let adminToken = "";

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "evergreen-broker-pglite-"));
    provider = await startStrictProvider(providerOptions(0));
    const env = { ...brokerSecrets(), DATABASE_URL: "", EVERGREEN_DATA_DIR: dir, LOG_LEVEL: "trace" };
    adminToken = env.EVERGREEN_ADMIN_TOKEN;
    serve = await startServe({ ...env, EVERGREEN_BROKER_WORKER: "on", EVERGREEN_BROKER_POLL_MS: "250" });
    const api = new BrokerApi(serve.url, env.EVERGREEN_ADMIN_TOKEN);
    const p1 = await startStrictProvider(providerOptions(1));
    const p2 = await startStrictProvider(providerOptions(2));
    try {
      scenario = await exercise(api, [provider, p1, p2]);
    } finally {
      await serve.stop();
      await p1.close();
      await p2.close();
    }
    scenario.secrets.set("encryption key", env.EVERGREEN_ENCRYPTION_KEY.split(":")[1]!);
    const walk = (d: string) => {
      for (const name of readdirSync(d)) {
        const p = join(d, name);
        if (statSync(p).isDirectory()) walk(p);
        else files.push({ path: p.slice(dir.length + 1), bytes: readFileSync(p) });
      }
    };
    walk(dir);
  }, 180_000);

  afterAll(async () => {
    await serve?.stop();
    await provider?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it("holds no token or secret in any file of the data directory", () => {
    expect(files.length).toBeGreaterThan(0);
    expect(
      files.some((f) => f.bytes.includes(Buffer.from(scenario.canary))),
      "the files hold the broker's rows",
    ).toBe(true);
    const leaks: string[] = [];
    for (const f of files)
      for (const [label, secret] of scenario.secrets)
        if (leakForms(secret).some((form) => f.bytes.includes(Buffer.from(form))))
          leaks.push(`${f.path}: ${label}`);
    expect(leaks.slice(0, 10), `${leaks.length} leaks`).toEqual([]);
  });

  it("and none in the one-process server's output at trace level", () => {
    const secrets = new Map(scenario.secrets);
    secrets.set("admin token", adminToken);
    const leaks = findLeaks(serve!.output(), secrets);
    expect(leaks.slice(0, 10)).toEqual([]);
  });
});
