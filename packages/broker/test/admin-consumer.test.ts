import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES } from "../../server/test/harness.ts";
import { type TestBroker, startTestBroker } from "./support/broker-harness.ts";
import { type FakeProvider, startFakeProvider } from "./support/fake-provider.ts";

describe.each(DATABASES)("broker admin API and consumer reads on %s", (kind) => {
  let tb: TestBroker;
  let fake: FakeProvider;
  const clock = new ManualClock(Date.parse("2030-01-01T00:00:00Z"));
  let n = 0;
  const name = () => `p${++n}-${kind}`;

  beforeAll(async () => {
    fake = await startFakeProvider();
    fake.nowMs = () => clock.now().getTime();
    tb = await startTestBroker({ database: kind, clock });
  });
  afterAll(async () => {
    await tb?.close();
    await fake?.close();
  });

  async function provider(extra: Record<string, unknown> = {}): Promise<string> {
    const p = name();
    const res = await tb.admin("POST", "/admin/providers", {
      name: p,
      token_url: fake.url,
      client_id: "cid",
      client_secret: "provider-secret-value",
      auth_style: "basic",
      body_format: "form",
      ...extra,
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return p;
  }

  async function connection(p: string, expiresIn = 3600) {
    const t = fake.issue();
    const res = await tb.admin("POST", "/admin/connections", {
      provider: p,
      ...t,
      expires_in: expiresIn,
      metadata: { team: "a" },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return { id: res.body.id as string, ...t };
  }

  async function apiKey(body: Record<string, unknown> = {}): Promise<string> {
    const res = await tb.admin("POST", "/admin/api-keys", { name: "svc", ...body });
    expect(res.status).toBe(201);
    expect(res.body.key).toMatch(/^egk_/);
    return res.body.key;
  }

  it("creates providers without ever showing the secret, from templates too; rejects bad input", async () => {
    const p = await provider({ response: { access_token: "authorization.token", success_status: 201 } });
    const got = await tb.admin("GET", `/admin/providers/${p}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({
      name: p,
      has_client_secret: true,
      auth_style: "basic",
      refresh_ahead: 300,
    });
    expect(JSON.stringify(got.body)).not.toContain("provider-secret-value");
    expect((await tb.admin("GET", "/admin/providers")).body.map((x: { name: string }) => x.name)).toContain(
      p,
    );

    const t = await tb.admin("POST", "/admin/providers", {
      name: name(),
      template: "google",
      client_id: "x",
    });
    expect(t.status).toBe(201);
    expect(t.body).toMatchObject({ token_url: "https://oauth2.googleapis.com/token", body_format: "form" });

    for (const bad of [
      {},
      { name: "x y", token_url: fake.url },
      { name: name(), token_url: "ftp://nope" },
      { name: name(), token_url: fake.url, auth_style: "digest" },
      { name: name(), token_url: fake.url, response: { access_token: "a..b" } },
      { name: name(), token_url: fake.url, extra_headers: { authorization: "x" } },
      { name: name(), token_url: fake.url, template: "nope" },
      { name: name(), token_url: fake.url, bogus: 1 },
    ]) {
      const res = await tb.admin("POST", "/admin/providers", bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(res.body.error).toBe("invalid_request");
    }
    expect((await tb.admin("POST", "/admin/providers", { name: p, token_url: fake.url })).status).toBe(409);

    const patched = await tb.admin("PATCH", `/admin/providers/${p}`, {
      refresh_ahead: 60,
      max_concurrency: 2,
    });
    expect(patched.body).toMatchObject({ refresh_ahead: 60, max_concurrency: 2, has_client_secret: true });
    const unauth = await fetch(`${tb.url}/admin/providers`, { headers: { authorization: "Bearer nope" } });
    expect(unauth.status).toBe(401);
  });

  it("stores connections sealed: the API and the raw rows never show a token", async () => {
    const p = await provider();
    const c = await connection(p);
    const shown = await tb.admin("GET", `/admin/connections/${c.id}`);
    expect(shown.status).toBe(200);
    expect(shown.body).toMatchObject({
      id: c.id,
      provider: p,
      status: "active",
      generation: 1,
      failure_count: 0,
      metadata: { team: "a" },
    });
    const text = JSON.stringify(shown.body);
    expect(text).not.toContain(c.access_token);
    expect(text).not.toContain(c.refresh_token);
    const raw = await tb.db.db.query("SELECT * FROM broker_connections WHERE id = $1", [c.id]);
    const dump = JSON.stringify(raw.rows, (_k, v) =>
      v?.type === "Buffer" ? Buffer.from(v.data).toString("latin1") : v,
    );
    expect(dump).not.toContain(c.access_token);
    expect(dump).not.toContain(c.refresh_token);
    const prov = await tb.db.db.query("SELECT * FROM broker_providers WHERE name = $1", [p]);
    expect(
      JSON.stringify(prov.rows, (_k, v) =>
        v?.type === "Buffer" ? Buffer.from(v.data).toString("latin1") : v,
      ),
    ).not.toContain("provider-secret-value");

    const list = await tb.admin("GET", `/admin/connections?provider=${p}&limit=1`);
    expect(list.status).toBe(200);
    expect(list.body.connections).toHaveLength(1);
    for (const q of ["status=bogus", "cursor=nope", "limit=0"]) {
      expect((await tb.admin("GET", `/admin/connections?${q}`)).status).toBe(400);
    }
    for (const bad of [
      { provider: "missing", access_token: "a", refresh_token: "b" },
      { provider: p, access_token: "", refresh_token: "b" },
      { provider: p, access_token: "a", refresh_token: "b", expires_in: -1 },
      { provider: p, access_token: "a", refresh_token: "b", expires_at: "yesterday-ish" },
      { provider: p, access_token: "a", refresh_token: "b", metadata: [] },
    ]) {
      expect((await tb.admin("POST", "/admin/connections", bad)).status, JSON.stringify(bad)).toBe(400);
    }
    expect((await tb.admin("GET", "/admin/connections/not-a-uuid")).status).toBe(404);
  });

  it("serves the stored token to an API key in scope, no-store; RFC 6750 for bad or out-of-scope keys", async () => {
    const p = await provider();
    const c = await connection(p);
    const other = await connection(p);
    const key = await apiKey({ connections: [c.id] });
    const res = await tb.token(c.id, key, 60);
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.body).toEqual({
      access_token: c.access_token,
      token_type: "Bearer",
      expires_at: new Date(clock.now().getTime() + 3600_000).toISOString(),
      generation: 1,
    });
    expect(fake.calls).toBe(0);

    const denied = await tb.token(other.id, key);
    expect(denied.status).toBe(403);
    expect(denied.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    const byProvider = await apiKey({ providers: [p] });
    expect((await tb.token(other.id, byProvider)).status).toBe(200);

    const bad = await tb.token(c.id, `egk_${"A".repeat(43)}`);
    expect(bad.status).toBe(401);
    expect(bad.headers.get("www-authenticate")).toContain('error="invalid_token"');
    const none = await fetch(`${tb.url}/v1/connections/${c.id}/token`);
    expect(none.status).toBe(401);
    expect((await tb.token(c.id, key, -5 as number)).status).toBe(400);
    expect((await tb.token("nope", key)).status).toBe(404);

    const keys = await tb.admin("GET", "/admin/api-keys");
    expect(JSON.stringify(keys.body)).not.toContain(key);
    const stored = await tb.db.db.query("SELECT key_hash FROM broker_api_keys");
    expect(JSON.stringify(stored.rows)).not.toContain(key.slice(4));
    const id = keys.body.find((k: { key_prefix: string }) => key.startsWith(k.key_prefix)).id;
    expect((await tb.admin("DELETE", `/admin/api-keys/${id}`)).status).toBe(204);
    expect((await tb.token(c.id, key)).status).toBe(401);
  });

  it("refreshes on demand when the token is too short-lived, once for many concurrent consumers", async () => {
    const p = await provider();
    const c = await connection(p, 30);
    const key = await apiKey();
    const before = fake.calls;
    const answers = await Promise.all(Array.from({ length: 12 }, () => tb.token(c.id, key, 120)));
    for (const a of answers) expect(a.status, JSON.stringify(a.body)).toBe(200);
    const tokens = new Set(answers.map((a) => a.body.access_token));
    expect(tokens.size).toBe(1);
    expect([...tokens][0]).not.toBe(c.access_token);
    expect(answers[0]!.body.generation).toBe(2);
    expect(fake.calls - before).toBe(1);
    // The provider got the stored refresh token with HTTP Basic client authentication.
    const sent = fake.requests.at(-1)!;
    expect(sent.body).toMatchObject({ grant_type: "refresh_token", refresh_token: c.refresh_token });
    expect(sent.headers.authorization).toBe(
      `Basic ${Buffer.from("cid:provider-secret-value").toString("base64")}`,
    );
    const events = await tb.admin("GET", `/admin/connections/${c.id}/events`);
    expect(events.body.map((e: { type: string }) => e.type)).toEqual(["refreshed"]);
  });

  it("answers 409 without a token when the grant is gone, and reauth brings it back", async () => {
    const p = await provider();
    const c = await connection(p, 10);
    fake.spend(c.refresh_token); // someone else rotated it: our stored token is now a reuse
    const key = await apiKey();
    const res = await tb.token(c.id, key, 60);
    expect(res.status).toBe(409);
    expect(res.body).toEqual({ status: "needs_reauth", reason: "invalid_grant" });
    expect(JSON.stringify(res.body)).not.toContain("at_");
    const shown = await tb.admin("GET", `/admin/connections/${c.id}`);
    expect(shown.body).toMatchObject({ status: "needs_reauth", reason: "invalid_grant", failure_count: 1 });
    const events = (await tb.admin("GET", `/admin/connections/${c.id}/events`)).body.map(
      (e: { type: string }) => e.type,
    );
    expect(events).toEqual(["needs_reauth", "refresh_failed"]);

    const fresh = fake.issue();
    const re = await tb.admin("POST", `/admin/connections/${c.id}/reauth`, { ...fresh, expires_in: 3600 });
    expect(re.status).toBe(200);
    expect(re.body).toMatchObject({ status: "active", reason: null, failure_count: 0, generation: 2 });
    const ok = await tb.token(c.id, key, 60);
    expect(ok.status).toBe(200);
    expect(ok.body.access_token).toBe(fresh.access_token);
  });

  it("maps a non-standard response (seed 004 shape, 201) and keeps the refresh token when none is returned", async () => {
    const p = await provider({
      auth_style: "body",
      body_format: "json",
      response: {
        access_token: "authorization.token",
        expires_at: "authorization.expires_at",
        refresh_token: "refresh.token",
        success_status: 201,
      },
    });
    const c = await connection(p, 5);
    const key = await apiKey();
    const reuseBefore = fake.reuse;
    fake.script({ kind: "seed004" });
    const first = await tb.token(c.id, key, 60);
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(fake.requests.at(-1)!.body).toMatchObject({
      client_id: "cid",
      client_secret: "provider-secret-value",
    });
    expect(first.body.generation).toBe(2);

    // A provider that returns no refresh token: the stored one stays and keeps working.
    const p2 = await provider();
    const c2 = await connection(p2, 5);
    fake.script({ kind: "drop_refresh_token" });
    expect((await tb.token(c2.id, key, 60)).status).toBe(200);
    const again = await tb.admin("POST", `/admin/connections/${c2.id}/refresh`);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ status: "active", generation: 3, outcome: "refreshed" });
    expect(fake.reuse).toBe(reuseBefore);
  });
});
