import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "bench/**/*.test.ts"],
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
