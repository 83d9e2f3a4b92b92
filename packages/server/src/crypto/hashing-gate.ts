import { OAuthError } from "../errors.ts";

/**
 * A semaphore around password hashing: at most `concurrency` scrypt runs at once, at most
 * `queueLimit` waiting. scrypt is the one request cost an attacker can multiply cheaply, so
 * beyond that the server answers 503 `temporarily_unavailable` with Retry-After at once instead
 * of letting every login (and the libuv threadpool) queue behind a flood.
 */
export class HashingGate {
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  readonly concurrency: number;
  readonly queueLimit: number;

  constructor(concurrency: number, queueLimit: number) {
    this.concurrency = concurrency;
    this.queueLimit = queueLimit;
  }

  /** How many callers wait for a slot (tests hold the gate and watch the queue fill). */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** Takes a slot (waiting for one if the queue has room); resolves to its release function. */
  async acquire(): Promise<() => void> {
    if (this.#active < this.concurrency) {
      this.#active++;
    } else {
      if (this.#waiting.length >= this.queueLimit) {
        throw new OAuthError("temporarily_unavailable", "the server is busy; retry later", {
          "Retry-After": "1",
        });
      }
      // A released slot passes straight to the first waiter (#active stays counted).
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting.shift();
      if (next) next();
      else this.#active--;
    };
  }

  /** Runs `fn` holding a slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
