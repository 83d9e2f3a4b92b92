/**
 * The todo API and the legacy endpoints against the real issuer, on PGlite and on a fresh
 * PostgreSQL database: the guard's RFC 6750 refusals, per-user isolation, and what each call
 * leaves in the database. Time is the issuer's ManualClock, shared with the guard.
 */
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DATABASES,
  ManualClock,
  startTestIssuer,
  type TestIssuer,
} from "../../../packages/server/test/harness.ts";
import {
  createClient,
  createUser,
  loginOk,
  refreshOk,
  type TestClient,
  type TestUser,
} from "../../../packages/server/test/helpers.ts";
import { createAccessTokenVerifier } from "@evergreen/server/guard";
import { ensureTodoSchema } from "../src/schema.ts";
import { buildTodoServer, type TodoServerStats } from "../src/todo-server.ts";

const TTL = 30;

describe.each(DATABASES)("todo API on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;
  let app: FastifyInstance;
  let stats: TodoServerStats;
  let client: TestClient;
  let legacyClient: TestClient;
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock, env: { EVERGREEN_RATE_LIMIT_PER_IP: "1000" } });
    await ensureTodoSchema(ti.db);
    await ensureTodoSchema(ti.db); // a second start finds the tables in place
    const settings = { scope: "openid todo", access_token_ttl: TTL };
    client = await createClient(ti, settings);
    legacyClient = await createClient(ti, { ...settings, rotate_refresh_tokens: false });
    alice = await createUser(ti);
    bob = await createUser(ti);
    const built = buildTodoServer({
      db: ti.db,
      clock,
      verifier: createAccessTokenVerifier({
        issuer: ti.config.issuer,
        audience: ti.config.audience,
        jwksUri: `${ti.url}/jwks`,
        clock,
      }),
      web: { html: "<!--config-->", script: "" },
      config: {
        issuer: ti.url,
        clientId: client.client_id,
        legacyClientId: legacyClient.client_id,
        mode: "standard",
        refreshLeeway: 5,
      },
      legacy: { tokenEndpoint: `${ti.url}/token`, scope: "openid todo" },
    });
    app = built.app;
    stats = built.stats;
  });

  afterAll(async () => {
    await app?.close();
    await ti?.close();
  });

  const call = async (method: string, url: string, token?: string, body?: unknown) => {
    const res = await app.inject({
      method: method as "GET",
      url,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      ...(body === undefined ? {} : { payload: body as object }),
    });
    return {
      status: res.statusCode,
      headers: res.headers,
      body: res.body ? JSON.parse(res.body) : undefined,
    };
  };
  const tokenFor = async (user: TestUser) =>
    (await loginOk(ti, client, user, { scope: "openid todo" })).access_token;
  const lists = async () =>
    (
      await ti.db.query<{ id: string; owner: string; name: string }>(
        "SELECT id, owner, name FROM todo_lists ORDER BY seq",
      )
    ).rows;
  const items = async () =>
    (
      await ti.db.query<{ id: string; list_id: string; text: string; done: boolean }>(
        "SELECT id, list_id, text, done FROM todo_items ORDER BY seq",
      )
    ).rows;
  const snapshot = async () => JSON.stringify([await lists(), await items()]);

  it("refuses requests without a valid access token, RFC 6750 style, before reading the body", async () => {
    const before = await snapshot();
    const unauthorized = stats.unauthorized;

    const none = await call("POST", "/api/lists", undefined, { name: "x" });
    expect(none.status).toBe(401);
    expect(none.headers["www-authenticate"]).toBe('Bearer realm="todo"');

    const malformed = await app.inject({
      method: "GET",
      url: "/api/lists",
      headers: { authorization: "Bearer a b" },
    });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.headers["www-authenticate"]).toMatch(/error="invalid_request"/);

    const login = await loginOk(ti, client, alice, { scope: "openid todo" });
    const refresh = await call("GET", "/api/lists", login.refresh_token);
    expect(refresh.status).toBe(401);
    expect(refresh.headers["www-authenticate"]).toMatch(/error="invalid_token"/);
    expect(refresh.body.error).toBe("invalid_token");

    const forged = `${login.access_token.slice(0, -4)}AAAA`;
    expect((await call("GET", "/api/lists", forged)).headers["www-authenticate"]).toMatch(/invalid_token/);

    // An invalid body from someone without a token is refused as unauthenticated, not validated.
    expect((await call("POST", "/api/lists", undefined, { nonsense: true })).status).toBe(401);

    clock.advance(TTL + 1);
    const expired = await call("POST", "/api/lists", login.access_token, { name: "late" });
    expect(expired.status).toBe(401);
    expect(expired.headers["www-authenticate"]).toMatch(
      /error="invalid_token", error_description="the access token expired"/,
    );

    expect(await snapshot()).toBe(before);
    expect(stats.unauthorized - unauthorized).toBe(5);
  });

  it("requires the todo scope", async () => {
    const narrow = await loginOk(ti, client, alice, { scope: "openid" });
    const res = await call("GET", "/api/lists", narrow.access_token);
    expect(res.status).toBe(403);
    expect(res.headers["www-authenticate"]).toMatch(/error="insufficient_scope", .*scope="todo"/);
  });

  it("creates, renames, checks and deletes lists and items, as the database shows", async () => {
    const token = await tokenFor(alice);
    const created = await call("POST", "/api/lists", token, { name: "  Groceries " });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: "Groceries", items_total: 0, items_done: 0 });
    const listId = created.body.id as string;
    const sub = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()).sub;
    expect((await lists()).find((l) => l.id === listId)).toEqual({
      id: listId,
      owner: sub,
      name: "Groceries",
    });

    expect((await call("PATCH", `/api/lists/${listId}`, token, { name: "Shopping" })).body.name).toBe(
      "Shopping",
    );
    expect((await lists()).find((l) => l.id === listId)?.name).toBe("Shopping");

    const milk = await call("POST", `/api/lists/${listId}/items`, token, { text: "milk" });
    const eggs = await call("POST", `/api/lists/${listId}/items`, token, { text: "eggs" });
    expect([milk.status, eggs.status]).toEqual([201, 201]);
    const checked = await call("PATCH", `/api/lists/${listId}/items/${milk.body.id}`, token, { done: true });
    expect(checked.body).toMatchObject({ text: "milk", done: true });
    expect((await items()).filter((i) => i.list_id === listId).map((i) => [i.text, i.done])).toEqual([
      ["milk", true],
      ["eggs", false],
    ]);
    await call("PATCH", `/api/lists/${listId}/items/${milk.body.id}`, token, {
      done: false,
      text: "oat milk",
    });
    expect((await items()).find((i) => i.id === milk.body.id)).toMatchObject({
      text: "oat milk",
      done: false,
    });

    const detail = await call("GET", `/api/lists/${listId}`, token);
    expect(detail.body.items.map((i: { text: string }) => i.text)).toEqual(["oat milk", "eggs"]);
    expect(
      (await call("GET", "/api/lists", token)).body.lists.find((l: { id: string }) => l.id === listId),
    ).toMatchObject({
      items_total: 2,
      items_done: 0,
    });

    expect((await call("DELETE", `/api/lists/${listId}/items/${eggs.body.id}`, token)).status).toBe(204);
    expect((await items()).some((i) => i.id === eggs.body.id)).toBe(false);
    expect((await call("DELETE", `/api/lists/${listId}`, token)).status).toBe(204);
    expect((await lists()).some((l) => l.id === listId)).toBe(false);
    expect((await items()).some((i) => i.list_id === listId)).toBe(false); // items went with the list
  });

  it("never shows or changes another user's lists: their ids answer 404, like ids that do not exist", async () => {
    const aliceToken = await tokenFor(alice);
    const bobToken = await tokenFor(bob);
    const list = (await call("POST", "/api/lists", aliceToken, { name: "Alice's secrets" })).body;
    const item = (await call("POST", `/api/lists/${list.id}/items`, aliceToken, { text: "diary" })).body;
    const before = await snapshot();

    const bobsLists = (await call("GET", "/api/lists", bobToken)).body.lists as { id: string }[];
    expect(bobsLists.some((l) => l.id === list.id)).toBe(false);
    const attempts = [
      await call("GET", `/api/lists/${list.id}`, bobToken),
      await call("PATCH", `/api/lists/${list.id}`, bobToken, { name: "mine now" }),
      await call("DELETE", `/api/lists/${list.id}`, bobToken),
      await call("POST", `/api/lists/${list.id}/items`, bobToken, { text: "spam" }),
      await call("PATCH", `/api/lists/${list.id}/items/${item.id}`, bobToken, { done: true }),
      await call("DELETE", `/api/lists/${list.id}/items/${item.id}`, bobToken),
      await call("GET", `/api/lists/${crypto.randomUUID()}`, bobToken),
    ];
    expect(attempts.map((a) => a.status)).toEqual(Array(7).fill(404));
    expect(attempts[0]!.body).toEqual({ error: "not_found", error_description: "no such list" });
    expect(await snapshot()).toBe(before);

    // Alice's own item under a list id that is not its list: 404 too.
    const other = (await call("POST", "/api/lists", aliceToken, { name: "other" })).body;
    expect(
      (await call("PATCH", `/api/lists/${other.id}/items/${item.id}`, aliceToken, { done: true })).status,
    ).toBe(404);
    expect((await items()).find((i) => i.id === item.id)?.done).toBe(false);
  });

  it("answers bad input with a JSON 400 (or 404 for a malformed id) and changes nothing", async () => {
    const token = await tokenFor(alice);
    const list = (await call("POST", "/api/lists", token, { name: "valid" })).body;
    const before = await snapshot();
    const bad = [
      await call("POST", "/api/lists", token, { name: "" }),
      await call("POST", "/api/lists", token, { name: "   " }),
      await call("POST", "/api/lists", token, { name: "x".repeat(201) }),
      await call("POST", "/api/lists", token, { name: "x", owner: "someone-else" }),
      await call("POST", "/api/lists", token, [1, 2]),
      await call("PATCH", `/api/lists/${list.id}/items/${crypto.randomUUID()}`, token, {}),
      await call("POST", `/api/lists/${list.id}/items`, token, { text: 42 }),
    ];
    expect(bad.map((r) => r.status)).toEqual(Array(7).fill(400));
    for (const r of bad) expect(r.body.error).toBe("invalid_request");
    const notJson = await app.inject({
      method: "POST",
      url: "/api/lists",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      payload: "{nope",
    });
    expect(notJson.statusCode).toBe(400);
    expect(JSON.parse(notJson.body).error).toBe("invalid_request");
    expect((await call("GET", "/api/lists/not-a-uuid", token)).status).toBe(404);
    expect((await call("DELETE", "/api/lists/1';DROP TABLE todo_lists;--", token)).status).toBe(404);
    expect(await snapshot()).toBe(before);
  });

  it("legacy endpoints: /token/ gives {access, refresh}; /refresh/ gives only {access}, and the refresh token stays usable", async () => {
    const login = await app.inject({
      method: "POST",
      url: "/token/",
      payload: { username: alice.username, password: alice.password },
    });
    expect(login.statusCode).toBe(200);
    const { access, refresh } = JSON.parse(login.body);
    expect(Object.keys(JSON.parse(login.body)).sort()).toEqual(["access", "refresh"]);
    expect((await call("GET", "/api/lists", access)).status).toBe(200);

    const legacyRefreshes = stats.legacyRefreshes;
    for (let round = 0; round < 3; round++) {
      clock.advance(TTL + 1);
      expect((await call("GET", "/api/lists", access)).status).toBe(401);
      const res = await app.inject({ method: "POST", url: "/refresh/", payload: { refresh } });
      expect(res.statusCode).toBe(200);
      expect(Object.keys(JSON.parse(res.body))).toEqual(["access"]);
      expect(res.headers["ratelimit-limit"]).toBe("1000");
      expect(Number(res.headers["ratelimit-remaining"])).toBeLessThan(1000);
      expect(res.headers["cache-control"]).toBe("no-store");
      expect((await call("GET", "/api/lists", JSON.parse(res.body).access)).status).toBe(200);
    }
    expect(stats.legacyRefreshes - legacyRefreshes).toBe(3);

    const dead = await app.inject({ method: "POST", url: "/refresh/", payload: { refresh: "egr_unknown" } });
    expect(dead.statusCode).toBe(401);
    expect(JSON.parse(dead.body)).toEqual({ detail: "Token is invalid or expired", code: "token_not_valid" });
    const wrong = await app.inject({
      method: "POST",
      url: "/token/",
      payload: { username: alice.username, password: "not the password" },
    });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).not.toContain("not the password");
    const empty = await app.inject({ method: "POST", url: "/refresh/", payload: {} });
    expect(empty.statusCode).toBe(400);
  });

  it("the standard client rotates: each refresh token works once", async () => {
    const login = await loginOk(ti, client, alice, { scope: "openid todo" });
    const next = await refreshOk(ti, client, login.refresh_token!);
    expect(next.refresh_token).not.toBe(login.refresh_token);
    expect((await call("GET", "/api/lists", next.access_token)).status).toBe(200);
  });
});
