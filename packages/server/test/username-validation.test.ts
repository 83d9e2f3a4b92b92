import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { inProcessBackend } from "../../cli/src/admin-backend.ts";
import { type TestIssuer, startTestIssuer } from "./harness.ts";
import { createUser, uniq } from "./helpers.ts";

// Names that look like another name, or hide characters: all refused.
const LOOKALIKES: [string, string][] = [
  ["zero-width space", "ali\u200bce"],
  ["zero-width joiner", "ali\u200dce"],
  ["zero-width non-joiner", "ali\u200cce"],
  ["byte order mark", "\ufeffalice"],
  ["right-to-left override", "alice\u202etxt.exe"],
  ["left-to-right isolate", "\u2066alice"],
  ["right-to-left mark", "alice\u200f"],
  ["soft hyphen", "al\u00adice"],
  ["word joiner", "ali\u2060ce"],
  ["line separator", "alice\u2028"],
  ["control character", "alice\u0007"],
  ["full-width letters (NFKC changes them)", "ａｌｉｃｅ"],
  ["ligature (NFKC changes it)", "\ufb01nn"],
  ["decomposed accent (NFKC composes it)", "jose\u0301"],
  ["private use", "alice\ue000"],
];

/** Usernames are compared exactly, so the admin API and the CLI refuse invisible and look-alike characters. */
describe("username validation", () => {
  let ti: TestIssuer;
  beforeAll(async () => {
    ti = await startTestIssuer({ database: "postgres" });
  });
  afterAll(() => ti?.close());

  it.each(LOOKALIKES)("admin create and patch refuse a %s", async (_what, name) => {
    const created = await ti.admin("POST", "/admin/users", { username: name, password: "password-123" });
    expect(created.status, JSON.stringify(created.body)).toBe(400);
    expect(created.body.error).toBe("invalid_request");
    const user = await createUser(ti);
    const patched = await ti.admin("PATCH", `/admin/users/${user.id}`, { username: name });
    expect(patched.status).toBe(400);
    expect((await ti.admin("GET", `/admin/users/${user.id}`)).body.username).toBe(user.username);
  });

  it("ordinary names, including non-Latin scripts and composed accents, are accepted", async () => {
    for (const name of [
      uniq("alice.smith-"),
      uniq("josé_"),
      uniq("Дмитрий"),
      uniq("山田"),
      uniq("a+b@c.d"),
    ]) {
      const res = await ti.admin("POST", "/admin/users", { username: name, password: "password-123" });
      expect(res.status, `${name}: ${JSON.stringify(res.body)}`).toBe(201);
      expect(res.body.username).toBe(name);
    }
  });

  it("the CLI's in-process backend refuses them too", async () => {
    const backend = await inProcessBackend(loadConfig({ DATABASE_URL: ti.databaseUrl! }));
    try {
      await expect(backend.createUser({ username: "bo\u200bb", password: "password-123" })).rejects.toThrow(
        /^invalid_request: username must be/,
      );
      const ok = await backend.createUser({ username: uniq("bob-"), password: "password-123" });
      expect(ok.username).toMatch(/^bob-/);
    } finally {
      await backend.close();
    }
  });
});
