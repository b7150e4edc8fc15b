/**
 * The ledger's write path. Every change of money runs as an operation of the writer: operations
 * that arrive together are committed together in one database transaction (group commit). An
 * operation checks everything before it writes, so a refused one leaves nothing behind and the
 * others go on; a database error aborts the batch, which runs again (deadlock, serialisation,
 * unique race) or without the operation that broke. A caller's promise settles only after the
 * commit, so an answered transfer is durable.
 *
 * On PostgreSQL up to PG_WRITERS batches run at once on separate connections. Operations with a
 * set-oriented form (transfers: Op.bulk) are applied together in a fixed number of statements.
 *
 * Locking: on PostgreSQL the batch first locks every account its operations named, in ascending
 * id order (SELECT … ORDER BY id FOR UPDATE via db.forUpdate), so two servers never deadlock on
 * accounts; on SQLite db.tx is BEGIN IMMEDIATE, which serialises writers across processes.
 */
import type { Kysely } from 'kysely';
import type { Ctx } from '../../core/context.js';
import type { DB } from '../../core/db/index.js';
import { isDomainError } from '../../core/errors.js';

export type Trx = Kysely<DB>;

export interface Op<T> {
  /** Accounts the operation changes (locked before it runs). */
  locks: number[];
  /**
   * The operation. It may refuse (throw a DomainError) only before its first write: operations
   * share the batch's transaction without savepoints, so a refusal must leave nothing behind.
   * Any other error after a write aborts the whole batch, which then runs again without it.
   */
  run(trx: Trx): Promise<T>;
  /**
   * Optional set-oriented form (which must itself lock, in ascending id order, the accounts it
   * changes): consecutive operations of a batch with the same `bulk` runner are
   * handed to it together (a few statements for all of them instead of several each). It must give
   * the same results as running each operation's `run` in order. When a batch fails with an error
   * that is neither a refusal nor retryable, it runs again operation by operation, so the one that
   * broke can be named.
   */
  bulk?: BulkRunner<unknown, T>;
  item?: unknown;
}

export type Outcome<T> = { ok: true; v: T } | { ok: false; e: unknown };
/** Runs several operations' items in one go, in order; a refusal is an outcome, anything else throws. */
export type BulkRunner<I, T> = (trx: Trx, items: I[]) => Promise<Outcome<T>[]>;

