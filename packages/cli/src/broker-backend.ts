import { randomBytes } from "node:crypto";
import { createBroker, loadBrokerConfig } from "@evergreen/broker";
import { type ServerConfig, buildIssuer } from "@evergreen/server";
import { CliError, runningAdminServer } from "./admin-backend.ts";
import { openCommandDatabase } from "./open-database.ts";

// biome-ignore lint/suspicious/noExplicitAny: admin API JSON, shaped by the server
type Json = any;

/**
 * The broker's admin API for CLI commands: over HTTP to a running server (`--url`, or the local
 * one holding the embedded database), or in-process on the database directly — the same routes
 * answered through `inject`, so both ways run exactly the same code.
 */
export interface BrokerBackend {
  call(method: string, path: string, body?: Json): Promise<Json>;
  close(): Promise<void>;
}

export async function chooseBrokerBackend(config: ServerConfig, url?: string): Promise<BrokerBackend> {
  const server = await runningAdminServer(config, url);
  if (server) {
    return {
      async call(method, path, body) {
        const res = await fetch(server.url + path, {
          method,
          headers: {
            authorization: `Bearer ${server.token}`,
            ...(body ? { "content-type": "application/json" } : {}),
          },
          body: body ? JSON.stringify(body) : undefined,
        });
        return answer(res.status, await res.text());
      },
      close: async () => {},
    };
  }
  const { db, close } = await openCommandDatabase(config);
  try {
    const adminToken = randomBytes(24).toString("base64url");
    const issuer = await buildIssuer({ config, db, adminToken, logger: false });
    const broker = await createBroker({
      db,
      ring: issuer.ctx.ring,
      config: loadBrokerConfig(),
      registry: issuer.ctx.metrics.registry,
      log: issuer.app.log,
    });
    await broker.registerRoutes(issuer, adminToken);
    return {
      async call(method, path, body) {
        const res = await issuer.app.inject({
          method: method as "GET",
          url: path,
          headers: { authorization: `Bearer ${adminToken}` },
          ...(body ? { payload: body } : {}),
        });
        return answer(res.statusCode, res.body);
      },
      async close() {
        await broker.close();
        await issuer.close();
        await close();
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}

function answer(status: number, text: string): Json {
  const json = text ? JSON.parse(text) : undefined;
  if (status >= 400)
    throw new CliError(`${json?.error ?? status}: ${json?.error_description ?? "request failed"}`);
  return json;
}
