import type { BrokerContext } from "../context.ts";
import { type ClaimedRow, connectionQueries, run } from "../queries.ts";
import { refreshClaimed } from "../refresh/attempt.ts";
import { Semaphore } from "../refresh/limits.ts";
import { dispatchWebhooks } from "../webhooks/dispatcher.ts";

/**
 * The refresh worker. Any number run against one database, with no leader: each round claims
 * up to `batch` due connections (SKIP LOCKED, fenced lease) and refreshes them with at most
 * `concurrency` upstream calls in flight, then sends due webhooks. It sleeps `pollMs` between
 * rounds unless a `due` notification wakes it, and goes straight on while work remains.
 */
export class BrokerWorker {
  readonly #ctx: BrokerContext;
  readonly #slots: Semaphore;
  #running = false;
  #loop?: Promise<void>;
  #wake?: () => void;
  #unsubscribe?: () => void;

  constructor(ctx: BrokerContext) {
    this.#ctx = ctx;
    this.#slots = new Semaphore(ctx.config.concurrency);
  }

  /** One round: claim due connections and refresh them; returns how many were claimed. */
  async round(): Promise<number> {
    const { ctx } = { ctx: this.#ctx };
    const now = ctx.clock.now();
    const { rows } = await run<ClaimedRow>(
      ctx.db,
      connectionQueries.claimDue({
        now,
        leaseUntil: new Date(now.getTime() + ctx.config.leaseMs),
        owner: ctx.owner,
        limit: ctx.config.batch,
      }),
    );
    await Promise.all(
      rows.map(async (row) => {
        const release = await this.#slots.acquire();
        try {
          await refreshClaimed(ctx, row);
        } catch (err) {
          // The database went away mid-attempt: the lease lapses and the intent tells the next claimer.
          ctx.log.error(
            { connection: row.id, err: { message: String((err as Error)?.message) } },
            "broker: refresh attempt failed",
          );
        } finally {
          release();
        }
      }),
    );
    return rows.length;
  }

  /** Starts the loop in the background. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#unsubscribe = this.#ctx.notifier.onDue(() => this.#wake?.());
    this.#loop = this.#run();
  }

  /** Stops after the current round (in-flight refreshes finish and are written). */
  async stop(): Promise<void> {
    this.#running = false;
    this.#unsubscribe?.();
    this.#wake?.();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { ctx } = { ctx: this.#ctx };
    while (this.#running) {
      let claimed = 0;
      try {
        claimed = await this.round();
        await dispatchWebhooks(ctx);
        const { rows } = await run<{ n: number }>(
          ctx.db,
          connectionQueries.dueCount({ now: ctx.clock.now() }),
        );
        ctx.metrics.dueBacklog.set(rows[0]?.n ?? 0);
      } catch (err) {
        ctx.log.warn({ err: { message: String((err as Error)?.message) } }, "broker: worker round failed");
      }
      if (!this.#running) break;
      if (claimed >= ctx.config.batch) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, ctx.config.pollMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.#wake = done;
      });
      this.#wake = undefined;
    }
  }
}
