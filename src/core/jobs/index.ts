import { hostname } from 'node:os';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database, DB } from '../db/index.js';
import type { Job } from '../db/schema.js';

export type { Job } from '../db/schema.js';

export interface JobControl {
  /** Reports progress in [0, 1] and renews the lease. */
  progress(p: number): Promise<void>;
  readonly attempt: number;
  readonly signal: AbortSignal;
}

export interface JobHandler {
  /** Does the work; returns the result to store (JSON). Throwing fails this attempt. */
  run(job: Job, ctl: JobControl): Promise<unknown>;
  /** Runs inside the transaction that marks the job done (e.g. commit a quota hold). */
  onDone?(trx: Kysely<DB>, job: Job, result: unknown): Promise<void>;
  /** Runs once, inside the transaction that marks the job finally failed (e.g. refund a quota hold). */
  onFailed?(trx: Kysely<DB>, job: Job, error: string): Promise<void>;
  /** Lease length in ms; a job whose worker stops renewing it is taken again after this. */
  leaseMs?: number;
}

export interface EnqueueInput {
  id: string;
  kind: string;
  payload: unknown;
  tenantId?: number | null;
  maxAttempts?: number;
  runAt?: number;
}

export const backoffMs = (attempt: number): number => Math.min(60_000, 500 * 2 ** Math.max(0, attempt - 1));

export class Jobs {
  private handlers = new Map<string, JobHandler>();
  private running = new Map<string, AbortController>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private wake: (() => void) | null = null;
  readonly workerId = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;

  constructor(
    private readonly db: Database,
    private readonly now: () => number,
    private readonly log: Logger,
  ) {}

  register(kind: string, handler: JobHandler): void {
    this.handlers.set(kind, handler);
  }

  /** Adds a job. Pass the transaction of the work that creates it so both commit or neither. */
  async enqueue(exec: Kysely<DB>, j: EnqueueInput): Promise<string> {
    const t = this.now();
    await exec
      .insertInto('jobs')
      .values({
        id: j.id,
        kind: j.kind,
        tenant_id: j.tenantId ?? null,
        payload: JSON.stringify(j.payload ?? null),
        state: 'queued',
        attempts: 0,
        max_attempts: j.maxAttempts ?? 2,
        run_at: j.runAt ?? t,
        lease_until: null,
        worker: null,
        progress: 0,
        result: null,
        error: null,
        created_at: t,
        updated_at: t,
        finished_at: null,
      })
      .execute();
    this.wake?.();
    return j.id;
  }

