/**
 * /readyz is readiness, /healthz liveness. Ready means a token request can be answered now:
 * signing keys loaded, the schema at the version this code expects, the database answering.
 */
import { migrations } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DATABASES,
  type TestDatabase,
  type TestIssuer,
  createTestDatabase,
  startTestIssuer,
} from "./harness.ts";
import { createClient, createUser, login, loginOk } from "./helpers.ts";

async function get(url: string) {
  const res = await fetch(url);
  return { status: res.status, headers: res.headers, body: await res.json() };
}

const LATEST = Math.max(...migrations.map((m) => m.version));

describe.each(DATABASES)("readiness on %s", (kind) => {
  let testDb: TestDatabase;
  let ti: TestIssuer;
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    ti = await startTestIssuer({ db: testDb });
  });
  afterAll(async () => {
    await ti?.close();
    await testDb?.drop();
  });

  it("is ready once keys are loaded and the schema is current; /healthz is plain liveness", async () => {
    const ready = await get(`${ti.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: "ready", checks: { keys: "ok", database: "ok" } });
    expect(ready.headers.get("cache-control")).toBe("no-store");
    // Ready means answering: a login works at once.
    expect((await login(ti, await createClient(ti), await createUser(ti))).status).toBe(200);
    expect((await get(`${ti.url}/healthz`)).body).toEqual({ status: "ok" });
  });

  it("is not ready while the schema is behind the code (a migration not applied)", async () => {
    const { rows } = await testDb.db.query<{ name: string }>(
      "DELETE FROM evergreen_migrations WHERE version = $1 RETURNING name",
      [LATEST],
    );
    try {
      const res = await get(`${ti.url}/readyz`);
      expect(res.status).toBe(503);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(res.body.status).toBe("unavailable");
      expect(res.body.checks.database).toMatch(/schema at version \d+, expected/);
      expect((await get(`${ti.url}/healthz`)).status).toBe(200);
    } finally {
      await testDb.db.query("INSERT INTO evergreen_migrations (version, name) VALUES ($1, $2)", [
        LATEST,
        rows[0]!.name,
      ]);
    }
    expect((await get(`${ti.url}/readyz`)).status).toBe(200);
  });
});

describe("readiness when the embedded database has been closed under the server", () => {
  let ti: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer({ database: "pglite" });
  });
  // The test closed the database itself; only the server is left to stop.
  afterAll(() => ti?.issuer.close());

  it("/readyz and the token endpoint answer 503 with Retry-After, not 500", async () => {
    const client = await createClient(ti);
    const user = await createUser(ti);
    await loginOk(ti, client, user);
    await ti.db.close();
    const ready = await get(`${ti.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.body.checks.database).toBe("unreachable");
    const res = await login(ti, client, user);
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({ error: "temporarily_unavailable" });
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });
});
