import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeClientBody, redeem, signIn } from "./browser-flow.ts";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import { type TestUser, createClient, createUser, loginOk } from "./helpers.ts";

const CALLBACK = "https://app.example.test/cb";

describe.each(DATABASES)("per-client refresh_token_policy on %s", (kind) => {
  let ti: TestIssuer;
  let user: TestUser;

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind });
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  const families = async (clientId: string) =>
    (
      await ti.db.query<{ n: number }>("SELECT count(*)::int AS n FROM families WHERE client_id = $1", [
        clientId,
      ])
    ).rows[0]!.n;

  it("defaults to always (today's behaviour) and is validated by the admin API", async () => {
    const app = await createClient(ti);
    expect((await ti.admin("GET", `/admin/clients/${app.client_id}`)).body.refresh_token_policy).toBe(
      "always",
    );
    expect((await loginOk(ti, app, user, { scope: "openid" })).refresh_token).toMatch(/^egr_/);
    const bad = await ti.admin("POST", "/admin/clients", {
      grant_types: ["password"],
      token_endpoint_auth_method: "none",
      refresh_token_policy: "sometimes",
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toBe("invalid_request");
  });

  it("offline_access: a refresh token only when that scope is requested and granted", async () => {
    const app = await createClient(ti, { refresh_token_policy: "offline_access" });
    const online = await loginOk(ti, app, user, { scope: "openid" });
    expect(online.refresh_token).toBeUndefined();
    expect(await families(app.client_id)).toBe(0);
    const offline = await loginOk(ti, app, user, { scope: "openid offline_access" });
    expect(offline.refresh_token).toMatch(/^egr_/);
    expect(await families(app.client_id)).toBe(1);

    const web = await createClient(
      ti,
      codeClientBody([CALLBACK], { refresh_token_policy: "offline_access" }),
    );
    for (const [scope, expected] of [
      ["openid", false],
      ["openid offline_access", true],
    ] as const) {
      const flow = await signIn(ti, { client: web, user, redirectUri: CALLBACK, scope });
      const res = await redeem(ti, web, flow.params.get("code")!, CALLBACK, flow.pkce.verifier);
      expect(res.status, res.text).toBe(200);
      expect("refresh_token" in res.body).toBe(expected);
    }
  });

  it("never: no refresh token whatever is asked, and the policy can be changed with PATCH", async () => {
    const app = await createClient(ti, { refresh_token_policy: "never" });
    const t = await loginOk(ti, app, user, { scope: "openid offline_access" });
    expect(t.refresh_token).toBeUndefined();
    expect(t.access_token).toBeTruthy();
    expect(await families(app.client_id)).toBe(0);
    const patched = await ti.admin("PATCH", `/admin/clients/${app.client_id}`, {
      refresh_token_policy: "always",
    });
    expect(patched.status).toBe(200);
    expect(patched.body.refresh_token_policy).toBe("always");
    ti.issuer.ctx.clients.invalidate(app.client_id);
    expect((await loginOk(ti, app, user)).refresh_token).toMatch(/^egr_/);
  });
});
