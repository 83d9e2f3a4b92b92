import type { Clock } from "../clock.ts";
import { RefreshFailedError, SessionExpiredError, TokenEndpointError } from "../errors.ts";
import { classifyFailure } from "./retry.ts";

/** The shortest wait between timer refreshes that keep bringing tokens already due, or failing. */
const MIN_TIMER_GAP = 5000;
const MAX_TIMER_GAP = 5 * 60_000;
/**
 * A timer that fired before the tokens were due (timers do fire early, by a fraction of a
 * millisecond) waits at least this long again, so a clock that keeps firing early cannot spin.
 */
const EARLY_REARM = 100;
/** Longer delays overflow `setTimeout` (browsers and Node then fire at once): wait this long and re-check. */
const MAX_DELAY = 2 ** 31 - 1;

/** What the timer refreshes: the session's refresh coordinator. */
export interface TimerTarget {
  /** Milliseconds until the tokens are due for a refresh (≤ 0: due now); undefined: nothing to refresh. */
  dueIn(): number | undefined;
  /** Re-reads the tokens and refreshes them if they are due (then true); throws what the refresh threw. */
  refreshIfDue(): Promise<boolean>;
}

/**
 * Refreshes ahead of expiry in the background. It backs off (5 s doubling to 5 min) while
 * refreshes keep bringing tokens that are already due (`expires_in` shorter than the round
 * trip, a skewed absolute expiry) or keep failing for a transient reason, and stops for good
 * only on a failure that retrying cannot fix, which it reports to `onFatal`.
 */
export class RefreshTimer {
  readonly #clock: Clock;
  readonly #target: TimerTarget;
  readonly #onFatal: (error: unknown) => void;
  #cancel: (() => void) | undefined;
  #backoff = 0;
  /** Monotonic time before which the timer does not refresh again (while backing off). */
  #retryAt = 0;
  #stopped = false;

  constructor(clock: Clock, target: TimerTarget, onFatal: (error: unknown) => void) {
    this.#clock = clock;
    this.#target = target;
    this.#onFatal = onFatal;
  }

  /**
   * (Re-)arms the timer for when the current tokens fall due, `atLeast` ms from now; disarms it
   * when there is nothing to refresh.
   */
  schedule(atLeast = 0): void {
    this.#cancel?.();
    this.#cancel = undefined;
    const dueIn = this.#target.dueIn();
    if (this.#stopped || dueIn === undefined) return;
    if (dueIn > 0) this.#backoff = this.#retryAt = 0; // good tokens: any back-off is over
    // Never a tight loop: while refreshes bring tokens already due, the timer waits the back-off.
    this.#cancel = this.#clock.setTimeout(
      () => {
        this.#cancel = undefined;
        void this.#fire();
      },
      Math.min(Math.max(dueIn, atLeast, this.#retryAt - this.#clock.monotonic()), MAX_DELAY),
    );
  }

  /** Waits longer (at least `atLeast` ms) before the next timer refresh. */
  backOff(atLeast = 0): void {
    this.#backoff = Math.min(Math.max(this.#backoff * 2, MIN_TIMER_GAP, atLeast), MAX_TIMER_GAP);
    this.#retryAt = this.#clock.monotonic() + this.#backoff;
  }

  /** Forgets the back-off (new tokens from a login). */
  reset(): void {
    this.#backoff = this.#retryAt = 0;
  }

  /** Disarms the timer for good. */
  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
    this.#cancel = undefined;
  }

  /** Re-arms on every path but one: a failure that retrying cannot fix stops the timer. */
  async #fire(): Promise<void> {
    let refreshed: boolean;
    try {
      refreshed = await this.#target.refreshIfDue();
    } catch (error) {
      // Expiry was already announced. A transient failure (network, 5xx, 429) is tried again
      // later, backing off; anything else (invalid_client, a malformed response) would fail the
      // same way every time: the timer stops (requests still refresh on demand) and says why.
      if (error instanceof SessionExpiredError || classifyFailure(error) === "expired") return;
      const cause = error instanceof RefreshFailedError ? error.cause : error;
      if (error instanceof RefreshFailedError || classifyFailure(error) === "transient") {
        this.backOff(cause instanceof TokenEndpointError ? cause.retryAfter : undefined);
        this.schedule();
      } else if (!this.#stopped) {
        this.#onFatal(error);
      }
      return;
    }
    // Refreshed: armed for the new tokens already, armed again here all the same. Not due yet
    // (the timer fired early, or a capped delay ran out): armed for when they are.
    this.schedule(refreshed ? 0 : EARLY_REARM);
  }
}
