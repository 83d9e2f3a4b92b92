#!/usr/bin/env node
// Adds the lockfile entries of Biome's per-platform binaries that npm leaves out when the
// registry it reaches serves only this machine's (`npm ci` then rejects the lockfile as out
// of sync on a fresh clone). npm keeps entries it finds in the lockfile, so ordinary
// `npm install` runs preserve them; regenerating the lockfile from scratch drops them —
// run this afterwards (test/lockfile.test.ts notices). Usage: node scripts/lockfile-platforms.mjs
import { readFileSync, writeFileSync } from "node:fs";

const file = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(file, "utf8"));
const biome = lock.packages["node_modules/@biomejs/biome"];
if (!biome) throw new Error("package-lock.json has no @biomejs/biome");

// os/cpu/libc as published in each package's package.json.
const PLATFORMS = {
  "cli-android-arm64": { os: ["android"], cpu: ["arm64"] },
  "cli-android-x64": { os: ["android"], cpu: ["x64"] },
  "cli-darwin-arm64": { os: ["darwin"], cpu: ["arm64"] },
  "cli-darwin-x64": { os: ["darwin"], cpu: ["x64"] },
  "cli-linux-arm64": { os: ["linux"], cpu: ["arm64"], libc: ["glibc"] },
  "cli-linux-arm64-musl": { os: ["linux"], cpu: ["arm64"], libc: ["musl"] },
  "cli-linux-x64": { os: ["linux"], cpu: ["x64"], libc: ["glibc"] },
  "cli-linux-x64-musl": { os: ["linux"], cpu: ["x64"], libc: ["musl"] },
  "cli-win32-arm64": { os: ["win32"], cpu: ["arm64"] },
  "cli-win32-x64": { os: ["win32"], cpu: ["x64"] },
};

let added = 0;
for (const name of Object.keys(biome.optionalDependencies ?? {})) {
  const key = `node_modules/${name}`;
  const platform = PLATFORMS[name.replace("@biomejs/", "")];
  if (lock.packages[key] || !platform) continue;
  const { os, cpu, libc } = platform;
  lock.packages[key] = {
    version: biome.optionalDependencies[name],
    cpu,
    dev: true,
    ...(libc ? { libc } : {}),
    license: biome.license,
    optional: true,
    os,
    engines: biome.engines,
  };
  added++;
}
// npm writes the entries sorted by path; keep that so later `npm install`s leave no diff.
const byPath = ([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : a > b ? 1 : 0);
lock.packages = Object.fromEntries(Object.entries(lock.packages).sort(byPath));
writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`package-lock.json: ${added} Biome platform entr${added === 1 ? "y" : "ies"} added`);
