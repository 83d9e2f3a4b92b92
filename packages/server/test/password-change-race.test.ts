import type { Queryable } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { updateUser } from "../src/admin/user-store.ts";
import { startSession } from "../src/tokens/session.ts";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  expectOAuthError,
  login,
  loginOk,
  refresh,
  refreshOk,
} from "./helpers.ts";

/**
 * A password change ends every session opened with the old password — including those of
 * logins that verified the old password while the change was committing, and even if the
 * process stops right after the change (before sessions are revoked one by one).
 */
describe.each(DATABASES)("password change vs logins in flight on %s", (kind) => {
  let ti: TestIssuer;
  let app: TestClient;

  beforeAll(async () => {
    // Logins that lose the race fail like wrong passwords, and the workers below log in as fast
    // as hashing allows: throttling is not what this file tests.
    ti = await startTestIssuer({ database: kind, env: { EVERGREEN_RATE_LIMIT: "off" } });
    app = await createClient(ti);
  });
  afterAll(() => ti?.close());

  it("concurrent logins with the old password: after the PATCH returns, none of their sessions refreshes", async () => {
    for (let trial = 0; trial < 2; trial++) {
      const user = await createUser(ti);
      // Workers log in with the old password back to back until the change has returned, so
      // logins are verifying, and creating their sessions, all through the change.
      let changed = false;
      const sessions: string[] = [];
      const worker = async () => {
        while (!changed) {
          const r = await login(ti, app, user);
          expect([200, 400]).toContain(r.status);
          if (r.status === 200) sessions.push(r.body.refresh_token);
        }
      };
      const workers = Array.from({ length: 6 }, worker);
      while (sessions.length < 2) await new Promise((r) => setTimeout(r, 5));
      const patch = await ti.admin("PATCH", `/admin/users/${user.id}`, { password: "a-new-password-1" });
      changed = true;
      expect(patch.status, JSON.stringify(patch.body)).toBe(200);
      await Promise.all(workers);
      const refreshed = await Promise.all(sessions.map((rt) => refresh(ti, app, rt)));
      const alive = refreshed.filter((r) => r.status === 200).length;
      expect(
        alive,
        `${alive} of ${sessions.length} sessions opened with the old password still refresh`,
      ).toBe(0);
      for (const r of refreshed) expectOAuthError(r, 400, "invalid_grant");
      // the new password works, and its session refreshes
      const fresh = await loginOk(ti, app, { ...user, password: "a-new-password-1" });
      await refreshOk(ti, app, fresh.refresh_token!);
    }
  });

  it("a login that verified the old password cannot open a session once the change committed", async () => {
    const user = await createUser(ti);
    const { rows } = await ti.db.query<{ credentials_version: number }>(
      "SELECT credentials_version FROM users WHERE id = $1",
      [user.id],
    );
    const verified = rows[0]!.credentials_version;
    // The change commits between that login's password check and its session insert.
    const patch = await ti.admin("PATCH", `/admin/users/${user.id}`, { password: "a-new-password-2" });
    expect(patch.status).toBe(200);
    const ctx = ti.issuer.ctx;
    const client = (await ctx.clients.get(app.client_id))!;
    await expect(startSession(ctx, client, user.id, "openid", "127.0.0.1", verified)).rejects.toMatchObject({
      error: "invalid_grant",
    });
    const { rows: families } = await ti.db.query("SELECT 1 FROM families WHERE user_id = $1", [user.id]);
    expect(families).toHaveLength(0);
  });

  it("sessions are dead the moment the password change commits, even if the process stops before revoking them", async () => {
    const user: TestUser = await createUser(ti);
    const a = await loginOk(ti, app, user);
    const b = await loginOk(ti, app, user);
    // A database handle that "crashes" on the first statement after the password update: the
    // per-session revocation never runs.
    let updated = false;
    const crashing: Queryable = {
      async query(sql, params) {
        if (updated) throw new Error("process stopped");
        const result = await ti.db.query(sql, params);
        if ((typeof sql === "string" ? sql : sql.text).startsWith("UPDATE users")) updated = true;
        return result as never;
      },
      exec: (script) => ti.db.exec(script),
    };
    await expect(updateUser(crashing, ti.clock, user.id, { password: "a-new-password-3" })).rejects.toThrow(
      "process stopped",
    );
    const { rows } = await ti.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM families WHERE user_id = $1 AND revoked_at IS NULL",
      [user.id],
    );
    expect(rows[0]!.n).toBe(2); // nothing was marked revoked...
    // ...and yet neither session refreshes, and nothing was issued
    expectOAuthError(await refresh(ti, app, a.refresh_token!), 400, "invalid_grant");
    expectOAuthError(await refresh(ti, app, b.refresh_token!), 400, "invalid_grant");
    expectOAuthError(await login(ti, app, user), 400, "invalid_grant");
  });

  it("a password change with revoke_sessions: false keeps sessions alive", async () => {
    const user = await createUser(ti);
    const s = await loginOk(ti, app, user);
    const patch = await ti.admin("PATCH", `/admin/users/${user.id}`, {
      password: "a-new-password-4",
      revoke_sessions: false,
    });
    expect(patch.status).toBe(200);
    await refreshOk(ti, app, s.refresh_token!);
  });
});
