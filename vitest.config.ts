import { defaultClientConditions, defaultServerConditions } from "vite";
import { defineConfig } from "vitest/config";

// Tests run the TypeScript sources, no build needed: "@evergreen/*" imports resolve to src/
// through each package's "@evergreen/source" export condition — in Vite's resolver, and in
// child processes (`node --import tsx …`) through NODE_OPTIONS.
const SOURCE_CONDITION = "@evergreen/source";
const nodeOptions = [process.env.NODE_OPTIONS, `--conditions=${SOURCE_CONDITION}`].filter(Boolean).join(" ");

export default defineConfig({
  resolve: { conditions: [SOURCE_CONDITION, ...defaultClientConditions] },
  ssr: { resolve: { conditions: [SOURCE_CONDITION, ...defaultServerConditions] } },
  test: {
    include: [
      "packages/*/test/**/*.test.ts",
      "test/**/*.test.ts",
      "bench/**/*.test.ts",
      "examples/*/test/**/*.test.ts",
    ],
    env: { NODE_OPTIONS: nodeOptions },
    // Budgets catch hangs, they do not measure speed: on a loaded 2-core machine opening an
    // embedded database or starting node + tsx takes tens of seconds. Behaviour that depends on
    // time is tested with the injected clock, never with these.
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Test files start their own servers and databases; two cores run two at a time well.
    maxWorkers: 2,
    reporters: ["default"],
  },
});
