/**
 * Prints the minified + gzipped size of the SDK as a browser bundle would include it.
 * Run: npm run size -w @evergreen/client
 */
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));

async function measure(entry: string, platform: "browser" | "node") {
  const result = await build({
    entryPoints: [`${root}/${entry}`],
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

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`;
for (const [label, entry, platform] of [
  ["@evergreen/client (everything)", "src/index.ts", "browser"],
  ["@evergreen/client/node (file storage + lock)", "src/node/index.ts", "node"],
] as const) {
  const { minified, gzipped } = await measure(entry, platform);
  console.log(`${label}: ${kb(minified)} minified, ${kb(gzipped)} minified+gzipped`);
}
