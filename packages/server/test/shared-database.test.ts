import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DATABASES,
  type TestDatabase,
  type TestIssuer,
  createTestDatabase,
  startTestIssuer,
} from "./harness.ts";
import { createClient, createUser, expectOAuthError, login, loginOk, refresh, refreshOk } from "./helpers.ts";

// Two issuers in one process over one database stand in for several server processes: they
// share nothing but the database (and, behind a load balancer, the issuer URL).
describe.each(DATABASES)("two issuers sharing one database on %s", (kind) => {
  let db: TestDatabase;
  let a: TestIssuer;
  let b: TestIssuer;

  beforeAll(async () => {
    db = await createTestDatabase(kind);
    a = await startTestIssuer({ db });
    b = await startTestIssuer({ db, env: { ISSUER: a.config.issuer } });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
  });

  it("a session started on one is refreshed on the other, and reuse is detected across them", async () => {
    const app = await createClient(a, { refresh_token_reuse_grace: 0 });
    const user = await createUser(a);
    const t1 = await loginOk(a, app, user);
    const t2 = await refreshOk(b, app, t1.refresh_token!);
    expectOAuthError(await refresh(a, app, t1.refresh_token!), 400, "invalid_grant");
    expectOAuthError(await refresh(b, app, t2.refresh_token!), 400, "invalid_grant");
  });

  it("a rotation setting changed through one process applies at once through the other", async () => {
    const app = await createClient(a);
    const user = await createUser(a);
    const t = await loginOk(a, app, user);
    // b caches the client as rotating
    const t2 = await refreshOk(b, app, t.refresh_token!);
    expect(t2.refresh_token).toBeTruthy();
    expect(
      (await a.admin("PATCH", `/admin/clients/${app.client_id}`, { rotate_refresh_tokens: false })).status,
    ).toBe(200);
    const slid = await refreshOk(b, app, t2.refresh_token!);
    expect(slid.refresh_token).toBeUndefined();
    await refreshOk(b, app, t2.refresh_token!);
    expect(
      (await a.admin("PATCH", `/admin/clients/${app.client_id}`, { rotate_refresh_tokens: true })).status,
    ).toBe(200);
    const rotated = await refreshOk(b, app, t2.refresh_token!);
    expect(rotated.refresh_token).toBeTruthy();
    await refreshOk(a, app, rotated.refresh_token!);
  });

  it("a client deleted through one process cannot log in through the other (no 500 from a stale cache)", async () => {
    const app = await createClient(a);
    const user = await createUser(a);
    // b caches the client
    const t = await loginOk(b, app, user);
    expect((await a.admin("DELETE", `/admin/clients/${app.client_id}`)).status).toBe(204);
    const res = await login(b, app, user);
    expectOAuthError(res, 401, "invalid_client");
    // and b now knows the client is gone
    expectOAuthError(await refresh(b, app, t.refresh_token!), 401, "invalid_client");
    const { rows } = await db.db.query("SELECT 1 FROM families WHERE client_id = $1", [app.client_id]);
    expect(rows).toHaveLength(0);
  });
});
