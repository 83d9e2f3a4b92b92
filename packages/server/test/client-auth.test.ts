import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  basicAuth,
  createClient,
  createUser,
  encodeForm,
  expectOAuthError,
  loginOk,
  post,
  snapshot,
} from "./helpers.ts";

const FORM = { "content-type": "application/x-www-form-urlencoded" };

describe.each(DATABASES)("client authentication at the token endpoint on %s", (kind) => {
  let ti: TestIssuer;
  let pub: TestClient;
  let basic: TestClient;
  let body: TestClient;
  let user: TestUser;
  let rts: Record<string, string>;

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind });
    pub = await createClient(ti);
    basic = await createClient(ti, { token_endpoint_auth_method: "client_secret_basic" });
    body = await createClient(ti, { token_endpoint_auth_method: "client_secret_post" });
    user = await createUser(ti);
    rts = {
      pub: (await loginOk(ti, pub, user)).refresh_token!,
      basic: (await loginOk(ti, basic, user)).refresh_token!,
      body: (await loginOk(ti, body, user)).refresh_token!,
    };
  });
  afterAll(() => ti?.close());

  /** A refresh request with hand-made authentication; asserts the database did not change. */
  async function attempt(params: Record<string, string>, headers: Record<string, string> = {}) {
    const before = await snapshot(ti.db);
    const res = await post(`${ti.url}/token`, encodeForm({ grant_type: "refresh_token", ...params }), {
      ...FORM,
      ...headers,
    });
    expect(await snapshot(ti.db)).toBe(before);
    return res;
  }

  it("unknown client: 401 invalid_client (Basic challenge when Basic was used)", async () => {
    const viaBody = await attempt({ refresh_token: rts.pub!, client_id: "no-such-client" });
    expectOAuthError(viaBody, 401, "invalid_client");
    const viaBasic = await attempt(
      { refresh_token: rts.basic! },
      { authorization: basicAuth("no-such-client", "secret") },
    );
    expectOAuthError(viaBasic, 401, "invalid_client");
    expect(viaBasic.headers.get("www-authenticate")).toMatch(/^Basic realm=/);
  });

  it("no client identification at all: 401 invalid_client", async () => {
    expectOAuthError(await attempt({ refresh_token: rts.pub! }), 401, "invalid_client");
  });

  it("wrong secret with Basic: 401 invalid_client with WWW-Authenticate Basic", async () => {
    const res = await attempt(
      { refresh_token: rts.basic! },
      { authorization: basicAuth(basic.client_id, `${basic.client_secret}x`) },
    );
    expectOAuthError(res, 401, "invalid_client");
    expect(res.headers.get("www-authenticate")).toMatch(/^Basic realm="evergreen"/);
    expect(res.text).not.toContain(basic.client_secret!);
  });

  it("malformed Basic credentials: 401 invalid_client", async () => {
    const res = await attempt(
      { refresh_token: rts.basic! },
      { authorization: `Basic ${Buffer.from("no-colon-here").toString("base64")}` },
    );
    expectOAuthError(res, 401, "invalid_client");
    expect(res.headers.get("www-authenticate")).toMatch(/^Basic /);
  });

  it("wrong secret in the body: 401 invalid_client", async () => {
    const res = await attempt({
      refresh_token: rts.body!,
      client_id: body.client_id,
      client_secret: "egs_wrong",
    });
    expectOAuthError(res, 401, "invalid_client");
  });

  it("a client using another method than the one it registered: 401 invalid_client", async () => {
    // basic client sending its (correct) secret in the body
    expectOAuthError(
      await attempt({
        refresh_token: rts.basic!,
        client_id: basic.client_id,
        client_secret: basic.client_secret!,
      }),
      401,
      "invalid_client",
    );
    // post client sending its (correct) secret with Basic
    expectOAuthError(
      await attempt(
        { refresh_token: rts.body! },
        { authorization: basicAuth(body.client_id, body.client_secret!) },
      ),
      401,
      "invalid_client",
    );
  });

  it("a public client sending a secret: 401 invalid_client", async () => {
    expectOAuthError(
      await attempt({ refresh_token: rts.pub!, client_id: pub.client_id, client_secret: "anything" }),
      401,
      "invalid_client",
    );
    expectOAuthError(
      await attempt({ refresh_token: rts.pub! }, { authorization: basicAuth(pub.client_id, "anything") }),
      401,
      "invalid_client",
    );
  });

  it("a confidential client sending no secret: 401 invalid_client", async () => {
    const res = await attempt({ refresh_token: rts.basic!, client_id: basic.client_id });
    expectOAuthError(res, 401, "invalid_client");
    expect(res.body.error_description).toMatch(/must authenticate/);
  });

  it("two methods at once (Basic and a body secret): 400 invalid_request", async () => {
    const res = await attempt(
      { refresh_token: rts.basic!, client_id: basic.client_id, client_secret: basic.client_secret! },
      { authorization: basicAuth(basic.client_id, basic.client_secret!) },
    );
    expectOAuthError(res, 400, "invalid_request");
  });

  it("a body client_id that contradicts the Basic one: 400 invalid_request", async () => {
    const res = await attempt(
      { refresh_token: rts.basic!, client_id: body.client_id },
      { authorization: basicAuth(basic.client_id, basic.client_secret!) },
    );
    expectOAuthError(res, 400, "invalid_request");
  });

  it("the correct credentials still work after all the failures", async () => {
    for (const [client, rt] of [
      [pub, rts.pub],
      [basic, rts.basic],
      [body, rts.body],
    ] as const) {
      const res = await post(
        `${ti.url}/token`,
        encodeForm({
          grant_type: "refresh_token",
          refresh_token: rt,
          ...(client.method === "none" ? { client_id: client.client_id } : {}),
          ...(client.method === "client_secret_post"
            ? { client_id: client.client_id, client_secret: client.client_secret }
            : {}),
        }),
        {
          ...FORM,
          ...(client.method === "client_secret_basic"
            ? { authorization: basicAuth(client.client_id, client.client_secret!) }
            : {}),
        },
      );
      expect(res.status, res.text).toBe(200);
    }
  });
});
