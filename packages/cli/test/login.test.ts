/**
 * `evergreen login` (loopback flow with the browser played by a cookie jar) and
 * `evergreen token` against a real issuer; the session lives in a temporary EVERGREEN_HOME.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CookieJar, browse, hiddenField } from "../../server/test/browser-flow.ts";
import { type TestIssuer, startTestIssuer } from "../../server/test/harness.ts";
import { type TestUser, createClient, createUser, decodeJwt, userinfo } from "../../server/test/helpers.ts";
import { loginCommand, tokenCommand } from "../src/commands/login.ts";

describe("evergreen login / evergreen token", () => {
  let ti: TestIssuer;
  let user: TestUser;
  let clientId: string;
  let home: string;
  const previousHome = process.env.EVERGREEN_HOME;

  beforeAll(async () => {
    ti = await startTestIssuer();
    user = await createUser(ti);
    clientId = (
      await createClient(ti, {
        grant_types: ["authorization_code", "refresh_token"],
        redirect_uris: ["http://127.0.0.1/callback"],
        scope: "openid offline_access",
        skip_consent: true,
      })
    ).client_id;
    home = await mkdtemp(join(tmpdir(), "evergreen-home-"));
    process.env.EVERGREEN_HOME = home;
  });
  afterAll(async () => {
    if (previousHome === undefined) delete process.env.EVERGREEN_HOME;
    else process.env.EVERGREEN_HOME = previousHome;
    await rm(home, { recursive: true, force: true });
    await ti?.close();
  });

  const userInBrowser = async (url: string) => {
    const jar = new CookieJar();
    const page = await browse(jar, url);
    const back = await browse(jar, `${ti.url}/authorize/login`, {
      csrf: hiddenField(page.html, "csrf"),
      request: hiddenField(page.html, "request"),
      username: user.username,
      password: user.password,
    });
    expect(back.status).toBe(303);
    expect((await fetch(back.location!)).status).toBe(200);
  };

  it("token without a login fails with a hint", async () => {
    await expect(tokenCommand([], { out: () => {} })).rejects.toThrow(/evergreen login/);
  });

  it("login stores an encrypted session; token prints a working access token", async () => {
    const messages: string[] = [];
    const code = await loginCommand(["--issuer", ti.url, "--client-id", clientId], {
      openBrowser: userInBrowser,
      err: (t) => messages.push(t),
    });
    expect(code).toBe(0);
    expect(messages.join("")).toContain("Signed in");
    // the refresh token is not readable in the stored file
    const files = await readdir(home);
    for (const f of files) expect(await readFile(join(home, f), "utf8")).not.toContain("egr_");

    let printed = "";
    expect(await tokenCommand([], { out: (t) => (printed += t) })).toBe(0);
    const accessToken = printed.trim();
    expect(decodeJwt(accessToken).payload.sub).toBe(user.id);
    expect((await userinfo(ti, accessToken)).status).toBe(200);
  });
});
