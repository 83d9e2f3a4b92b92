/**
 * Writes `count` keys `<prefix><i>` one after another into a shared file store, starting at
 * `startAt` (so that two processes overlap). Usage: node --import tsx file-writer-worker.ts <json>
 */
import { fileStorage } from "../../src/node/index.ts";

const options = JSON.parse(process.argv[2] ?? "{}") as {
  path: string;
  key: string;
  prefix: string;
  count: number;
  startAt: number;
};
const storage = fileStorage({ path: options.path, key: options.key });
await storage.get("warm-up"); // derive the key before the race starts
await new Promise((resolve) => setTimeout(resolve, Math.max(0, options.startAt - Date.now())));
for (let i = 0; i < options.count; i++) await storage.set(`${options.prefix}${i}`, String(i));