interface Pending {
  op: Op<unknown>;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

const MAX_BATCH = 256;
const MAX_ATTEMPTS = 6;
/**
 * Concurrent batches on PostgreSQL (each on its own pooled connection; accounts locked in id order).
 * A batch is four round trips whatever its size, so fewer, larger batches cost less CPU per
 * transfer; two keep one committing while the next is built (bench/results/ledger.md).
 */
const PG_WRITERS = Number(process.env.MENHU_LEDGER_PG_WRITERS ?? 2);
const GATHER_MS = Number(process.env.MENHU_LEDGER_GATHER_MS ?? 2);

/** Errors after which the whole batch may simply run again. */
export function retryable(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === '40P01' || code === '40001' || code === '23505' || code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export class Writer {
  private queue: Pending[] = [];
  /** drain loops running: one on SQLite (one connection), several on PostgreSQL */
  private active = 0;
  private readonly maxActive: number;
  private closed = false;
  /** Batches committed and operations run, for the benchmark and metrics. */
  stats = { batches: 0, ops: 0 };

  constructor(private readonly ctx: Ctx) {
    this.maxActive = ctx.db.dialect === 'postgres' ? PG_WRITERS : 1;
  }

  submit<T>(op: Op<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('ledger writer is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op: op as Op<unknown>, resolve: resolve as (v: unknown) => void, reject });
      if (this.active < this.maxActive && (this.active === 0 || this.queue.length > 1)) {
        this.active++;
        void this.drain();
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length && this.takeable()) {
        await this.gather();
        const took = await this.runBatch();
        this.lastBatchEnd = performance.now();
        // all that waits needs accounts of a batch in flight: its loop takes them when it ends
        if (!took) break;
      }
    } finally {
      this.active--;
    }
  }

  private lastBatchEnd = 0;
  /** accounts of the batches in flight (id → batches) */
  private busy = new Map<number, number>();

  /**
   * Takes the next batch: the queued operations, in order, whose accounts no batch in flight holds
   * and no operation left waiting before them names. Batches in flight at once thus have disjoint
   * accounts (they neither wait on each other's row locks nor overtake each other), and the
   * operations on one account run in the order they were submitted.
   */
  private take(): Pending[] {
    if (!this.busy.size && this.queue.length <= MAX_BATCH) return this.queue.splice(0);
    const blocked = new Set(this.busy.keys());
    const taken: Pending[] = [];
    const rest: Pending[] = [];
    for (const p of this.queue) {
      if (taken.length < MAX_BATCH && p.op.locks.every((id) => !blocked.has(id))) taken.push(p);
      else {
        rest.push(p);
        for (const id of p.op.locks) blocked.add(id);
      }
    }
    this.queue = rest;
    for (const p of taken) for (const id of p.op.locks) this.busy.set(id, (this.busy.get(id) ?? 0) + 1);
    return taken;
  }

  /** Whether take() would find anything (without taking it). */
  private takeable(): boolean {
    if (!this.busy.size) return this.queue.length > 0;
    const blocked = new Set(this.busy.keys());
    for (const p of this.queue) {
      if (p.op.locks.every((id) => !blocked.has(id))) return true;
      for (const id of p.op.locks) blocked.add(id);
    }
    return false;
  }

  private release(batch: Pending[]): void {
    for (const p of batch) {
      for (const id of p.op.locks) {
        const n = (this.busy.get(id) ?? 0) - 1;
        if (n > 0) this.busy.set(id, n);
        else this.busy.delete(id);
      }
    }
  }

  /**
   * Group commit window. A SQLite commit blocks the event loop while it syncs to disk, so requests
   * that arrived meanwhile have not reached the queue when it ends. Under load (a batch ended
   * moments ago) wait GATHER_MS for them; when idle, start at once.
   */
  private async gather(): Promise<void> {
    if (this.queue.length >= MAX_BATCH || performance.now() - this.lastBatchEnd > 20) return;
    await new Promise((r) => setTimeout(r, GATHER_MS));
  }

  /**
   * Runs one batch. The batch is taken from the queue only once the transaction has begun (and so
   * holds SQLite's single connection): everything that arrived while the previous commit was
   * waiting for the disk joins this one.
   */
  private async runBatch(): Promise<boolean> {
    let taken: Pending[] | null = null;
    try {
      await this.runTaken(() => (taken = this.take()));
      return taken !== null && (taken as Pending[]).length > 0;
    } finally {
      if (taken) this.release(taken);
    }
  }

  private async runTaken(takeBatch: () => Pending[]): Promise<void> {
    const { db } = this.ctx;
    let batch: Pending[] | null = null;
    let useBulk = true;
    for (let attempt = 1; ; attempt++) {
      let results: Outcome<unknown>[] = [];
      let failed: Pending | null = null;
      try {
        await db.tx(async (trx) => {
          results = [];
          batch ??= takeBatch();
          if (!batch.length) return;
          const ids = [...new Set(batch.flatMap((p) => p.op.locks))].sort((a, b) => a - b);
          // a set-oriented runner locks its own accounts (in the same order) when it reads them
          const allBulk = useBulk && !!batch[0]?.op.bulk && batch.every((p) => p.op.bulk === batch![0].op.bulk);
          if (db.dialect === 'postgres' && ids.length && !allBulk) {
            await db.forUpdate(trx.selectFrom('ledger_accounts').select('id').where('id', 'in', ids).orderBy('id')).execute();
          }
          for (let i = 0; i < batch.length; i++) {
            const p = batch[i];
            const bulk = useBulk ? p.op.bulk : undefined;
            if (bulk) {
              let j = i + 1;
              while (j < batch.length && batch[j].op.bulk === bulk) j++;
              const out = await bulk(trx, batch.slice(i, j).map((q) => q.op.item));
              results.push(...out);
              i = j - 1;
              continue;
            }
            try {
              results.push({ ok: true, v: await p.op.run(trx) });
            } catch (e) {
              if (!isDomainError(e)) {
                failed = p;
                throw e;
              }
              results.push({ ok: false, e });
            }
          }
        });
      } catch (e) {
        const taken: Pending[] = batch ?? takeBatch();
        if (retryable(e) && attempt < MAX_ATTEMPTS) {
          batch = taken;
          await new Promise((r) => setTimeout(r, attempt * attempt * 2 + Math.random() * 5));
          continue;
        }
        // a set-oriented run cannot say which operation broke: run again one by one to find it
        if (useBulk && !failed && taken.length > 1 && taken.some((p) => p.op.bulk)) {
          batch = taken;
          useBulk = false;
          attempt = 0;
          continue;
        }
        // the operation that broke is refused; the others run again in a batch of their own
        const culprit: Pending | null = failed ?? (taken.length === 1 ? taken[0] : null);
        if (culprit) {
          culprit.reject(e);
          batch = taken.filter((p) => p !== culprit);
          if (batch.length) {
            attempt = 0;
            continue;
          }
          return;
        }
        for (const p of taken) p.reject(e);
        return;
      }
      const done: Pending[] = batch!;
      if (done.length) this.stats.batches++;
      this.stats.ops += done.length;
      done.forEach((p, i) => {
        const r = results[i];
        if (r.ok) p.resolve(r.v);
        else p.reject(r.e);
      });
      return;
    }
  }

  /** Waits for queued operations, then refuses new ones. */
  async close(): Promise<void> {
    while (this.active || this.queue.length) await new Promise((r) => setTimeout(r, 5));
    this.closed = true;
  }
}

const writers = new WeakMap<Ctx, Writer>();

export function writer(ctx: Ctx): Writer {
  let w = writers.get(ctx);
  if (!w) writers.set(ctx, (w = new Writer(ctx)));
  return w;
}

export async function closeWriter(ctx: Ctx): Promise<void> {
  const w = writers.get(ctx);
  if (w) {
    await w.close();
    writers.delete(ctx);
  }
}
