import type { IssuerExtension } from "@evergreen/server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../server/src/config.ts";
import { type TestIssuer, startTestIssuer } from "../../server/test/harness.ts";
import { uniq } from "../../server/test/helpers.ts";
import { type AdminBackend, inProcessBackend } from "../src/admin-backend.ts";

/** A route group as the broker will add one: admin-guarded by the app's own admin token. */
const probe: IssuerExtension = async (app, opts) => {
  app.get("/admin/probe", async (req) => ({
    authorised: req.headers.authorization === `Bearer ${opts.adminToken}`,
  }));
};

/** The CLI without a server runs the server's own admin routes in-process (app.inject). */
describe("the CLI's in-process admin backend", () => {
  let ti: TestIssuer;
  let backend: AdminBackend;
  beforeAll(async () => {
    ti = await startTestIssuer({ database: "postgres" });
    backend = await inProcessBackend(loadConfig({ DATABASE_URL: ti.databaseUrl! }), [probe]);
  });
  afterAll(async () => {
    await backend?.close();
    await ti?.close();
  });

  it("serves the route groups it is given, under its own in-memory admin token", async () => {
    expect(await backend.call("GET", "/admin/probe")).toEqual({ authorised: true });
  });

  it("answers with the admin API's responses: created users show through the server, errors as error: description", async () => {
    const username = uniq("cli-");
    const created = await backend.createUser({ username, password: "password-123" });
    expect((await ti.admin("GET", `/admin/users/${created.id}`)).body).toMatchObject({ username });
    await expect(backend.createUser({ username, password: "password-123" })).rejects.toThrow(
      /^conflict: a user with this username exists$/,
    );
    await expect(backend.getClient("no-such-client")).rejects.toThrow(/^not_found: no such client$/);
  });

  it("validates bodies by the routes' schemas without coercing types, with the stores' messages", async () => {
    await expect(
      backend.createClient({ client_id: uniq("c-"), grant_types: ["password"], access_token_ttl: "60" }),
    ).rejects.toThrow(
      /^invalid_request: access_token_ttl must be an integer number of seconds between 1 and 86400$/,
    );
    await expect(backend.createClient({ client_id: uniq("c-"), grant_types: ["implicit"] })).rejects.toThrow(
      /^invalid_request: unsupported grant type: implicit$/,
    );
    await expect(backend.createClient({ client_id: uniq("c-") })).rejects.toThrow(
      /^invalid_request: grant_types is required$/,
    );
    await expect(backend.createUser({ username: uniq("u-"), password: "short" })).rejects.toThrow(
      /^invalid_request: password must be 8-1024 characters$/,
    );
  });
});
