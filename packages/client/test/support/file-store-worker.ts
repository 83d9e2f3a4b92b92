/**
 * One of the "two Node processes sharing one file store": waits until `startAt`, fires
 * concurrent requests through a session on the shared encrypted file, prints the statuses.
 * Usage: node --import tsx file-store-worker.ts <json options>
 */
import { createSession } from "../../src/index.ts";
import { fileStorage } from "../../src/node/index.ts";

const options = JSON.parse(process.argv[2] ?? "{}") as {
  path: string;
  key: string;
  issuer: string;
  clientId: string;
  tokenEndpoint: string;
  resource: string;
  startAt: number;
  requests: number;
};
const session = createSession({
  issuer: options.issuer,
  clientId: options.clientId,
  tokenEndpoint: options.tokenEndpoint,
  storage: fileStorage({ path: options.path, key: options.key }),
  autoRefresh: false,
});
await session.getTokens(); // read the store before the race starts
await new Promise((resolve) => setTimeout(resolve, Math.max(0, options.startAt - Date.now())));
const responses = await Promise.all(
  Array.from({ length: options.requests }, () => session.fetch(options.resource)),
);
process.stdout.write(JSON.stringify({ statuses: responses.map((r) => r.status) }));
session.dispose();