  get(id: string): Promise<Job | undefined> {
    return this.db.kysely.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /**
   * Takes the next runnable job of the given kinds: queued and due, or running with an expired
   * lease (its worker died). Jobs whose attempts are used up and whose lease expired are failed
   * (and their onFailed hook run) instead of being taken.
   */
  async claim(kinds: string[], worker = this.workerId): Promise<Job | null> {
    if (kinds.length === 0) return null;
    await this.reapExhausted(kinds);
    const t = this.now();
    return this.db.tx(async (trx) => {
      let q = trx
        .selectFrom('jobs')
        .select('id')
        .where('kind', 'in', kinds)
        .where((eb) =>
          eb.or([
            eb.and([eb('state', '=', 'queued'), eb('run_at', '<=', t)]),
            eb.and([eb('state', '=', 'running'), eb('lease_until', '<', t), eb('attempts', '<', eb.ref('max_attempts'))]),
          ]),
        )
        .orderBy('run_at')
        .limit(1);
      if (this.db.dialect === 'postgres') q = q.forUpdate().skipLocked();
      const pick = await q.executeTakeFirst();
      if (!pick) return null;
      const lease = this.handlers.get((await trx.selectFrom('jobs').select('kind').where('id', '=', pick.id).executeTakeFirstOrThrow()).kind)?.leaseMs ?? 30_000;
      return (
        (await trx
          .updateTable('jobs')
          .set({ state: 'running', attempts: sql`attempts + 1`, lease_until: t + lease, worker, updated_at: t })
          .where('id', '=', pick.id)
          .returningAll()
          .executeTakeFirst()) ?? null
      );
    });
  }

  private async reapExhausted(kinds: string[]): Promise<void> {
    const t = this.now();
    const dead = await this.db.kysely
      .selectFrom('jobs')
      .select('id')
      .where('kind', 'in', kinds)
      .where('state', '=', 'running')
      .where('lease_until', '<', t)
      .where('attempts', '>=', sql<number>`max_attempts`)
      .limit(50)
      .execute();
    for (const { id } of dead) await this.finishFailed(id, null, 'worker stopped responding (lease expired) on the last attempt');
  }

  /** Reports progress and renews the lease; a job no longer running for this worker (cancelled, or its lease taken over) is aborted here. */
  async progress(id: string, worker: string, p: number): Promise<void> {
    const t = this.now();
    const job = await this.get(id);
    const lease = job ? (this.handlers.get(job.kind)?.leaseMs ?? 30_000) : 30_000;
    const upd = await this.db.kysely
      .updateTable('jobs')
      .set({ progress: Math.max(0, Math.min(1, p)), lease_until: t + lease, updated_at: t })
      .where('id', '=', id)
      .where('worker', '=', worker)
      .where('state', '=', 'running')
      .executeTakeFirst();
    if (Number(upd.numUpdatedRows) === 0) this.running.get(id)?.abort();
  }

  async complete(job: Job, worker: string, result: unknown): Promise<boolean> {
    const t = this.now();
    return this.db.tx(async (trx) => {
      const upd = await trx
        .updateTable('jobs')
        .set({ state: 'done', progress: 1, result: JSON.stringify(result ?? null), lease_until: null, updated_at: t, finished_at: t })
        .where('id', '=', job.id)
        .where('worker', '=', worker)
        .where('state', '=', 'running')
        .executeTakeFirst();
      if (Number(upd.numUpdatedRows) !== 1) return false; // lease lost: another worker owns it now
      await this.handlers.get(job.kind)?.onDone?.(trx, job, result);
      return true;
    });
  }

  /** Fails this attempt: back to the queue with backoff, or finally failed when attempts are used up. */
  async failAttempt(job: Job, worker: string, error: string): Promise<void> {
    const t = this.now();
    if (job.attempts < job.max_attempts) {
      await this.db.kysely
        .updateTable('jobs')
        .set({ state: 'queued', run_at: t + backoffMs(job.attempts), lease_until: null, worker: null, error, updated_at: t })
        .where('id', '=', job.id)
        .where('worker', '=', worker)
        .where('state', '=', 'running')
        .execute();
      this.log.warn({ job: job.id, kind: job.kind, attempt: job.attempts, error }, 'job attempt failed; will retry');
      return;
    }
    await this.finishFailed(job.id, worker, error);
  }

  private async finishFailed(id: string, worker: string | null, error: string): Promise<void> {
    const t = this.now();
    await this.db.tx(async (trx) => {
      let q = trx
        .updateTable('jobs')
        .set({ state: 'failed', error, lease_until: null, updated_at: t, finished_at: t })
        .where('id', '=', id)
        .where('state', '=', 'running');
      if (worker) q = q.where('worker', '=', worker);
      const upd = await q.executeTakeFirst();
      if (Number(upd.numUpdatedRows) !== 1) return;
      const job = await trx.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      await this.handlers.get(job.kind)?.onFailed?.(trx, job, error);
    });
    this.log.error({ job: id, error }, 'job failed');
  }

  /**
   * Fails (and runs onFailed for) jobs of `kind` still queued or running that were created before
   * `createdBefore`: work that did not finish in time. Returns the ids (see cancel).
   */
  async expire(kind: string, createdBefore: number, error: string): Promise<string[]> {
    const stale = await this.db.kysely
      .selectFrom('jobs')
      .select('id')
      .where('kind', '=', kind)
      .where('state', 'in', ['queued', 'running'])
      .where('created_at', '<', createdBefore)
      .limit(100)
      .execute();
    const done: string[] = [];
    for (const { id } of stale) if (await this.cancel(id, error)) done.push(id);
    return done;
  }

  /**
   * Fails a job that is still queued or running, with `error`, running its onFailed hook in the
   * same transaction. A worker still running it loses it (its completion no longer matches; when
   * it runs in this process it is aborted, in another its next progress report aborts it).
   * Returns false when the job had already ended (or does not exist).
   */
  async cancel(id: string, error: string): Promise<boolean> {
    const t = this.now();
    const failed = await this.db.tx(async (trx) => {
      const upd = await trx
        .updateTable('jobs')
        .set({ state: 'failed', error, lease_until: null, updated_at: t, finished_at: t })
        .where('id', '=', id)
        .where('state', 'in', ['queued', 'running'])
        .executeTakeFirst();
      if (Number(upd.numUpdatedRows) !== 1) return false;
      const job = await trx.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
      await this.handlers.get(job.kind)?.onFailed?.(trx, job, error);
      return true;
    });
    if (failed) this.running.get(id)?.abort();
    return failed;
  }

  /** Runs one claimed job to its end (used by the runner and by tests). */
  async runOne(job: Job, worker = job.worker ?? this.workerId): Promise<void> {
    const h = this.handlers.get(job.kind);
    if (!h) return this.failAttempt(job, worker, `no handler for job kind ${job.kind}`);
    const ac = new AbortController();
    this.running.set(job.id, ac);
    const renew = setInterval(() => void this.progress(job.id, worker, job.progress).catch(() => {}), Math.max(1000, (h.leaseMs ?? 30_000) / 3));
    renew.unref();
    try {
      const ctl: JobControl = {
        attempt: job.attempts,
        signal: ac.signal,
        progress: async (p) => {
          job.progress = p;
          await this.progress(job.id, worker, p);
        },
      };
      const result = await h.run(job, ctl);
      await this.complete(job, worker, result);
    } catch (e) {
      try {
        await this.failAttempt(job, worker, e instanceof Error ? e.message : String(e));
      } catch (hookError) {
        // The failure hook (or the database) failed: the transaction rolled back, the job stays
        // running, and once its lease expires the next claim fails it again with its hook.
        this.log.error({ job: job.id, kind: job.kind, err: String((hookError as Error)?.message ?? hookError) }, 'marking job failed did not commit; retried after the lease');
      }
    } finally {
      clearInterval(renew);
      this.running.delete(job.id);
    }
  }

  /** Polls for work with at most `concurrency` jobs at once, until stop(). */
  start(concurrency: number, pollMs = 250): void {
    if (!this.stopped || concurrency <= 0) return;
    this.stopped = false;
    const loop = async (): Promise<void> => {
      while (!this.stopped) {
        let job: Job | null = null;
        if (this.running.size < concurrency) {
          try {
            job = await this.claim([...this.handlers.keys()]);
          } catch (e) {
            this.log.error({ err: String(e) }, 'job claim failed');
          }
        }
        if (job) {
          void this.runOne(job).catch((e) => this.log.error({ job: job.id, err: String((e as Error)?.message ?? e) }, 'job run failed'));
          continue;
        }
        await new Promise<void>((res) => {
          this.wake = res;
          this.timer = setTimeout(res, pollMs);
          this.timer.unref();
        });
        this.wake = null;
      }
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    for (const ac of this.running.values()) ac.abort();
    const t0 = Date.now();
    while (this.running.size > 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
  }
}
