import type { Clock } from "../../src/index.ts";

/** A clock that moves only when told to; timers fire as it passes them. */
export class ManualClock implements Clock {
  #wall: number;
  #mono = 1000;
  #timers: { at: number; fn: () => void; id: number }[] = [];
  #nextId = 0;

  constructor(wall = Date.UTC(2026, 0, 1)) {
    this.#wall = wall;
  }
  now() {
    return this.#wall;
  }
  monotonic() {
    return this.#mono;
  }
  setTimeout(fn: () => void, ms: number) {
    const id = this.#nextId++;
    this.#timers.push({ at: this.#mono + Math.max(0, ms), fn, id });
    return () => {
      this.#timers = this.#timers.filter((timer) => timer.id !== id);
    };
  }
  get pendingTimers() {
    return this.#timers.length;
  }
  /** Moves the wall clock only (a device clock being set), not elapsed time. */
  jumpWall(ms: number) {
    this.#wall += ms;
  }
  /** Lets `ms` pass without firing timers (time spent inside an awaited call); the next `advance` fires them. */
  pass(ms: number) {
    this.#wall += ms;
    this.#mono += ms;
  }
  /** Moves time forward by `ms`, firing due timers in order and letting promises run between. */
  async advance(ms: number) {
    const target = this.#mono + ms;
    for (;;) {
      await flush();
      const due = this.#timers.filter((timer) => timer.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((timer) => timer !== due);
      this.#wall += due.at - this.#mono;
      this.#mono = due.at;
      due.fn();
    }
    this.#wall += target - this.#mono;
    this.#mono = target;
    await flush();
  }
  /** Advances in steps until `promise` settles (for code that sleeps between retries). */
  async settle<T>(promise: Promise<T>, step = 250, limit = 600_000): Promise<T> {
    let done = false;
    const tracked = promise.finally(() => {
      done = true;
    });
    tracked.catch(() => undefined);
    for (let spent = 0; !done && spent < limit; spent += step) await this.advance(step);
    return tracked;
  }
}

export async function flush() {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}
