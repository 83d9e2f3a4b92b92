/**
 * Prints the minified + gzipped size of the SDK as a bundler would include it.
 * Run: npm run size -w @evergreen/client
 */
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));

async function measure(contents: string, platform: "browser" | "node") {
  const result = await build({
    stdin: { contents, resolveDir: root, loader: "ts" },
    bundle: true,
    minify: true,
    format: "esm",
    platform,
    target: "es2022",
    write: false,
  });
  const code = result.outputFiles[0]?.contents ?? new Uint8Array();
  return { minified: code.byteLength, gzipped: gzipSync(code, { level: 9 }).byteLength };
}

const kB = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`;
const entries: [string, string, "browser" | "node"][] = [
  ["everything in @evergreen/client", 'export * from "./src/index.ts";', "browser"],
  [
    "a browser app: createSession + webStorage",
    'export { createSession, webStorage } from "./src/index.ts";',
    "browser",
  ],
  ["@evergreen/client/node (file storage + file lock)", 'export * from "./src/node/index.ts";', "node"],
];
for (const [label, contents, platform] of entries) {
  const { minified, gzipped } = await measure(contents, platform);
  console.log(`${label}: ${kB(minified)} minified, ${kB(gzipped)} minified+gzipped`);
}
