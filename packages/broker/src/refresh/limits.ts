/** A counting semaphore: at most `size` holders at once, the rest queue in order. */
export class Semaphore {
  #free: number;
  readonly #queue: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  async acquire(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#queue.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      if (next) next();
      else this.#free++;
    };
  }
}

/**
 * Per-provider limits on upstream calls in flight from this process (a provider's
 * max_concurrency is per process: N worker processes may make N times as many calls).
 */
export class ProviderLimits {
  readonly #byProvider = new Map<string, { size: number; sem: Semaphore }>();

  /** Waits for a slot of `provider` (unlimited when `max` is null); returns the release. */
  async acquire(provider: string, max: number | null): Promise<() => void> {
    if (max === null) return () => {};
    let entry = this.#byProvider.get(provider);
    if (!entry || entry.size !== max) {
      entry = { size: max, sem: new Semaphore(max) };
      this.#byProvider.set(provider, entry);
    }
    return entry.sem.acquire();
  }
}
