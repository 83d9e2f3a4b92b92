/** The page both browser tabs load: the SDK on localStorage, driven from the test. */
import { createSession, indexedDBStorage, systemClock, webStorage } from "../../src/index.ts";

const params = new URLSearchParams(location.search);
const clientId = params.get("client") ?? "";
/** The test's time (real time plus its jumps), which the issuer runs on; the test moves it with `setOffset`. */
let offset = Number(params.get("offset") ?? 0);
const session = createSession({
  clock: {
    now: () => Date.now() + offset,
    monotonic: () => performance.now() + offset,
    setTimeout: systemClock.setTimeout,
  },
  issuer: location.origin,
  clientId,
  tokenEndpoint: `${location.origin}/token`,
  storage: webStorage(localStorage),
  autoRefresh: false,
});
const events: string[] = [];
session.on("refreshed", (event) => events.push(`refreshed:${event.source}`));
session.on("expired", () => events.push("expired"));

Object.assign(globalThis, {
  evergreen: {
    login: async (username: string, password: string) => {
      await session.loginWithPassword(username, password);
    },
    /** Fires `n` concurrent requests to /userinfo; resolves to their statuses. */
    call: async (n: number) => {
      const responses = await Promise.all(Array.from({ length: n }, () => session.fetch("/userinfo")));
      return responses.map((response) => response.status);
    },
    refreshToken: async () => (await session.getTokens())?.refreshToken,
    events: () => events,
    setOffset: (ms: number) => {
      offset = ms;
    },
    locks: () => typeof navigator.locks?.request === "function",
    /** Round-trips a value through the IndexedDB adapter. */
    indexedDB: async () => {
      const storage = indexedDBStorage({ database: "evergreen-test" });
      await storage.set("k", "stored in IndexedDB");
      const read = await storage.get("k");
      await storage.remove("k");
      return [read, await storage.get("k")];
    },
  },
});
