import type { Clock } from "./clock.ts";

/** Re-anchor only when the server's Date disagrees by more than this (Date has 1 s resolution). */
const REANCHOR_THRESHOLD_MS = 1500;

/**
 * The issuer's idea of "now", so that a device clock that is minutes off does not matter.
 *
 * It is anchored on a `Date` response header (or the device clock until one is seen) and then
 * advances with the monotonic clock. Where the wall clock advanced further than the monotonic
 * clock (a suspended laptop: CLOCK_MONOTONIC stops during sleep) the larger advance wins, so
 * after a wake-up tokens are treated as older, never younger, than they are.
 */
export class ServerTime {
  readonly #clock: Clock;
  #server: number;
  #wall: number;
  #mono: number;

  constructor(clock: Clock) {
    this.#clock = clock;
    this.#wall = clock.now();
    this.#server = this.#wall;
    this.#mono = clock.monotonic();
  }

  /** The estimated server time, epoch milliseconds. */
  now(): number {
    const byMono = this.#clock.monotonic() - this.#mono;
    const byWall = this.#clock.now() - this.#wall;
    return this.#server + Math.max(byMono, byWall);
  }

  /** Offset of the device clock from the server clock (positive: device is ahead). */
  get deviceOffset(): number {
    return this.#clock.now() - this.now();
  }

  /** Learns the server clock from a response's `Date` header (epoch milliseconds). */
  learn(date: number | undefined): void {
    if (date === undefined || Number.isNaN(date)) return;
    // Date is truncated to the second: the server's clock was somewhere in [date, date + 1 s).
    const server = date + 500;
    if (Math.abs(server - this.now()) < REANCHOR_THRESHOLD_MS) return;
    this.#server = server;
    this.#wall = this.#clock.now();
    this.#mono = this.#clock.monotonic();
  }
}
