/**
 * `expires_in` is the access token's lifetime as issued: derived from the same instant as its
 * `exp`, so a busy machine whose clock moves between two reads never answers one second short.
 */
import type { Clock } from "@evergreen/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATABASES, type TestIssuer, startTestIssuer } from "./harness.ts";
import { createClient, createUser, decodeJwt, loginOk, refreshOk, token } from "./helpers.ts";

/** A clock that is a whole second later at every read: the worst case of a loaded machine. */
class SecondPerReadClock implements Clock {
  #ms = Date.UTC(2030, 0, 1);
  now(): Date {
    this.#ms += 1000;
    return new Date(this.#ms);
  }
}

describe.each(DATABASES)("expires_in on %s", (kind) => {
  let ti: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer({ database: kind, clock: new SecondPerReadClock() });
  });
  afterAll(() => ti?.close());

  it("equals the access-token lifetime and exp − iat for password, refresh (rotating and sliding) and client_credentials", async () => {
    const user = await createUser(ti);
    const rotating = await createClient(ti, { access_token_ttl: 120 });
    const sliding = await createClient(ti, { access_token_ttl: 90, rotate_refresh_tokens: false });
    const service = await createClient(ti, {
      token_endpoint_auth_method: "client_secret_basic",
      grant_types: ["client_credentials"],
      scope: "read",
      access_token_ttl: 300,
    });

    const check = (body: { access_token: string; expires_in: number }, ttl: number) => {
      expect(body.expires_in).toBe(ttl);
      const { payload } = decodeJwt(body.access_token);
      expect(payload.exp - payload.iat).toBe(ttl);
    };

    const first = await loginOk(ti, rotating, user);
    check(first, 120);
    check(await refreshOk(ti, rotating, first.refresh_token!), 120);

    const slid = await loginOk(ti, sliding, user);
    check(slid, 90);
    check(await refreshOk(ti, sliding, slid.refresh_token!), 90);

    const cc = await token(ti, { grant_type: "client_credentials" }, service);
    expect(cc.status, cc.text).toBe(200);
    check(cc.body, 300);
  });
});
