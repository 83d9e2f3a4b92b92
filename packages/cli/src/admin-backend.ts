import {
  type IssuerExtension,
  type ServerConfig,
  buildIssuer,
  janitorOptions,
  readStoredAdminToken,
  runJanitor,
} from "@evergreen/server";
import { systemClock } from "@evergreen/db";
import { randomBytes } from "node:crypto";
import { openCommandDatabase } from "./open-database.ts";
import { routeGroups } from "./route-groups.ts";

type Json = Record<string, unknown>;

/**
 * Sends one admin API request and returns its JSON body (undefined for 204), throwing a
 * CliError for an error response.
 */
// biome-ignore lint/suspicious/noExplicitAny: admin API JSON, shaped by the server
export type AdminCall = (method: string, path: string, body?: Json) => Promise<any>;

/**
 * The admin API as the commands use it. One implementation over a transport: a running
 * server's HTTP API, or the same routes run in-process with `app.inject()`.
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
  /** Any other admin route (the broker's, say). */
  call: AdminCall;
  close(): Promise<void>;
}

export class CliError extends Error {}

/** Turns a response's status and text into its JSON body, or the CliError it stands for. */
function answer(status: number, statusText: string, text: string) {
  const json = text ? JSON.parse(text) : undefined;
  if (status < 200 || status >= 300)
    throw new CliError(`${json?.error ?? status}: ${json?.error_description ?? statusText}`);
  return json;
}

/** The admin commands over one transport. */
function adminBackend(call: AdminCall, close: () => Promise<void>): AdminBackend {
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
    call,
    close,
  };
}

/** Admin API over HTTP. */
export function httpBackend(baseUrl: string, adminToken: string): AdminBackend {
  const call: AdminCall = async (method, path, body) => {
    const res = await fetch(baseUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${adminToken}`,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
    return answer(res.status, res.statusText, await res.text());
  };
  return adminBackend(call, async () => {});
}

/**
 * The admin API run in-process: the app `serve` builds (buildIssuer with the same route
 * groups) over the command's database, called with `app.inject()` and never listening. It
 * starts no background work (no Redis, no janitor timer: those belong to startServer), does
 * not rate-limit its own calls, and is authorised by a random token that lives only here.
 */
export async function inProcessBackend(
  config: ServerConfig,
  extensions: IssuerExtension[] = routeGroups({ brokerWorker: false }),
): Promise<AdminBackend> {
  const { db, close } = await openCommandDatabase(config);
  const adminToken = randomBytes(32).toString("base64url");
  let issuer: Awaited<ReturnType<typeof buildIssuer>>;
  try {
    issuer = await buildIssuer({
      config: { ...config, redisUrl: undefined, rateLimit: { ...config.rateLimit, enabled: false } },
      db,
      adminToken,
      logger: false,
      extensions,
    });
  } catch (err) {
    await close();
    throw err;
  }
  const call: AdminCall = async (method, path, body) => {
    const res = await issuer.app.inject({
      method: method as "GET",
      url: path,
      headers: {
        authorization: `Bearer ${adminToken}`,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      ...(body ? { payload: JSON.stringify(body) } : {}),
    });
    return answer(res.statusCode, res.statusMessage, res.body);
  };
  return adminBackend(call, async () => {
    try {
      await issuer.close();
    } finally {
      await close();
    }
  });
}

/** Runs the janitor once against the configured database. */
export async function janitorOnce(config: ServerConfig): Promise<Json> {
  const { db, close } = await openCommandDatabase(config);
  try {
    return { ...(await runJanitor(db, systemClock, config.retention, janitorOptions(config.storage))) };
  } finally {
    await close();
  }
}

/**
 * Picks the transport: `--url` (or a server answering on the configured address while the
 * embedded database is in use, which one process at a time may open) means HTTP; otherwise
 * the admin routes run in-process on the database.
 */
export async function chooseBackend(config: ServerConfig, url?: string): Promise<AdminBackend> {
  const token = config.adminToken ?? readStoredAdminToken(config.dataDir);
  if (url) {
    if (!token) throw new CliError("no admin token: set EVERGREEN_ADMIN_TOKEN");
    return httpBackend(url.replace(/\/+$/, ""), token);
  }
  if (!config.databaseUrl && token) {
    const local = `http://${config.host}:${config.port}`;
    const up = await fetch(`${local}/healthz`, { signal: AbortSignal.timeout(500) }).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return httpBackend(local, token);
  }
  return inProcessBackend(config);
}
