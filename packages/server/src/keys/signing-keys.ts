import {
  type KeyObject,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
} from "node:crypto";
import type { Clock, Database } from "@evergreen/db";
import { type KeyRing, open, seal } from "../crypto/secret-box.ts";
import { keyQueries } from "../queries.ts";
import { isUuid } from "../uuid.ts";

export type SigningAlg = "EdDSA" | "ES256";

export interface SigningKey {
  kid: string;
  alg: SigningAlg;
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: Record<string, unknown>;
  createdAt: Date;
  retiredAt: Date | null;
  deleteAfter: Date | null;
}

interface KeyRow {
  kid: string;
  alg: SigningAlg;
  public_jwk: Record<string, unknown> | string;
  private_key: Buffer;
  created_at: Date;
  retired_at: Date | null;
  delete_after: Date | null;
}

// Another process may rotate keys; re-reading this often bounds how long we sign with a
// retired key and lets an unknown kid be looked up without hammering the database.
const RELOAD_INTERVAL_MS = 30_000;
const MISS_RELOAD_MIN_MS = 2_000;

/**
 * Signing keys live in the database (private halves sealed with the encryption key ring)
 * and are cached here as KeyObjects, imported once: key import per request would cost more
 * than the signature itself.
 */
export class SigningKeyStore {
  #keys = new Map<string, SigningKey>();
  #current: SigningKey | undefined;
  #loadedAt = 0;
  #lastMissReload = 0;

  private readonly db: Database;
  private readonly ring: KeyRing;
  private readonly clock: Clock;
  private readonly alg: SigningAlg;
  constructor(db: Database, ring: KeyRing, clock: Clock, alg: SigningAlg = "EdDSA") {
    this.db = db;
    this.ring = ring;
    this.clock = clock;
    this.alg = alg;
  }

  /** Loads keys, generating the first one if there is none (once, across processes). */
  async init(): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(keyQueries.lockKeys());
      const { rows } = await tx.query<{ n: number }>(keyQueries.countActive());
      if ((rows[0]?.n ?? 0) === 0) await this.#insertNew(tx);
    });
    await this.reload();
  }

  async reload(): Promise<void> {
    const { rows } = await this.db.query<KeyRow>(keyQueries.listKeys({ now: this.clock.now() }));
    const next = new Map<string, SigningKey>();
    for (const row of rows) next.set(row.kid, this.#decode(row));
    this.#keys = next;
    this.#current = [...next.values()]
      .filter((k) => !k.retiredAt)
      .sort((a, b) => +b.createdAt - +a.createdAt)[0];
    this.#loadedAt = Date.now();
  }

  /** The key that signs new tokens. */
  current(): SigningKey {
    if (Date.now() - this.#loadedAt > RELOAD_INTERVAL_MS) void this.reload().catch(() => {});
    if (!this.#current) throw new Error("no active signing key; run init()");
    return this.#current;
  }

  /**
   * A key by id for verification. An unknown id triggers a reload, at most one every 2 s
   * whatever ids arrive; a process that only verifies still re-reads every 30 s, so a stream
   * of made-up ids cannot keep it from learning a rotated key for longer than that.
   */
  async byKid(kid: string): Promise<SigningKey | undefined> {
    if (Date.now() - this.#loadedAt > RELOAD_INTERVAL_MS) await this.reload().catch(() => {});
    const hit = this.#keys.get(kid);
    if (hit) return hit;
    // Our key ids are UUIDs; anything else cannot be in the database.
    if (!isUuid(kid)) return undefined;
    if (Date.now() - this.#lastMissReload < MISS_RELOAD_MIN_MS) return undefined;
    this.#lastMissReload = Date.now();
    await this.reload();
    return this.#keys.get(kid);
  }

  /** Keys whose public halves are published: active ones and retired ones still in overlap. */
  jwks(): { keys: Record<string, unknown>[] } {
    const now = this.clock.now();
    return {
      keys: [...this.#keys.values()]
        .filter((k) => !k.deleteAfter || k.deleteAfter > now)
        .map((k) => k.publicJwk),
    };
  }

  /**
   * Starts signing with a fresh key. The previous keys stop signing but stay published for
   * `overlapSeconds` (at least the longest access-token lifetime), so tokens they signed keep
   * verifying until they expire.
   */
  async rotate(overlapSeconds: number): Promise<SigningKey> {
    const now = this.clock.now();
    const kid = await this.db.transaction(async (tx) => {
      await tx.query(keyQueries.lockKeys());
      await tx.query(
        keyQueries.retireActive({ now, delete_after: new Date(now.getTime() + overlapSeconds * 1000) }),
      );
      return this.#insertNew(tx);
    });
    await this.reload();
    return this.#keys.get(kid)!;
  }

  async #insertNew(tx: Pick<Database, "query">): Promise<string> {
    const kid = randomUUID();
    const { privateKey, publicKey } =
      this.alg === "EdDSA"
        ? generateKeyPairSync("ed25519")
        : generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = { ...publicKey.export({ format: "jwk" }), kid, alg: this.alg, use: "sig" };
    const pkcs8 = privateKey.export({ format: "der", type: "pkcs8" });
    await tx.query(
      keyQueries.insertKey({
        kid,
        alg: this.alg,
        public_jwk: JSON.stringify(jwk),
        private_key: seal(this.ring, pkcs8, Buffer.from(kid)),
        now: this.clock.now(),
      }),
    );
    return kid;
  }

  #decode(row: KeyRow): SigningKey {
    const pkcs8 = open(this.ring, row.private_key, Buffer.from(row.kid));
    const privateKey = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
    return {
      kid: row.kid,
      alg: row.alg,
      privateKey,
      publicKey: createPublicKey(privateKey),
      publicJwk: typeof row.public_jwk === "string" ? JSON.parse(row.public_jwk) : row.public_jwk,
      createdAt: row.created_at,
      retiredAt: row.retired_at,
      deleteAfter: row.delete_after,
    };
  }
}
