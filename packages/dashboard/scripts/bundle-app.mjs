// Bundles the browser app (app/) into dist/app/: one script and one stylesheet, no external
// assets, so the page's Content-Security-Policy can say 'self' for everything. Part of
// `npm run build` (root), so `npm start` serves a fresh bundle with no extra step.
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = process.argv[2] ?? join(root, "dist", "app");
await mkdir(out, { recursive: true });
await build({
  entryPoints: [join(root, "app", "main.ts")],
  outfile: join(out, "app.js"),
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: false,
  legalComments: "none",
  // The client SDK from its sources: no build of it is needed first.
  conditions: ["@evergreen/source"],
  logLevel: "warning",
});
await copyFile(join(root, "app", "index.html"), join(out, "index.html"));
await copyFile(join(root, "app", "app.css"), join(out, "app.css"));
