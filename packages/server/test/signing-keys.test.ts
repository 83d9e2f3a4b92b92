import { ManualClock } from "@evergreen/db";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DATABASES,
  type TestDatabase,
  type TestIssuer,
  createTestDatabase,
  startTestIssuer,
} from "./harness.ts";
import {
  type TestClient,
  type TestUser,
  createClient,
  createUser,
  decodeJwt,
  expectInvalidToken,
  loginOk,
  refreshOk,
  userinfo,
} from "./helpers.ts";

describe.each(DATABASES)("signing keys and rotation on %s", (kind) => {
  let db: TestDatabase;
  let ti: TestIssuer;
  let peer: TestIssuer;
  let clock: ManualClock;
  let app: TestClient;
  let user: TestUser;

  beforeAll(async () => {
    clock = new ManualClock();
    db = await createTestDatabase(kind);
    ti = await startTestIssuer({ db, clock });
    app = await createClient(ti, { access_token_ttl: 600 });
    user = await createUser(ti);
  });
  afterAll(async () => {
    await peer?.close();
    await ti?.close();
    await db?.drop();
  });

  const jwks = async (t: TestIssuer = ti) => {
    const res = await fetch(`${t.url}/jwks`);
    expect(res.status).toBe(200);
    return (await res.json()) as { keys: Record<string, string>[] };
  };

  it("publishes one public key at first start, never a private part", async () => {
    const res = await fetch(`${ti.url}/jwks`);
    expect(res.headers.get("content-type")).toMatch(/application\/jwk-set\+json/);
    const { keys } = await jwks();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    expect(keys[0]!.d).toBeUndefined();
    const { rows } = await ti.db.query<{ private_key: Buffer; kid: string }>(
      "SELECT kid, private_key FROM signing_keys",
    );
    expect(rows).toHaveLength(1);
    // the private key is stored sealed, not as a plain PKCS#8 DER
    const pkcs8 = ti.issuer.ctx.keys.current().privateKey.export({ format: "der", type: "pkcs8" });
    expect(rows[0]!.private_key.includes(pkcs8)).toBe(false);
  });

  it("rotation: both keys published, old tokens still verify, new tokens use the new kid", async () => {
    const before = await loginOk(ti, app, user);
    const oldKid = decodeJwt(before.access_token).header.kid;
    // a rotation inside the grace window of a refresh must not change the replayed token
    const t2 = await refreshOk(ti, app, before.refresh_token!);

    const rotated = await ti.admin("POST", "/admin/keys/rotate");
    expect(rotated.status).toBe(201);
    const newKid = rotated.body.kid as string;
    expect(newKid).not.toBe(oldKid);

    const kids = (await jwks()).keys.map((k) => k.kid);
    expect(kids.sort()).toEqual([oldKid, newKid].sort());
    const listed = await ti.admin("GET", "/admin/keys");
    expect(listed.body.find((k: any) => k.kid === newKid).current).toBe(true);
    expect(listed.body.find((k: any) => k.kid === oldKid).current).toBe(false);

    // old-key tokens keep verifying, at /userinfo and through the JWKS
    expect((await userinfo(ti, before.access_token)).status).toBe(200);
    expect((await userinfo(ti, t2.access_token)).status).toBe(200);
    const remote = createRemoteJWKSet(new URL(`${ti.url}/jwks`));
    await jwtVerify(before.access_token, remote, { currentDate: clock.now() });

    // new tokens use the new key
    const after = await loginOk(ti, app, user);
    expect(decodeJwt(after.access_token).header.kid).toBe(newKid);
    expect((await userinfo(ti, after.access_token)).status).toBe(200);
    await jwtVerify(after.access_token, remote, { currentDate: clock.now() });
    const replay = await refreshOk(ti, app, before.refresh_token!);
    expect(replay.access_token).toBe(t2.access_token);
    expect(decodeJwt(replay.access_token).header.kid).toBe(oldKid);
    const refreshed = await refreshOk(ti, app, t2.refresh_token!);
    expect(decodeJwt(refreshed.access_token).header.kid).toBe(newKid);
  });

  it("another process on the same database verifies tokens signed with the new key", async () => {
    // same issuer identifier, as several processes behind one URL would have
    peer = await startTestIssuer({ db, clock, env: { ISSUER: ti.config.issuer } });
    const t = await loginOk(ti, app, user);
    expect((await userinfo(peer, t.access_token)).status).toBe(200);
    const rotated = await ti.admin("POST", "/admin/keys/rotate");
    expect(rotated.status).toBe(201);
    const fresh = await loginOk(ti, app, user);
    expect(decodeJwt(fresh.access_token).header.kid).toBe(rotated.body.kid);
    // the peer has never seen this kid: it reloads keys from the database on the miss
    expect((await userinfo(peer, fresh.access_token)).status).toBe(200);
  });

  it("after the overlap the retired keys are unpublished and their tokens rejected", async () => {
    const current = ti.issuer.ctx.keys.current().kid;
    const old = await loginOk(ti, app, user);
    const rotated = await ti.admin("POST", "/admin/keys/rotate");
    expect(rotated.status).toBe(201);
    // overlap = longest access-token lifetime (600 s) + 60 s
    clock.advance(661);
    const kids = (await jwks()).keys.map((k) => k.kid);
    expect(kids).toEqual([rotated.body.kid]);
    expect(kids).not.toContain(current);
    expectInvalidToken(await userinfo(ti, old.access_token));
    const fresh = await loginOk(ti, app, user);
    expect((await userinfo(ti, fresh.access_token)).status).toBe(200);
  });
});
