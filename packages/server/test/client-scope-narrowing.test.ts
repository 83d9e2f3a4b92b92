import { ManualClock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  createClient,
  createUser,
  decodeJwt,
  expectOAuthError,
  family,
  familyOf,
  loginOk,
  refresh,
  refreshOk,
} from "./helpers.ts";

const WIDE = "openid profile admin:write";

/**
 * Narrowing a client's registered scope reaches its live sessions: a refresh never issues a
 * scope the client no longer has, and the session's stored scope shrinks for good (widening the
 * client again does not bring the old grant back).
 */
describe.each(DATABASES)("client scope narrowing on %s", (kind) => {
  let ti: TestIssuer;
  let clock: ManualClock;

  beforeAll(async () => {
    clock = new ManualClock();
    ti = await startTestIssuer({ database: kind, clock });
  });
  afterAll(() => ti?.close());

  for (const rotate of [true, false]) {
    it(`${rotate ? "rotating" : "non-rotating"} client: refreshes after the PATCH carry only the remaining scope, for good`, async () => {
      const app = await createClient(ti, { scope: WIDE, rotate_refresh_tokens: rotate });
      const user = await createUser(ti);
      const first = await loginOk(ti, app, user);
      expect(first.scope).toBe(WIDE);
      const fam = await familyOf(ti.db, first.refresh_token!);

      expect((await ti.admin("PATCH", `/admin/clients/${app.client_id}`, { scope: "openid" })).status).toBe(
        200,
      );
      const narrowed = await refreshOk(ti, app, first.refresh_token!);
      expect(narrowed.scope).toBe("openid");
      expect(decodeJwt(narrowed.access_token).payload.scope).toBe("openid");
      expect((await family(ti.db, fam))!.scope).toBe("openid");
      let rt = narrowed.refresh_token ?? first.refresh_token!;

      // asking for the removed scope explicitly is refused
      expectOAuthError(await refresh(ti, app, rt, { scope: "admin:write" }), 400, "invalid_scope");

      // widening the client again does not resurrect the old grant
      expect((await ti.admin("PATCH", `/admin/clients/${app.client_id}`, { scope: WIDE })).status).toBe(200);
      const later = await refreshOk(ti, app, rt);
      expect(later.scope).toBe("openid");
      expect(decodeJwt(later.access_token).payload.scope).toBe("openid");
      rt = later.refresh_token ?? rt;
      expectOAuthError(await refresh(ti, app, rt, { scope: "admin:write" }), 400, "invalid_scope");
      // a new login gets the widened registration
      expect((await loginOk(ti, app, user)).scope).toBe(WIDE);
    });
  }

  for (const requested of [undefined, WIDE]) {
    it(`a grace-window replay never repeats a scope the client lost (${requested ? "scope requested" : "no scope parameter"})`, async () => {
      const app = await createClient(ti, { scope: WIDE, refresh_token_reuse_grace: 60 });
      const user = await createUser(ti);
      const first = await loginOk(ti, app, user);
      const second = await refreshOk(ti, app, first.refresh_token!, requested ? { scope: requested } : {});
      expect(second.scope).toBe(WIDE);
      expect((await ti.admin("PATCH", `/admin/clients/${app.client_id}`, { scope: "openid" })).status).toBe(
        200,
      );
      clock.advance(1);
      const replay = await refreshOk(ti, app, first.refresh_token!);
      expect(replay.refresh_token).toBe(second.refresh_token);
      expect(replay.scope).toBe("openid");
      expect(decodeJwt(replay.access_token).payload.scope).toBe("openid");
      const fam = await familyOf(ti.db, first.refresh_token!);
      expect((await family(ti.db, fam))!.revoked_at).toBeNull();
      // the live token still refreshes, narrowed
      const third = await refreshOk(ti, app, second.refresh_token!);
      expect(third.scope).toBe("openid");
    });
  }

  it("introspection reports a refresh token's narrowed scope", async () => {
    const app = await createClient(ti, {
      scope: WIDE,
      token_endpoint_auth_method: "client_secret_post",
    });
    const user = await createUser(ti);
    const first = await loginOk(ti, app, user);
    expect(
      (await ti.admin("PATCH", `/admin/clients/${app.client_id}`, { scope: "openid profile" })).status,
    ).toBe(200);
    const res = await fetch(`${ti.url}/introspect`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        token: first.refresh_token!,
        client_id: app.client_id,
        client_secret: app.client_secret!,
      }),
    });
    const body = (await res.json()) as { active: boolean; scope: string };
    expect(body.active).toBe(true);
    expect(body.scope).toBe("openid profile");
  });
});
