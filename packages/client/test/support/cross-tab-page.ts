/**
 * The page of the cross-tab race test: the SDK on localStorage, refreshing at a legacy JSON
 * endpoint that does not rotate (`POST /refresh {refresh} → {access, expires_in}`), so a second
 * refresh by a tab that read stale tokens is a second request, not a grace replay.
 */
import { createSession, jsonProfile, systemClock, webStorage } from "../../src/index.ts";

/** The test's time: real time plus the jumps the test makes with `setOffset`. */
let offset = 0;
const session = createSession({
  clock: {
    now: () => Date.now() + offset,
    monotonic: () => performance.now() + offset,
    setTimeout: systemClock.setTimeout,
  },
  tokenEndpoint: `${location.origin}/refresh`,
  clientId: "cross-tab",
  storageKey: "cross-tab",
  storage: webStorage(localStorage),
  refresh: jsonProfile({ request: "refresh", response: { accessToken: "access", expiresIn: "expires_in" } }),
  autoRefresh: false,
});
const events: string[] = [];
session.on("refreshed", (event) => events.push(`${event.source}`));

Object.assign(globalThis, {
  crossTab: {
    signIn: async () => {
      await session.setTokens({
        accessToken: "at-0",
        tokenType: "Bearer",
        refreshToken: "rt-legacy",
        expiresIn: 60,
        raw: {},
      });
    },
    /** `n` concurrent callers wanting an access token; resolves to the tokens they got. */
    tokens: (n: number) => Promise.all(Array.from({ length: n }, () => session.getAccessToken())),
    /** The `refreshed` events since the last call, by source. */
    takeEvents: () => events.splice(0),
    setOffset: (ms: number) => {
      offset = ms;
    },
  },
});
