/**
 * One broker deployment for a system test: a fresh PostgreSQL database, a strict upstream
 * provider, one `evergreen serve` (the admin and consumer API) and N `evergreen broker worker`
 * processes, all on that database; plus the steps every test repeats (register the provider,
 * create connections from seeded grants).
 */
import { BrokerApi } from "./broker-api.ts";
import { type FreshDatabase, createFreshDatabase } from "./database.ts";
import {
  type BrokerEnv,
  type EvergreenProcess,
  brokerSecrets,
  startServe,
  startWorker,
  stopAll,
} from "./processes.ts";
import {
  type SeededGrant,
  type StrictProvider,
  type StrictProviderOptions,
  startStrictProvider,
} from "./strict-provider.ts";

export interface BrokerSystemOptions {
  provider?: StrictProviderOptions;
  /** `evergreen broker worker` processes to start (default 0) */
  workers?: number;
  /** run the in-process worker inside `serve` (default false) */
  serveWorker?: boolean;
  /** extra environment for every process (EVERGREEN_BROKER_*, LOG_LEVEL…) */
  env?: Record<string, string>;
}

export interface BrokerSystem {
  db: FreshDatabase;
  provider: StrictProvider;
  serve: EvergreenProcess;
  workers: EvergreenProcess[];
  api: BrokerApi;
  env: BrokerEnv;
  /** starts one more worker on the same database */
  addWorker(name?: string, env?: Record<string, string>): Promise<EvergreenProcess>;
  close(): Promise<void>;
}

export async function startBrokerSystem(options: BrokerSystemOptions = {}): Promise<BrokerSystem> {
  const db = await createFreshDatabase();
  const provider = await startStrictProvider(options.provider);
  const env: BrokerEnv = {
    DATABASE_URL: db.url,
    ...brokerSecrets(),
    EVERGREEN_BROKER_POLL_MS: "250",
    ...options.env,
  };
  const workers: EvergreenProcess[] = [];
  let serve: EvergreenProcess | undefined;
  const system: BrokerSystem = {
    db,
    provider,
    serve: undefined as unknown as EvergreenProcess,
    workers,
    api: undefined as unknown as BrokerApi,
    env,
    async addWorker(name = `worker-${workers.length + 1}`, extra = {}) {
      const w = await startWorker({ ...env, ...extra }, name);
      workers.push(w);
      return w;
    },
    async close() {
      await stopAll([...workers, serve]);
      await provider.close();
      await db.drop();
    },
  };
  try {
    // serve first: it creates the schema the workers need
    serve = await startServe({ ...env, EVERGREEN_BROKER_WORKER: options.serveWorker ? "on" : "off" });
    system.serve = serve;
    system.api = new BrokerApi(serve.url, env.EVERGREEN_ADMIN_TOKEN);
    await Promise.all(
      Array.from({ length: options.workers ?? 0 }, (_, i) => system.addWorker(`worker-${i + 1}`)),
    );
  } catch (err) {
    await system.close();
    throw err;
  }
  return system;
}

/** Registers `provider` with the broker under `name`, authenticating with its client credentials. */
export async function registerProvider(
  api: BrokerApi,
  provider: StrictProvider,
  name: string,
  overrides: Record<string, unknown> = {},
): Promise<void> {
  await api.createProvider({
    name,
    token_url: provider.url,
    ...(provider.options.clientId ? { client_id: provider.options.clientId } : {}),
    ...(provider.options.clientSecret ? { client_secret: provider.options.clientSecret } : {}),
    auth_style: provider.options.clientId ? "basic" : "body",
    body_format: "form",
    refresh_ahead: 5,
    default_ttl: provider.options.accessTokenTtl,
    ...overrides,
  });
}

export interface SeededConnection {
  id: string;
  grant: SeededGrant;
  /** when the broker answered the creation (ms) */
  createdAt: number;
}

/**
 * Seeds `count` grants at the provider and creates one connection for each, with its exact
 * expiry (`expires_at`), `concurrency` admin calls at a time.
 */
export async function createConnections(
  api: BrokerApi,
  provider: StrictProvider,
  providerName: string,
  count: number,
  expiresIn: (i: number) => number,
  concurrency = 8,
): Promise<SeededConnection[]> {
  const out: SeededConnection[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const grant = provider.seedGrant(expiresIn(i));
        const res = await api.createConnection({
          provider: providerName,
          access_token: grant.access_token,
          refresh_token: grant.refresh_token,
          expires_at: grant.expires_at,
          metadata: { grant: grant.grantId, i },
        });
        out[i] = { id: res.id, grant, createdAt: Date.now() };
      }
    }),
  );
  return out;
}
