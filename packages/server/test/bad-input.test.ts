import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type HttpResult,
  type TestClient,
  type TestUser,
  basicAuth,
  createClient,
  createUser,
  encodeForm,
  expectOAuthError,
  loginOk,
  post,
  refreshOk,
  snapshot,
} from "./helpers.ts";

const FORM = "application/x-www-form-urlencoded";

describe.each(DATABASES)("bad input at the token, revocation and introspection endpoints on %s", (kind) => {
  let ti: TestIssuer;
  let app: TestClient;
  let conf: TestClient;
  let user: TestUser;
  let rt: string;

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind });
    app = await createClient(ti);
    conf = await createClient(ti, { token_endpoint_auth_method: "client_secret_basic" });
    user = await createUser(ti);
    rt = (await loginOk(ti, app, user)).refresh_token!;
  });
  afterAll(() => ti?.close());

  /** Sends a request and checks it is a 400 invalid_request that left the database unchanged. */
  async function rejected(path: string, body: string | undefined, headers: Record<string, string>) {
    const before = await snapshot(ti.db);
    const res: HttpResult = await post(ti.url + path, body, headers);
    expectOAuthError(res, 400, "invalid_request");
    expect(typeof res.body.error_description).toBe("string");
    expect(await snapshot(ti.db)).toBe(before);
    return res;
  }

  const form = (params: Record<string, string | string[]>) => encodeForm(params);
  const refreshParams = () => ({ grant_type: "refresh_token", refresh_token: rt, client_id: app.client_id });
  const loginParams = () => ({
    grant_type: "password",
    username: user.username,
    password: user.password,
    client_id: app.client_id,
  });

  it.each([
    ["grant_type", () => ({ ...refreshParams(), grant_type: ["refresh_token", "refresh_token"] })],
    ["refresh_token", () => ({ ...refreshParams(), refresh_token: [rt, rt] })],
    ["client_id", () => ({ ...refreshParams(), client_id: [app.client_id, app.client_id] })],
    ["scope", () => ({ ...refreshParams(), scope: ["openid", "openid"] })],
    ["username", () => ({ ...loginParams(), username: [user.username, user.username] })],
    ["password", () => ({ ...loginParams(), password: [user.password, user.password] })],
  ])("a repeated %s parameter is invalid_request", async (name, params) => {
    const res = await rejected("/token", form(params()), { "content-type": FORM });
    expect(res.body.error_description).toContain(name);
    expect(res.text).not.toContain(user.password);
    expect(res.text).not.toContain(rt);
  });

  it.each([
    ["grant_type", () => ({ refresh_token: rt, client_id: app.client_id })],
    ["refresh_token", () => ({ grant_type: "refresh_token", client_id: app.client_id })],
    ["username", () => ({ grant_type: "password", password: user.password, client_id: app.client_id })],
    ["password", () => ({ grant_type: "password", username: user.username, client_id: app.client_id })],
    ["refresh_token (empty)", () => ({ ...refreshParams(), refresh_token: "" })],
  ])("a missing %s parameter is invalid_request", async (_name, params) => {
    await rejected("/token", form(params()), { "content-type": FORM });
  });

  it("a JSON body is invalid_request", async () => {
    await rejected("/token", JSON.stringify(refreshParams()), { "content-type": "application/json" });
    await rejected("/token", "{not json", { "content-type": "application/json" });
  });

  it("a text/plain body is invalid_request", async () => {
    await rejected("/token", form(refreshParams()), { "content-type": "text/plain" });
  });

  it("other content types are invalid_request", async () => {
    await rejected("/token", form(refreshParams()), { "content-type": "application/xml" });
    await rejected("/token", form(refreshParams()), { "content-type": "multipart/form-data; boundary=x" });
  });

  it("a body over 16 KiB is invalid_request", async () => {
    const big = form({ ...loginParams(), padding: "x".repeat(17 * 1024) });
    await rejected("/token", big, { "content-type": FORM });
    await rejected("/revoke", form({ token: rt, client_id: app.client_id, padding: "y".repeat(17 * 1024) }), {
      "content-type": FORM,
    });
  });

  it("an empty body is invalid_request, with or without a content type", async () => {
    await rejected("/token", "", { "content-type": FORM });
    await rejected("/token", undefined, {});
    await rejected("/revoke", "", { "content-type": FORM });
  });

  it("the revocation and introspection endpoints reject the same bad input", async () => {
    const auth = { authorization: basicAuth(conf.client_id, conf.client_secret!) };
    await rejected("/revoke", form({ token: [rt, rt], client_id: app.client_id }), { "content-type": FORM });
    await rejected("/revoke", JSON.stringify({ token: rt, client_id: app.client_id }), {
      "content-type": "application/json",
    });
    await rejected("/introspect", form({ token: [rt, rt] }), { "content-type": FORM, ...auth });
    await rejected("/introspect", "token=x", { "content-type": "text/plain", ...auth });
  });

  it("a charset parameter on the form content type is accepted (control case)", async () => {
    const res = await post(`${ti.url}/token`, form(refreshParams()), {
      "content-type": `${FORM}; charset=UTF-8`,
    });
    expect(res.status, res.text).toBe(200);
    rt = res.body.refresh_token;
    // and the token obtained this way keeps working
    rt = (await refreshOk(ti, app, rt)).refresh_token!;
  });
});
