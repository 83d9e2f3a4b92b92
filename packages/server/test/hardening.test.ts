/**
 * Defects a review found, each pinned by a test that failed before its fix: NUL characters and
 * malformed paging (500s), a public client's shared rate budget (anyone could exhaust it),
 * the session cap under concurrent logins, client ids that could impersonate users, grace
 * replays past the family's lifetime, revocation hints, and password changes.
 */
import { request } from "node:http";
import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSession } from "../src/tokens/session.ts";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type HttpResult,
  basicAuth,
  createClient,
  createUser,
  encodeForm,
  expectInvalidToken,
  expectOAuthError,
  family,
  familyOf,
  loginOk,
  postForm,
  refresh,
  refreshOk,
  snapshot,
  token,
  userinfo,
} from "./helpers.ts";

/** POST /token from a chosen loopback source address (127.0.0.x), as another client IP. */
function tokenFrom(ti: TestIssuer, localAddress: string, form: string): Promise<number> {
  const { port } = new URL(ti.url);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/token",
        method: "POST",
        localAddress,
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "content-length": Buffer.byteLength(form),
        },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(form);
  });
}

async function adminGet(ti: TestIssuer, path: string): Promise<HttpResult> {
  const res = await fetch(ti.url + path, { headers: { authorization: `Bearer ${ti.adminToken}` } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined, text };
}

describe.each(DATABASES)("hardening on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
  });
  afterAll(() => ti?.close());

  it("a NUL character anywhere in a token request is invalid_request, never a 500, and changes nothing", async () => {
    const client = await createClient(ti);
    const user = await createUser(ti);
    const before = await snapshot(ti.db);
    const cases: HttpResult[] = [
      await token(
        ti,
        { grant_type: "password", username: `${user.username}\u0000`, password: user.password },
        client,
      ),
      await token(
        ti,
        { grant_type: "password", username: user.username, password: "x", client_id: "sp\u0000a" },
        false,
      ),
      await postForm(ti, "/token", { grant_type: "client_credentials" }, false, {
        authorization: basicAuth("r\u0000s", "secret"),
      }),
      await postForm(ti, "/revoke", { token: "egr_\u0000", client_id: client.client_id }, false),
    ];
    for (const res of cases) {
      expect(res.status, res.text).not.toBe(500);
      expect(res.body?.error).toMatch(/^invalid_(request|client)$/);
    }
    expect(cases[0]!.body.error).toBe("invalid_request");
    expect(await snapshot(ti.db)).toBe(before);
  });

  it("NUL characters and malformed paging in the admin API are 400 invalid_request", async () => {
    for (const path of [
      "/admin/users/%00",
      "/admin/clients/%00",
      "/admin/users?limit=1.5",
      "/admin/users?offset=1.5",
      "/admin/clients?offset=1e20",
      "/admin/audit?limit=-5",
      "/admin/audit?user_id=nope",
      `/admin/audit?user_id=${"-".repeat(36)}`,
    ]) {
      const res = await adminGet(ti, path);
      expect(res.status, `${path}: ${res.text}`).toBe(400);
      expect(res.body.error).toBe("invalid_request");
    }
    for (const body of [
      { client_id: "c1", grant_types: ["password"], client_name: "x\u0000y" },
      { client_id: "c2", grant_types: ["password"], redirect_uris: ["http://a/\u0000"] },
    ]) {
      const res = await ti.admin("POST", "/admin/clients", body);
      expect(res.status).toBe(400);
    }
    expect(
      (
        await ti.admin("POST", "/admin/users", {
          username: "nul",
          password: "long enough",
          email: "a\u0000@b",
        })
      ).status,
    ).toBe(400);
    expect((await adminGet(ti, "/admin/users?limit=2&offset=0")).status).toBe(200);
    const user = await createUser(ti);
    const malformedSid = await ti.admin("DELETE", `/admin/users/${user.id}/sessions/${"-".repeat(36)}`);
    expect(malformedSid.status).toBe(404);
  });

  it("client ids shaped like user ids are refused, and a client's own token is not a user at /userinfo", async () => {
    const user = await createUser(ti);
    const impersonator = await ti.admin("POST", "/admin/clients", {
      client_id: user.id,
      grant_types: ["client_credentials"],
    });
    expect(impersonator.status).toBe(400);
    expect(impersonator.body.error_description).toContain("UUID");

    const svc = await createClient(ti, {
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["client_credentials"],
    });
    const res = await token(ti, { grant_type: "client_credentials" }, svc);
    expect(res.status, res.text).toBe(200);
    expectInvalidToken(await userinfo(ti, res.body.access_token));
  });

  it("a grace-window retry after the family's absolute lifetime ended is invalid_grant, not a dead pair", async () => {
    const client = await createClient(ti, {
      refresh_token_idle_ttl: 3,
      refresh_token_absolute_ttl: 7,
      refresh_token_reuse_grace: 10,
    });
    const user = await createUser(ti);
    const t0 = await loginOk(ti, client, user);
    clock.advance(2);
    await refreshOk(ti, client, t0.refresh_token!);
    clock.advance(6); // past the absolute limit, still inside the grace window
    const retry = await refresh(ti, client, t0.refresh_token!);
    expectOAuthError(retry, 400, "invalid_grant");
    // A benign late retry is not reuse: nothing was revoked for it.
    expect((await family(ti.db, await familyOf(ti.db, t0.refresh_token!)))?.revoked_reason).toBeNull();
  });

  it("revocation ignores an unknown token_type_hint and still revokes (RFC 7009 §2.1)", async () => {
    const client = await createClient(ti);
    const user = await createUser(ti);
    const t = await loginOk(ti, client, user);
    const res = await postForm(
      ti,
      "/revoke",
      { token: t.refresh_token, token_type_hint: "id_token" },
      client,
    );
    expect(res.status).toBe(200);
    expect((await family(ti.db, await familyOf(ti.db, t.refresh_token!)))?.revoked_at).not.toBeNull();
  });

  it("a password change ends the user's sessions unless told otherwise", async () => {
    const client = await createClient(ti);
    const user = await createUser(ti);
    const a = await loginOk(ti, client, user);
    const changed = await ti.admin("PATCH", `/admin/users/${user.id}`, { password: "a brand new password" });
    expect(changed.status).toBe(200);
    expectOAuthError(await refresh(ti, client, a.refresh_token!), 400, "invalid_grant");

    const b = await loginOk(ti, client, { ...user, password: "a brand new password" });
    const kept = await ti.admin("PATCH", `/admin/users/${user.id}`, {
      password: "another new password",
      revoke_sessions: false,
    });
    expect(kept.status).toBe(200);
    await refreshOk(ti, client, b.refresh_token!);
  });

  it("a public client's budget is per client and IP: garbage from other addresses does not lock its users out", async () => {
    const limited = await startTestIssuer({
      database: kind,
      db: { db: ti.db, drop: async () => {} },
      env: { EVERGREEN_RATE_LIMIT_PER_CLIENT: "5", EVERGREEN_RATE_LIMIT_PER_IP: "1000" },
    });
    try {
      const client = await createClient(limited);
      const user = await createUser(limited);
      const garbage = encodeForm({
        grant_type: "refresh_token",
        refresh_token: "egr_nope",
        client_id: client.client_id,
      });
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) statuses.push(await tokenFrom(limited, "127.0.0.3", garbage));
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0); // the attacker's own address is limited
      const fromUser = encodeForm({
        grant_type: "password",
        username: user.username,
        password: user.password,
        client_id: client.client_id,
      });
      expect(await tokenFrom(limited, "127.0.0.2", fromUser)).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe("session cap under concurrent logins (PostgreSQL)", () => {
  it("holds: 30 concurrent sessions with max_sessions_per_user 1 leave exactly one live", async () => {
    const ti = await startTestIssuer({ database: "postgres" });
    try {
      const created = await createClient(ti, { max_sessions_per_user: 1 });
      const user = await createUser(ti);
      const { ctx } = ti.issuer;
      const client = (await ctx.clients.get(created.client_id))!;
      // Straight to the session start (no password hashing in between), so the logins'
      // transactions really overlap.
      const results = await Promise.all(
        Array.from({ length: 30 }, () => startSession(ctx, client, user.id, "openid", "127.0.0.1", 1)),
      );
      expect(results.every((r) => r.refresh_token?.startsWith("egr_"))).toBe(true);
      const { rows } = await ti.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM families WHERE user_id = $1 AND revoked_at IS NULL",
        [user.id],
      );
      expect(rows[0]!.n).toBe(1);
    } finally {
      await ti.close();
    }
  });
});
