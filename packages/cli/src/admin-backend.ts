import { systemClock } from "@evergreen/db";
import {
  type ServerConfig,
  SigningKeyStore,
  createClient,
  createUser,
  deleteClient,
  deleteUser,
  findUser,
  getClient,
  listClients,
  listSessions,
  listUsers,
  maxAccessTtl,
  parseKeyRing,
  revokeAllSessions,
  revokeSession,
  runJanitor,
  updateClient,
  updateUser,
} from "@evergreen/server";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { openCommandDatabase } from "./open-database.ts";

type Json = Record<string, unknown>;

/**
 * What the admin commands need. Two implementations: straight to the database, or through
 * a running server's admin API — the only safe way while a server holds an embedded PGlite
 * data directory, which one process at a time may open.
 */
export interface AdminBackend {
  createUser(body: Json): Promise<Json>;
  listUsers(): Promise<Json[]>;
  getUser(id: string): Promise<Json>;
  updateUser(id: string, body: Json): Promise<Json>;
  deleteUser(id: string): Promise<void>;
  listSessions(user: string): Promise<Json[]>;
  revokeSessions(user: string, sid?: string): Promise<Json>;
  createClient(body: Json): Promise<Json>;
  listClients(): Promise<Json[]>;
  getClient(id: string): Promise<Json>;
  updateClient(id: string, body: Json): Promise<Json>;
  deleteClient(id: string): Promise<void>;
  rotateKeys(): Promise<Json>;
  listKeys(): Promise<Json[]>;
  close(): Promise<void>;
}

export class CliError extends Error {}

/** Admin API over HTTP. */
export function httpBackend(baseUrl: string, adminToken: string): AdminBackend {
  // biome-ignore lint/suspicious/noExplicitAny: admin API JSON, shaped by the server
  async function call(method: string, path: string, body?: Json): Promise<any> {
    const res = await fetch(baseUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${adminToken}`,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    const json = text ? JSON.parse(text) : undefined;
    if (!res.ok)
      throw new CliError(`${json?.error ?? res.status}: ${json?.error_description ?? res.statusText}`);
    return json;
  }
  const u = encodeURIComponent;
  return {
    createUser: (b) => call("POST", "/admin/users", b),
    listUsers: () => call("GET", "/admin/users?limit=1000"),
    getUser: (id) => call("GET", `/admin/users/${u(id)}`),
    updateUser: (id, b) => call("PATCH", `/admin/users/${u(id)}`, b),
    deleteUser: (id) => call("DELETE", `/admin/users/${u(id)}`),
    listSessions: (id) => call("GET", `/admin/users/${u(id)}/sessions`),
    revokeSessions: async (id, sid) => {
      if (!sid) return call("DELETE", `/admin/users/${u(id)}/sessions`);
      await call("DELETE", `/admin/users/${u(id)}/sessions/${u(sid)}`);
      return { revoked: 1 };
    },
    createClient: (b) => call("POST", "/admin/clients", b),
    listClients: () => call("GET", "/admin/clients?limit=1000"),
    getClient: (id) => call("GET", `/admin/clients/${u(id)}`),
    updateClient: (id, b) => call("PATCH", `/admin/clients/${u(id)}`, b),
    deleteClient: (id) => call("DELETE", `/admin/clients/${u(id)}`),
    rotateKeys: () => call("POST", "/admin/keys/rotate"),
    listKeys: () => call("GET", "/admin/keys"),
    close: async () => {},
  };
}

/** Admin operations directly on the database (PostgreSQL, or PGlite while no server runs). */
export async function databaseBackend(config: ServerConfig): Promise<AdminBackend> {
  const { db, close } = await openCommandDatabase(config);
  const clock = systemClock;
  const asJson = (v: unknown) => JSON.parse(JSON.stringify(v));
  const keys = async () => {
    const store = new SigningKeyStore(db, parseKeyRing(config.encryptionKey), clock, config.signingAlg);
    await store.init();
    return store;
  };
  return {
    createUser: async (b) => asJson(await createUser(db, clock, b)),
    listUsers: async () => asJson(await listUsers(db, 1000)),
    getUser: async (id) => asJson(await findUser(db, id)),
    updateUser: async (id, b) => asJson(await updateUser(db, clock, id, b)),
    deleteUser: (id) => deleteUser(db, id),
    listSessions: async (id) => asJson(await listSessions(db, clock, (await findUser(db, id)).id)),
    revokeSessions: async (id, sid) => {
      const user = await findUser(db, id);
      if (sid) {
        await revokeSession(db, clock, user.id, sid);
        return { revoked: 1 };
      }
      return { revoked: await revokeAllSessions(db, clock, user.id) };
    },
    createClient: async (b) => asJson(await createClient(db, clock, b)),
    listClients: async () => asJson(await listClients(db, 1000)),
    getClient: async (id) => asJson(await getClient(db, id)),
    updateClient: async (id, b) => asJson(await updateClient(db, clock, id, b)),
    deleteClient: (id) => deleteClient(db, id),
    rotateKeys: async () => {
      const k = await (await keys()).rotate(await maxAccessTtl({ db }));
      return { kid: k.kid, alg: k.alg };
    },
    listKeys: async () => {
      const store = await keys();
      const current = store.current().kid;
      return store.jwks().keys.map((k) => ({ kid: k.kid, alg: k.alg, current: k.kid === current }));
    },
    close,
  };
}

/** Runs the janitor once against the configured database. */
export async function janitorOnce(config: ServerConfig): Promise<Json> {
  const { db, close } = await openCommandDatabase(config);
  try {
    return { ...(await runJanitor(db, systemClock, config.retention)) };
  } finally {
    await close();
  }
}

/**
 * Picks the backend: `--url` (or a server answering on the configured address while the
 * embedded database is in use) means HTTP; otherwise the database directly.
 */
export async function chooseBackend(config: ServerConfig, url?: string): Promise<AdminBackend> {
  const server = await runningAdminServer(config, url);
  return server ? httpBackend(server.url, server.token) : databaseBackend(config);
}

/**
 * The admin API to go through, if any: `--url`, or a server answering on the configured
 * address while the embedded database is in use (it holds the data directory). Undefined
 * means "open the database directly".
 */
export async function runningAdminServer(
  config: ServerConfig,
  url?: string,
): Promise<{ url: string; token: string } | undefined> {
  const token = config.adminToken ?? readStoredAdminToken(config.dataDir);
  if (url) {
    if (!token) throw new CliError("no admin token: set EVERGREEN_ADMIN_TOKEN");
    return { url: url.replace(/\/+$/, ""), token };
  }
  if (!config.databaseUrl && token) {
    const local = `http://${config.host}:${config.port}`;
    const up = await fetch(`${local}/healthz`, { signal: AbortSignal.timeout(500) }).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return { url: local, token };
  }
  return undefined;
}

function readStoredAdminToken(dataDir: string): string | undefined {
  const file = join(dataDir, "admin-token");
  return existsSync(file) ? readFileSync(file, "utf8").trim() : undefined;
}
