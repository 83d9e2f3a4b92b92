#!/usr/bin/env node
// Runs the compiled CLI. In a clone of the repository, `npm run build` (or `npm start`) writes ../dist.
try {
  await import("../dist/main.js");
} catch (error) {
  if (error?.code !== "ERR_MODULE_NOT_FOUND" || !String(error.message).includes("dist/main.js")) throw error;
  process.stderr.write("evergreen: not built yet; run `npm run build` in the repository first\n");
  process.exitCode = 1;
}
