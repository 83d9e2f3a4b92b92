/** A counting semaphore: at most `size` holders at once, the rest queue in order. */
export class Semaphore {
  #free: number;
  readonly #queue: (() => void)[] = [];
  constructor(size: number) {
    this.#free = size;
  }
  /** Free places minus holders still queued: how many more could start now (negative when backed up). */
  get headroom(): number {
    return this.#free - this.#queue.length;
  }
  async acquire(): Promise<() => void> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#queue.push(resolve));
    return this.#releaser();
  }
  /** Takes a place only if one is free now (nobody queued); null otherwise. */
  tryAcquire(): (() => void) | null {
    if (this.headroom <= 0) return null;
    this.#free--;
    return this.#releaser();
  }
  #releaser(): () => void {
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
 * It also remembers each provider's limit as last seen, so the worker can keep connections of a
 * saturated provider unclaimed instead of letting them wait in its own slots.
 */
export class ProviderLimits {
  readonly #byProvider = new Map<string, { size: number | null; sem: Semaphore | null }>();

  /** Waits for a slot of `provider` (unlimited when `max` is null); returns the release. */
  async acquire(provider: string, max: number | null): Promise<() => void> {
    const { sem } = this.#entry(provider, max);
    return sem ? sem.acquire() : () => {};
  }

  /**
   * Takes a slot of `provider` only if one is free now (null when saturated); a provider whose
   * limit is unknown or null is not limited.
   */
  tryAcquire(provider: string): (() => void) | null {
    const sem = this.#byProvider.get(provider)?.sem;
    return sem ? sem.tryAcquire() : () => {};
  }

  /** Records a provider's limit (as `acquire` would) without taking a slot. */
  configure(provider: string, max: number | null): void {
    this.#entry(provider, max);
  }

  /** Whether `provider`'s limit has been seen by this process. */
  knows(provider: string): boolean {
    return this.#byProvider.has(provider);
  }

  /** How many more calls of `provider` could start now; Infinity when it has no known limit. */
  headroom(provider: string): number {
    return this.#byProvider.get(provider)?.sem?.headroom ?? Number.POSITIVE_INFINITY;
  }

  /** Providers with no free slot in this process: a worker should not claim their connections. */
  saturated(): string[] {
    return [...this.#byProvider]
      .filter(([, e]) => e.sem !== null && e.sem.headroom <= 0)
      .map(([name]) => name);
  }

  #entry(provider: string, max: number | null): { size: number | null; sem: Semaphore | null } {
    let entry = this.#byProvider.get(provider);
    if (!entry || entry.size !== max) {
      entry = { size: max, sem: max === null ? null : new Semaphore(max) };
      this.#byProvider.set(provider, entry);
    }
    return entry;
  }
}
