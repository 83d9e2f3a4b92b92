/**
 * A Node process that creates a session and then has nothing more to do: it must exit on its
 * own. Usage: node --import tsx idle-session.ts <memory|shared>
 * `shared`: a store marked shared across realms, so the session opens its BroadcastChannel.
 */
import { createSession, memoryStorage, type TokenStorage } from "../../src/index.ts";

const storage: TokenStorage | undefined =
  process.argv[2] === "shared" ? { ...memoryStorage(), shared: true } : undefined;
const session = createSession({ tokenEndpoint: "http://127.0.0.1:9/token", clientId: "idle", storage });
// A stored session with a refresh timer pending an hour from now: that timer must not hold the process either.
await session.setTokens({
  accessToken: "at",
  refreshToken: "rt",
  tokenType: "Bearer",
  expiresIn: 3600,
  raw: {},
});
process.stdout.write("created\n");
