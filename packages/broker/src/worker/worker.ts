import { performance } from "node:perf_hooks";
import type { BrokerContext } from "../context.ts";
import { loadProvider } from "../providers/store.ts";
import { type ClaimedRow, connectionQueries } from "../queries.ts";
import { refreshClaimed } from "../refresh/attempt.ts";
import { dispatchWebhooks } from "../webhooks/dispatcher.ts";

/**
 * The refresh worker. Any number run against one database, with no leader. Each worker keeps
 * a pool of `concurrency` slots and claims (SKIP LOCKED, fenced lease) only as many due
 * connections as it has free slots, whenever a slot frees: one slow call never holds back the
 * others. Connections of a provider at its per-process `max_concurrency` are not claimed, and
 * a claim that brings more of one provider than it has free slots for hands the surplus back
 * at once, so calls waiting for a provider never occupy worker slots. It sleeps `pollMs` when
 * nothing is due, unless a `due` notification or a finished call wakes it. Due webhooks are
 * sent alongside, one dispatch at a time.
 */
export class BrokerWorker {
  readonly #ctx: BrokerContext;
  readonly #inFlight = new Set<Promise<void>>();
  #running = false;
  #loop?: Promise<void>;
  #wake?: () => void;
  /** A wake-up that came while the loop was busy: the next wait returns at once. */
  #woken = false;
  #unsubscribe?: () => void;
  #housekeeping?: Promise<void>;
  #housekeptAt = Number.NEGATIVE_INFINITY;

  constructor(ctx: BrokerContext) {
    this.#ctx = ctx;
  }

  /**
   * One round (tests and one-shot use): claims due connections into the free slots, refreshes
   * them and waits for those calls; returns how many were claimed.
   */
  async round(): Promise<number> {
    const { claimed, started } = await this.#fill();
    await Promise.all(started);
    return claimed;
  }

  /** Starts the loop in the background. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#unsubscribe = this.#ctx.notifier.onDue(() => this.#signal());
    this.#loop = this.#run();
  }

  /** Stops claiming; resolves once in-flight refreshes have finished and been written. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#unsubscribe?.();
    this.#signal();
    await this.#loop;
  }

  /**
   * Claims up to the free slots (at most `batch`), skipping providers saturated here, and starts
   * a refresh for each claimed connection its provider has a free slot for.
   */
  async #fill(): Promise<{ asked: number; claimed: number; started: Promise<void>[] }> {
    const { ctx } = { ctx: this.#ctx };
    const asked = Math.min(ctx.config.batch, ctx.config.concurrency - this.#inFlight.size);
    if (asked <= 0) return { asked: 0, claimed: 0, started: [] };
    const now = ctx.clock.now();
    const { rows } = await ctx.db.query<ClaimedRow>(
      connectionQueries.claimDue({
        now,
        lease_until: new Date(now.getTime() + ctx.config.leaseMs),
        owner: ctx.owner,
        limit: asked,
        exclude_providers: ctx.limits.saturated(),
      }),
    );
    // A provider first seen here: learn its limit before admitting its connections.
    for (const name of new Set(rows.map((r) => r.provider))) {
      if (ctx.limits.knows(name)) continue;
      try {
        const provider = await loadProvider(ctx.db, ctx.ring, name);
        ctx.limits.configure(name, provider.max_concurrency);
      } catch {
        // The attempt loads the provider again and reports what is wrong.
      }
    }
    const started: Promise<void>[] = [];
    for (const row of rows) {
      const slot = ctx.limits.tryAcquire(row.provider);
      if (slot) started.push(this.#start(row, slot));
      else await this.#handBack(row);
    }
    return { asked, claimed: rows.length, started };
  }

  /** Runs one refresh in a worker slot; the slot frees (and wakes the loop) when it ends. */
  #start(row: ClaimedRow, slot: () => void): Promise<void> {
    const { ctx } = { ctx: this.#ctx };
    const task = (async () => {
      try {
        await refreshClaimed(ctx, row, slot);
      } catch (err) {
        // The database went away mid-attempt: the lease lapses and the intent tells the next claimer.
        ctx.log.error(
          { connection: row.id, err: { message: String((err as Error)?.message) } },
          "broker: refresh attempt failed",
        );
      } finally {
        slot();
      }
    })();
    this.#inFlight.add(task);
    return task.finally(() => {
      this.#inFlight.delete(task);
      this.#signal();
    });
  }

  /** Gives back a claim its provider has no slot for: nothing was sent, so it is simply due again. */
  async #handBack(row: ClaimedRow): Promise<void> {
    const { ctx } = { ctx: this.#ctx };
    try {
      await ctx.db.query(
        connectionQueries.releaseClaim({
          id: row.id,
          lease_token: row.lease_token!,
          generation: row.generation,
          now: ctx.clock.now(),
        }),
      );
    } catch (err) {
      // The lease then lapses on its own and the connection is claimed again after it.
      ctx.log.warn(
        { connection: row.id, err: { message: String((err as Error)?.message) } },
        "broker: could not hand back a claim",
      );
    }
  }

  /**
   * Sends due webhooks and updates the backlog gauge beside the claims: one run at a time, and
   * (since a busy worker claims on every finished call) at most about twice per poll interval.
   */
  #housekeep(): void {
    const { ctx } = { ctx: this.#ctx };
    if (this.#housekeeping || performance.now() - this.#housekeptAt < ctx.config.pollMs / 2) return;
    this.#housekeptAt = performance.now();
    this.#housekeeping = (async () => {
      try {
        await dispatchWebhooks(ctx);
        const { rows } = await ctx.db.query<{ n: number }>(
          connectionQueries.dueCount({ now: ctx.clock.now() }),
        );
        ctx.metrics.dueBacklog.set(rows[0]?.n ?? 0);
      } catch (err) {
        ctx.log.warn({ err: { message: String((err as Error)?.message) } }, "broker: webhook round failed");
      }
    })().finally(() => {
      this.#housekeeping = undefined;
    });
  }

  #signal(): void {
    if (this.#wake) this.#wake();
    else this.#woken = true;
  }

  async #run(): Promise<void> {
    const { ctx } = { ctx: this.#ctx };
    while (this.#running) {
      let asked = 0;
      let claimed = 0;
      try {
        ({ asked, claimed } = await this.#fill());
      } catch (err) {
        ctx.log.warn({ err: { message: String((err as Error)?.message) } }, "broker: worker claim failed");
      }
      this.#housekeep();
      if (!this.#running) break;
      // A full claim with slots still free: more is probably due, claim again at once.
      if (asked > 0 && claimed >= asked && this.#inFlight.size < ctx.config.concurrency) continue;
      if (this.#woken) {
        this.#woken = false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, ctx.config.pollMs);
        this.#wake = done;
      });
      this.#woken = false;
    }
    await Promise.all(this.#inFlight);
    await this.#housekeeping;
  }
}
