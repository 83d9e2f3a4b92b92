import type { Clock, Database } from "@evergreen/db";
import type { FastifyBaseLogger } from "fastify";
import type { ClientRegistry } from "./clients.ts";
import type { ServerConfig } from "./config.ts";
import type { TokenVerifier } from "./guard/verify.ts";
import type { HashingGate } from "./crypto/hashing-gate.ts";
import type { DpopNonces } from "./dpop/nonce.ts";
import type { DpopReplayStore } from "./dpop/replay-store.ts";
import type { KeyRing } from "./crypto/secret-box.ts";
import type { SigningKeyStore } from "./keys/signing-keys.ts";
import type { IssuerMetrics } from "./metrics.ts";
import type { RateLimiter } from "./rate-limit/limiter.ts";

/** What every route and grant needs, built once per server and passed explicitly. */
export interface IssuerContext {
  config: ServerConfig;
  db: Database;
  clock: Clock;
  ring: KeyRing;
  keys: SigningKeyStore;
  clients: ClientRegistry;
  limiter: RateLimiter;
  /** The semaphore every password verification at login passes through. */
  hashing: HashingGate;
  metrics: IssuerMetrics;
  log: FastifyBaseLogger;
  /** The same verification a resource server uses, with keys from the local store. */
  verifyAccessToken: TokenVerifier;
  /** DPoP proof `jti`s seen (Redis when configured) and the server's nonces. */
  dpop: { replay: DpopReplayStore; nonces: DpopNonces };
}
