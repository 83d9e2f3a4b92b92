import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  decodeJwt,
  familyOf,
  liveTokens,
  loginOk,
  refresh,
  refreshOk,
  userinfo,
} from "./helpers.ts";

describe.each(DATABASES)("ES256 signing (EVERGREEN_SIGNING_ALG=ES256) on %s", (kind) => {
  let ti: TestIssuer;
  let app: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind, env: { EVERGREEN_SIGNING_ALG: "ES256" } });
    app = await createClient(ti);
    user = await createUser(ti);
  });
  afterAll(() => ti?.close());

  it("publishes a P-256 key, says so in the metadata, and signs access tokens with it", async () => {
    const jwks = (await (await fetch(`${ti.url}/jwks`)).json()) as { keys: any[] };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256" });
    const meta = (await (await fetch(`${ti.url}/.well-known/oauth-authorization-server`)).json()) as any;
    expect(meta.access_token_signing_alg_values_supported).toEqual(["ES256"]);
    const t = await loginOk(ti, app, user);
    expect(decodeJwt(t.access_token).header.alg).toBe("ES256");
    expect((await userinfo(ti, t.access_token)).status).toBe(200);
  });

  it("a grace-window retry returns the same refresh token and an access token with the same claims", async () => {
    const t1 = await loginOk(ti, app, user);
    const fid = await familyOf(ti.db, t1.refresh_token!);
    const first = await refreshOk(ti, app, t1.refresh_token!);
    const retries = await Promise.all(Array.from({ length: 10 }, () => refresh(ti, app, t1.refresh_token!)));
    for (const r of retries) {
      expect(r.status, r.text).toBe(200);
      expect(r.body.refresh_token).toBe(first.refresh_token);
      // ECDSA signatures are randomised: the bytes may differ, the token may not
      expect(decodeJwt(r.body.access_token).payload).toEqual(decodeJwt(first.access_token).payload);
      expect((await userinfo(ti, r.body.access_token)).status).toBe(200);
    }
    expect(await liveTokens(ti.db, fid)).toBe(1);
  });
});
