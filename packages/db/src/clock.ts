/**
 * The one source of "now" in Evergreen. Every expiry decision (access token exp, idle and
 * absolute refresh lifetimes, grace windows, leases) reads it, and SQL receives it as a
 * parameter instead of calling now(), so tests move time instead of sleeping.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that only moves when told to; for tests. */
export class ManualClock implements Clock {
  #ms: number;
  constructor(start: Date | number = Date.now()) {
    this.#ms = typeof start === "number" ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.#ms);
  }
  /** Moves the clock forward by `seconds` (may be fractional or negative). */
  advance(seconds: number): void {
    this.#ms += seconds * 1000;
  }
  set(at: Date | number): void {
    this.#ms = typeof at === "number" ? at : at.getTime();
  }
}
