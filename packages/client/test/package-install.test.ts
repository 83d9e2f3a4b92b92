/**
 * The SDK as a stranger's app gets it: `npm pack`, installed from the tarball into an app outside
 * the repository, then imported by plain `node` (import and require), type-checked by `tsc`
 * (strict, exactOptionalPropertyTypes, NodeNext and Bundler resolution) and bundled by esbuild
 * for the browser. The app sees only the published files: no sources, no export condition.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { build, transform } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../../..");
const PACKAGE = resolve(import.meta.dirname, "..");
const TSC = createRequire(import.meta.url).resolve("typescript/bin/tsc");
// Without our "@evergreen/source" condition (vitest passes it to child processes): the app must
// work from the published files alone.
const env = { ...process.env, NODE_OPTIONS: "" };
const exec = (file: string, args: string[], cwd: string) =>
  promisify(execFile)(file, args, { cwd, env, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 });

// One login and one authorized request against a fake fetch: the SDK's public surface at work.
const USAGE_TS = `import { createSession, memoryStorage, type FetchLike, type TokenSet } from "@evergreen/client";

const seen: string[] = [];
const fakeFetch: FetchLike = async (input, init) => {
  const url = String(input instanceof Request ? input.url : input);
  if (url.endsWith("/token")) {
    const body = { access_token: "at-1", token_type: "Bearer", expires_in: 600, refresh_token: "rt-1" };
    return new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } });
  }
  seen.push(new Headers(init?.headers).get("authorization") ?? "none");
  return new Response("ok");
};

const session = createSession({
  clientId: "app",
  tokenEndpoint: "https://issuer.example/token",
  origins: ["https://api.example"],
  storage: memoryStorage(),
  autoRefresh: false,
  fetch: fakeFetch,
});
const tokens: TokenSet = await session.loginWithPassword("alice", "secret");
const response = await session.fetch("https://api.example/notes");
session.dispose();
console.log(JSON.stringify({ refreshToken: tokens.refreshToken, status: response.status, seen }));
`;
const EXPECTED = { refreshToken: "rt-1", status: 200, seen: ["Bearer at-1"] };

const USAGE_NODE_TS = `import { fileStorage } from "@evergreen/client/node";
import type { TokenStorage } from "@evergreen/client";

export const storage: TokenStorage = fileStorage({ path: "./tokens.json" });
`;

describe("@evergreen/client installed from its tarball", () => {
  let dir: string;
  let app: string;
  let tarballFiles: string[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "evergreen-install-"));
    app = join(dir, "app");
    mkdirSync(app);
    await exec(process.execPath, [TSC, "-b", join(PACKAGE, "tsconfig.build.json")], ROOT);
    const packed = await exec("npm", ["pack", "--json", "--pack-destination", dir], PACKAGE);
    const [info] = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    tarballFiles = info!.files.map((f) => f.path);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    // The SDK has no dependencies, so this needs no registry.
    await exec(
      "npm",
      ["install", join(dir, info!.filename), "--offline", "--ignore-scripts", "--no-audit", "--no-fund"],
      app,
    );
    writeFileSync(join(app, "usage.ts"), USAGE_TS);
    writeFileSync(join(app, "usage-node.ts"), USAGE_NODE_TS);
  }, 300_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("ships the build, README and LICENSE: no sources or tests, no dependencies", () => {
    expect(tarballFiles).toEqual(
      expect.arrayContaining(["LICENSE", "README.md", "dist/index.js", "dist/index.d.ts"]),
    );
    expect(
      tarballFiles.filter(
        (f) => !f.startsWith("dist/") && !["LICENSE", "README.md", "package.json"].includes(f),
      ),
    ).toEqual([]);
    expect(tarballFiles.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
    const manifest = JSON.parse(
      readFileSync(join(app, "node_modules/@evergreen/client/package.json"), "utf8"),
    );
    expect(Object.keys(manifest.dependencies ?? {})).toEqual([]);
  });

  it("runs in plain node with import", async () => {
    // The same program as plain JavaScript (types stripped, imports left as they are).
    const { code: js } = await transform(USAGE_TS, { loader: "ts", format: "esm", target: "es2022" });
    writeFileSync(join(app, "main.mjs"), js);
    const { stdout } = await exec(process.execPath, ["main.mjs"], app);
    expect(JSON.parse(stdout)).toEqual(EXPECTED);
  });

  it("loads with require() where Node supports require(esm) (20.19+, 22.12+)", async () => {
    writeFileSync(
      join(app, "main.cjs"),
      `const sdk = require("@evergreen/client");
const node = require("@evergreen/client/node");
console.log(JSON.stringify([typeof sdk.createSession, typeof sdk.discover, typeof node.fileStorage]));`,
    );
    const supported = (process.features as { require_module?: boolean }).require_module === true;
    const run = exec(process.execPath, ["main.cjs"], app);
    if (!supported) return void (await expect(run).rejects.toThrow());
    expect(JSON.parse((await run).stdout)).toEqual(["function", "function", "function"]);
  });

  it.each([
    ["NodeNext", { module: "NodeNext", moduleResolution: "NodeNext" }],
    ["Bundler", { module: "ESNext", moduleResolution: "Bundler" }],
  ])(
    "type-checks with strict and exactOptionalPropertyTypes under %s resolution",
    async (name, resolution) => {
      const config = {
        compilerOptions: {
          ...resolution,
          target: "ES2022",
          lib: ["ES2022", "DOM"],
          types: [],
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          skipLibCheck: false,
          noEmit: true,
        },
        files: ["usage.ts", "usage-node.ts"],
      };
      writeFileSync(join(app, `tsconfig.${name}.json`), JSON.stringify(config));
      const result = await exec(process.execPath, [TSC, "-p", `tsconfig.${name}.json`], app).then(
        () => "",
        (error: { stdout?: string }) => error.stdout ?? String(error),
      );
      expect(result).toBe("");
    },
  );

  it("bundles for the browser with esbuild, with nothing from Node in it", async () => {
    const result = await build({
      absWorkingDir: app,
      entryPoints: ["usage.ts"],
      bundle: true,
      platform: "browser",
      format: "esm",
      target: "es2022",
      write: false,
      logLevel: "silent",
    });
    const code = result.outputFiles[0]!.text;
    expect(code).not.toMatch(/from\s*"node:|require\("node:/);
    // The browser bundle is self-contained: it runs anywhere with fetch, Response and Headers.
    writeFileSync(join(app, "bundle.mjs"), code);
    const { stdout } = await exec(process.execPath, ["bundle.mjs"], app);
    expect(JSON.parse(stdout)).toEqual(EXPECTED);
  });
});
