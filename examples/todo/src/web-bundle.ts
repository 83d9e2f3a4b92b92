import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const WEB = new URL("../web/", import.meta.url);

export interface WebAssets {
  html: string;
  script: string;
}

/**
 * Bundles the web app for the browser at start: `@evergreen/client` from its sources (the
 * `@evergreen/source` condition), so the demo needs no build step of its own.
 */
export async function bundleWebApp(): Promise<WebAssets> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL("app.ts", WEB))],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    conditions: ["@evergreen/source"],
    minify: true,
    write: false,
    logLevel: "silent",
  });
  return {
    html: await readFile(new URL("index.html", WEB), "utf8"),
    script: result.outputFiles[0]?.text ?? "",
  };
}
