/**
 * The ledger's write path. Every change of money runs as an operation of the writer: operations
 * that arrive together are committed together in one database transaction (group commit), each
 * inside its own savepoint so that one refused operation does not undo the others. A caller's
 * promise settles only after the commit, so an answered transfer is durable.
 *
 * Locking: on PostgreSQL the batch first locks every account its operations named, in ascending
 * id order (SELECT … ORDER BY id FOR UPDATE via db.forUpdate), so two servers never deadlock on
 * accounts; on SQLite db.tx is BEGIN IMMEDIATE, which serialises writers across processes.
 */
import { sql, type Kysely } from 'kysely';
import type { Ctx } from '../../core/context.js';
import type { DB } from '../../core/db/index.js';
import { isDomainError } from '../../core/errors.js';

export type Trx = Kysely<DB>;

export interface Op<T> {
  /** Accounts the operation changes (locked before it runs). */
  locks: number[];
  run(trx: Trx): Promise<T>;
}

interface Pending {
  op: Op<unknown>;
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

const MAX_BATCH = 256;
const MAX_ATTEMPTS = 6;

/** Errors after which the whole batch may simply run again. */
export function retryable(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === '40P01' || code === '40001' || code === '23505' || code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export class Writer {
  private queue: Pending[] = [];
  private running = false;
  private closed = false;
  /** Batches committed and operations run, for the benchmark and metrics. */
  stats = { batches: 0, ops: 0 };

  constructor(private readonly ctx: Ctx) {}

  submit<T>(op: Op<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('ledger writer is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op: op as Op<unknown>, resolve: resolve as (v: unknown) => void, reject });
      if (!this.running) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length) {
        const batch = this.queue.splice(0, MAX_BATCH);
        await this.runBatch(batch);
      }
    } finally {
      this.running = false;
    }
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    const { db } = this.ctx;
    const ids = [...new Set(batch.flatMap((p) => p.op.locks))].sort((a, b) => a - b);
    for (let attempt = 1; ; attempt++) {
      let results: ({ ok: true; v: unknown } | { ok: false; e: unknown })[] = [];
      try {
        await db.tx(async (trx) => {
          results = [];
          if (db.dialect === 'postgres' && ids.length) {
            await db.forUpdate(trx.selectFrom('ledger_accounts').select('id').where('id', 'in', ids).orderBy('id')).execute();
          }
          const single = batch.length === 1;
          for (const p of batch) {
            if (!single) await sql`savepoint ledger_op`.execute(trx);
            try {
              const v = await p.op.run(trx);
              if (!single) await sql`release savepoint ledger_op`.execute(trx);
              results.push({ ok: true, v });
            } catch (e) {
              if (single) throw e;
              await sql`rollback to savepoint ledger_op`.execute(trx);
              if (retryable(e)) throw e;
              results.push({ ok: false, e });
            }
          }
        });
      } catch (e) {
        if (retryable(e) && attempt < MAX_ATTEMPTS) {
          await new Promise((r) => setTimeout(r, attempt * attempt * 2 + Math.random() * 5));
          continue;
        }
        if (batch.length === 1 && isDomainError(e)) {
          batch[0].reject(e);
          return;
        }
        for (const p of batch) p.reject(e);
        return;
      }
      this.stats.batches++;
      this.stats.ops += batch.length;
      batch.forEach((p, i) => {
        const r = results[i];
        if (r.ok) p.resolve(r.v);
        else p.reject(r.e);
      });
      return;
    }
  }

  /** Waits for queued operations, then refuses new ones. */
  async close(): Promise<void> {
    while (this.running || this.queue.length) await new Promise((r) => setTimeout(r, 5));
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
