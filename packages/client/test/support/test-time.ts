import type { Clock } from "../../src/index.ts";

interface Timer {
  at: number;
  fn: () => void;
  id: number;
}

/**
 * One time for the issuer and the sessions of an end-to-end test: real time plus the jumps the
 * test makes. Tokens live for a minute and tests jump past their expiry instead of sleeping, so
 * a busy machine (seconds between two steps) cannot make a token expire early, and nothing
 * waits in real time for a token to age. Timers fire when real time or a jump reaches them.
 */
export class TestTime {
  #offset = 0;
  #timers: Timer[] = [];
  #nextId = 0;
  #real: ReturnType<typeof setTimeout> | undefined;

  /** The issuer's clock (`@evergreen/db`'s Clock) on this time. */
  readonly issuer = { now: () => new Date(this.now()) };

  /** How far the jumps have moved this time ahead of real time (ms). */
  get offset(): number {
    return this.#offset;
  }
  now(): number {
    return Date.now() + this.#offset;
  }
  monotonic(): number {
    return performance.now() + this.#offset;
  }
  /** The HTTP `Date` header the issuer would send on this time. */
  date(): string {
    return new Date(this.now()).toUTCString();
  }

  /**
   * A client clock on this time. `skew` sets its wall clock off (a device clock that is wrong);
   * `drift` makes its timers fire late (> 0) or early (< 0).
   */
  device({ skew = 0, drift = 0 }: { skew?: number; drift?: number } = {}): Clock {
    return {
      now: () => this.now() + skew,
      monotonic: () => this.monotonic(),
      setTimeout: (fn, ms) => this.#setTimeout(fn, ms + drift),
    };
  }

  /** Moves time forward by `ms`, firing the timers it passes. */
  jump(ms: number): void {
    this.#offset += ms;
    this.#run();
  }

  /** Moves time to exactly when the next timer fires, and fires it. Returns false if none is pending. */
  jumpToNextTimer(): boolean {
    const next = this.#timers.reduce<Timer | undefined>((a, b) => (a && a.at <= b.at ? a : b), undefined);
    if (!next) return false;
    this.#offset += Math.max(0, next.at - this.monotonic());
    this.#run();
    return true;
  }

  get pendingTimers(): number {
    return this.#timers.length;
  }

  #setTimeout(fn: () => void, ms: number): () => void {
    const id = this.#nextId++;
    this.#timers.push({ at: this.monotonic() + Math.max(0, ms), fn, id });
    this.#arm();
    return () => {
      this.#timers = this.#timers.filter((timer) => timer.id !== id);
      this.#arm();
    };
  }

  /** Fires every timer that is due, earliest first. */
  #run(): void {
    for (;;) {
      const now = this.monotonic();
      const due = this.#timers.filter((timer) => timer.at <= now).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((timer) => timer !== due);
      due.fn();
    }
    this.#arm();
  }

  /** One real timer for the earliest pending one (unref'd: it never holds the process). */
  #arm(): void {
    if (this.#real) clearTimeout(this.#real);
    this.#real = undefined;
    const at = Math.min(...this.#timers.map((timer) => timer.at));
    if (!Number.isFinite(at)) return;
    this.#real = setTimeout(() => this.#run(), Math.min(Math.max(0, at - this.monotonic()), 2 ** 31 - 1));
    (this.#real as { unref?: () => void }).unref?.();
  }
}
