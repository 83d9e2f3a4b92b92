import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "bench/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Test files start their own servers and databases; two cores run two at a time well.
    maxWorkers: 2,
    reporters: ["default"],
  },
});
