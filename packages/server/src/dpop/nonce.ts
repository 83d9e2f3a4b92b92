import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import type { Clock } from "@evergreen/db";

/** How long one nonce slot lasts; a nonce is accepted in its slot and the next (seconds). */
export const DPOP_NONCE_PERIOD_SECONDS = 300;

const SLOT_BYTES = 6;
const MAC_BYTES = 16;

/**
 * Stateless server nonces (RFC 9449 §8, §9): a nonce is the current time slot and an HMAC of
 * it under a server secret, so any process holding the secret can issue and check them with no
 * storage. They rotate every period; the current and the previous slot are accepted, so a
 * nonce handed out just before a rotation still works for at least one period.
 */
export class DpopNonces {
  readonly #key: Buffer;
  readonly #clock: Clock;
  readonly #period: number;
  constructor(
    secret: Buffer,
    clock: Clock = { now: () => new Date() },
    periodSeconds = DPOP_NONCE_PERIOD_SECONDS,
  ) {
    this.#key = Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), "evergreen dpop nonce", 32));
    this.#clock = clock;
    this.#period = periodSeconds;
  }

  /** A fresh nonce for the current slot. */
  issue(): string {
    return this.#forSlot(this.#slot()).toString("base64url");
  }

  isValid(nonce: string): boolean {
    const raw = Buffer.from(nonce, "base64url");
    if (raw.length !== SLOT_BYTES + MAC_BYTES || raw.toString("base64url") !== nonce) return false;
    const slot = raw.readUIntBE(0, SLOT_BYTES);
    const current = this.#slot();
    if (slot !== current && slot !== current - 1) return false;
    return timingSafeEqual(raw, this.#forSlot(slot));
  }

  #slot(): number {
    return Math.floor(this.#clock.now().getTime() / 1000 / this.#period);
  }

  #forSlot(slot: number): Buffer {
    const s = Buffer.alloc(SLOT_BYTES);
    s.writeUIntBE(slot, 0, SLOT_BYTES);
    const mac = createHmac("sha256", this.#key).update(s).digest().subarray(0, MAC_BYTES);
    return Buffer.concat([s, mac]);
  }
}
