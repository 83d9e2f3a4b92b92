/**
 * One of the "two Node processes sharing one file store": reads the store, prints "ready", waits
 * for a line on stdin (so both processes start the race together however slowly they booted),
 * fires concurrent requests through a session on the shared encrypted file, prints the statuses.
 * Its clock is real time plus `offset`: the test's time, which the issuer runs on.
 * Usage: node --import tsx file-store-worker.ts <json options>
 */
import { createSession, systemClock } from "../../src/index.ts";
import { fileStorage } from "../../src/node/index.ts";

const options = JSON.parse(process.argv[2] ?? "{}") as {
  path: string;
  key: string;
  issuer: string;
  clientId: string;
  tokenEndpoint: string;
  resource: string;
  offset: number;
  requests: number;
};
const session = createSession({
  issuer: options.issuer,
  clientId: options.clientId,
  tokenEndpoint: options.tokenEndpoint,
  origins: [options.resource],
  storage: fileStorage({ path: options.path, key: options.key }),
  autoRefresh: false,
  clock: {
    now: () => Date.now() + options.offset,
    monotonic: () => performance.now() + options.offset,
    setTimeout: systemClock.setTimeout,
  },
});
await session.getTokens(); // read the store before the race starts
process.stdout.write("ready\n");
await new Promise((resolve) => process.stdin.once("data", resolve));
process.stdin.pause();
const responses = await Promise.all(
  Array.from({ length: options.requests }, () => session.fetch(options.resource)),
);
process.stdout.write(JSON.stringify({ statuses: responses.map((r) => r.status) }));
session.dispose();
