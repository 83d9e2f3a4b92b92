import { createHash } from "node:crypto";
import { createLocalJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeClientBody, redeem, signIn } from "./browser-flow.ts";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import { type TestClient, type TestUser, createClient, createUser } from "./helpers.ts";

const CALLBACK = "https://app.example.test/cb";

describe.each(DATABASES)("OpenID Connect ID tokens on %s", (kind) => {
  for (const alg of ["EdDSA", "ES256"] as const) {
    describe(alg, () => {
      let ti: TestIssuer;
      let app: TestClient;
      let user: TestUser;

      beforeAll(async () => {
        ti = await startTestIssuer({ database: kind, env: { EVERGREEN_SIGNING_ALG: alg } });
        app = await createClient(ti, codeClientBody([CALLBACK]));
        user = await createUser(ti);
      });
      afterAll(() => ti?.close());

      it("scope openid returns an id_token with nonce, auth_time, at_hash, sid, aud and azp", async () => {
        const flow = await signIn(ti, {
          client: app,
          user,
          redirectUri: CALLBACK,
          scope: "openid profile email",
          extra: { nonce: "n-0S6_WzA2Mj" },
        });
        const res = await redeem(ti, app, flow.params.get("code")!, CALLBACK, flow.pkce.verifier);
        expect(res.status, res.text).toBe(200);
        const jwks = createLocalJWKSet((await (await fetch(`${ti.url}/jwks`)).json()) as any);
        const { payload, protectedHeader } = await jwtVerify(res.body.id_token, jwks, {
          issuer: ti.config.issuer,
          audience: app.client_id,
        });
        expect(protectedHeader.alg).toBe(alg);
        expect(payload.sub).toBe(user.id);
        expect(payload.nonce).toBe("n-0S6_WzA2Mj");
        expect(payload.azp).toBe(app.client_id);
        expect(payload.preferred_username).toBe(user.username);
        expect(payload.email).toBe(`${user.username}@example.test`);
        expect(typeof payload.auth_time).toBe("number");
        const { rows } = await ti.db.query<{ id: string; auth_time: Date }>(
          "SELECT id, auth_time FROM login_sessions WHERE user_id = $1",
          [user.id],
        );
        expect(payload.sid).toBe(rows[0]!.id);
        expect(payload.auth_time).toBe(Math.floor(rows[0]!.auth_time.getTime() / 1000));
        const digest = createHash(alg === "EdDSA" ? "sha512" : "sha256")
          .update(res.body.access_token)
          .digest();
        expect(payload.at_hash).toBe(digest.subarray(0, digest.length / 2).toString("base64url"));
      });

      it("no openid scope, no id_token", async () => {
        const flow = await signIn(ti, { client: app, user, redirectUri: CALLBACK, scope: "offline_access" });
        const res = await redeem(ti, app, flow.params.get("code")!, CALLBACK, flow.pkce.verifier);
        expect(res.status, res.text).toBe(200);
        expect(res.body.id_token).toBeUndefined();
      });
    });
  }
});
