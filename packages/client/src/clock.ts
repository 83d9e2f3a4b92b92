/**
 * The one source of time in the SDK. Inject your own (see the tests' ManualClock) so that
 * tests move time instead of sleeping.
 */
export interface Clock {
  /** Wall-clock time in epoch milliseconds (the device clock; may be wrong or jump). */
  now(): number;
  /** Milliseconds on a clock that never goes backwards (performance.now()). */
  monotonic(): number;
  /** Calls `fn` after `ms`; returns a function that cancels it. Must not keep a Node process alive. */
  setTimeout(fn: () => void, ms: number): () => void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(fn, ms) {
    const timer = setTimeout(fn, Math.max(0, ms)) as unknown as { unref?: () => void };
    timer.unref?.();
    return () => clearTimeout(timer as unknown as number);
  },
};

/** Resolves after `ms` on `clock`, or early when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const cancel = clock.setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      cancel();
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
