/**
 * Jobs: lease, claim, complete, retry with backoff, lease expiry of a dead worker, final failure
 * with its hook in the same transaction, and concurrent claimers on one database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/context.js';
import { backoffMs, type Job } from '../../src/core/jobs/index.js';
import { addQuota, remainingQuota, refundQuota, reserveQuota } from '../../src/core/limits/quotas.js';
import { createTenant } from '../../src/services/accounts/index.js';
import { onPg, startPlatform, type TestPlatform } from '../helpers.js';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const LEASE = 10_000;

describe('jobs', () => {
  let p: TestPlatform;
  let clock: ManualClock;
  const outcomes = new Map<string, 'fail' | 'ok'>();
  before(async () => {
    clock = new ManualClock(T0);
    p = await startPlatform({ clock });
    const { jobs } = p.ctx;
    jobs.register('work', {
      leaseMs: LEASE,
      run: async (job) => {
        const want = JSON.parse(job.payload) as { fail?: number; value?: number };
        if (want.fail !== undefined && job.attempts <= want.fail) throw new Error(`attempt ${job.attempts} fails`);
        return { doubled: (want.value ?? 0) * 2 };
      },
      onDone: async (trx, job, result) => {
        await trx.insertInto('settings').values({ key: `done:${job.id}`, value: JSON.stringify(result) }).execute();
      },
      onFailed: async (trx, job, error) => {
        await trx.insertInto('settings').values({ key: `failed:${job.id}`, value: error }).execute();
        const hold = (JSON.parse(job.payload) as { hold?: string }).hold;
        if (hold) await refundQuota(trx, hold, clock.now());
      },
    });
    jobs.register('broken-hook', {
      leaseMs: LEASE,
      run: async () => {
        throw new Error('always');
      },
      onFailed: async (trx, job) => {
        await trx.insertInto('settings').values({ key: `hook:${job.id}`, value: 'x' }).execute();
        if (outcomes.get(job.id) !== 'ok') throw new Error('hook breaks');
      },
    });
  });
  after(() => p.close());

  let n = 0;
  async function enqueue(payload: unknown, kind = 'work', maxAttempts = 2) {
    const id = `job-${++n}-${p.ctx.ids.hex32().slice(0, 8)}`;
    await p.ctx.jobs.enqueue(p.ctx.db.kysely, { id, kind, payload, maxAttempts });
    return id;
  }
  const get = async (id: string) => (await p.ctx.jobs.get(id))!;
  const setting = async (key: string) => (await p.ctx.db.kysely.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst())?.value;
  /** Claims until the job with this id comes up (other tests' leftovers are put aside). */
  async function claim(worker = 'w1'): Promise<Job | null> {
    return p.ctx.jobs.claim(['work', 'broken-hook'], worker);
  }

  it('claims with a lease, completes once, and runs onDone in the same transaction', async () => {
    const id = await enqueue({ value: 21 });
    const j = await claim('w1');
    assert.ok(j);
    assert.equal(j.id, id);
    assert.equal(j.state, 'running');
    assert.equal(j.attempts, 1);
    assert.equal(j.worker, 'w1');
    assert.equal(Number(j.lease_until), T0 + LEASE);
    assert.equal(await claim('w2'), null, 'a leased job is not taken twice');
    assert.equal(await p.ctx.jobs.complete(j, 'w2', { x: 1 }), false, 'only the lease holder completes');
    assert.equal(await p.ctx.jobs.complete(j, 'w1', { doubled: 42 }), true);
    assert.equal(await p.ctx.jobs.complete(j, 'w1', { doubled: 43 }), false, 'completing twice does nothing');
    const done = await get(id);
    assert.equal(done.state, 'done');
    assert.equal(done.result, '{"doubled":42}');
    assert.equal(done.lease_until, null);
    assert.equal(Number(done.finished_at), T0);
    assert.equal(await setting(`done:${id}`), '{"doubled":42}');
  });

  it('renews the lease on progress', async () => {
    const id = await enqueue({ value: 1 });
    const j = (await claim('w1'))!;
    assert.equal(j.id, id);
    clock.advance(LEASE - 1);
    await p.ctx.jobs.progress(id, 'w1', 0.5);
    clock.advance(LEASE - 1);
    assert.equal(await claim('w2'), null, 'renewed lease still holds');
    const cur = await get(id);
    assert.equal(cur.progress, 0.5);
    assert.equal(await p.ctx.jobs.complete(j, 'w1', null), true);
    clock.set(T0);
  });

  it('retries a failed attempt after a backoff', async () => {
    assert.deepEqual([1, 2, 3, 8, 20].map(backoffMs), [500, 1000, 2000, 60_000, 60_000]);
    const id = await enqueue({ fail: 1, value: 5 }, 'work', 3);
    const j = (await claim('w1'))!;
    await p.ctx.jobs.runOne(j, 'w1');
    const queued = await get(id);
    assert.equal(queued.state, 'queued');
    assert.equal(queued.error, 'attempt 1 fails');
    assert.equal(Number(queued.run_at), T0 + 500);
    assert.equal(queued.worker, null);
    assert.equal(await claim('w1'), null, 'not before its backoff');
    clock.advance(500);
    const again = (await claim('w2'))!;
    assert.equal(again.id, id);
    assert.equal(again.attempts, 2);
    await p.ctx.jobs.runOne(again, 'w2');
    const done = await get(id);
    assert.equal(done.state, 'done');
    assert.equal(done.result, '{"doubled":10}');
    clock.set(T0);
  });

  it('gives a job whose worker died to another worker once the lease expires', async () => {
    const id = await enqueue({ value: 3 }, 'work', 3);
    const dead = (await claim('dead'))!;
    assert.equal(dead.id, id);
    clock.advance(LEASE - 1);
    assert.equal(await claim('alive'), null, 'lease still running');
    clock.advance(2);
    const taken = (await claim('alive'))!;
    assert.equal(taken.id, id);
    assert.equal(taken.attempts, 2);
    assert.equal(taken.worker, 'alive');
    assert.equal(await p.ctx.jobs.complete(dead, 'dead', { late: true }), false, 'the dead worker lost its lease');
    await p.ctx.jobs.runOne(taken, 'alive');
    assert.equal((await get(id)).result, '{"doubled":6}');
    clock.set(T0);
  });

  it('fails a job for good when its attempts are used up, running the hook in the same transaction', async () => {
    const tenant = await createTenant(p.ctx, 'payer');
    const tenantId = Number(tenant.id);
    await addQuota(p.ctx.db.kysely, tenantId, 'work', 3);
    const hold = 'hold-' + p.ctx.ids.hex32();
    const id = `job-paid-${hold}`;
    // the job and its quota hold are created in one transaction
    await p.ctx.db.tx(async (trx) => {
      await reserveQuota(trx, { holdId: hold, tenantId, service: 'work', now: clock.now() });
      await p.ctx.jobs.enqueue(trx, { id, kind: 'work', payload: { fail: 99, hold }, maxAttempts: 2, tenantId });
    });
    assert.equal(await remainingQuota(p.ctx.db.kysely, tenantId, 'work'), 2);
    const first = await claim();
    assert.equal(first?.id, id);
    await p.ctx.jobs.runOne(first!);
    clock.advance(backoffMs(1));
    const second = await claim();
    assert.equal(second?.id, id, JSON.stringify(await get(id)));
    await p.ctx.jobs.runOne(second!);
    const failed = await get(id);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.attempts, 2);
    assert.equal(failed.error, 'attempt 2 fails');
    assert.equal(await setting(`failed:${id}`), 'attempt 2 fails');
    assert.equal(await remainingQuota(p.ctx.db.kysely, tenantId, 'work'), 3, 'the hook refunded the hold');
    assert.equal(await claim(), null);
    clock.set(T0);
  });

  it('rolls the failure back when the hook fails, and runs it again after the lease', async () => {
    const id = await enqueue({}, 'broken-hook', 1);
    const j = (await claim('w1'))!;
    await p.ctx.jobs.runOne(j, 'w1'); // must not throw: the runner survives a failing hook
    const still = await get(id);
    assert.equal(still.state, 'running', 'marking failed was rolled back with the hook');
    assert.equal(await setting(`hook:${id}`), undefined, "the hook's writes were rolled back");
    outcomes.set(id, 'ok');
    clock.advance(LEASE + 1);
    assert.equal(await claim('w2'), null, 'an exhausted job is not run again');
    const failed = await get(id);
    assert.equal(failed.state, 'failed');
    assert.equal(await setting(`hook:${id}`), 'x');
    clock.set(T0);
  });

  it('fails a job whose worker died on its last attempt, with the hook', async () => {
    const id = await enqueue({ value: 1 }, 'work', 1);
    await claim('dead');
    clock.advance(LEASE + 1);
    assert.equal(await claim('alive'), null);
    const failed = await get(id);
    assert.equal(failed.state, 'failed');
    assert.match(failed.error ?? '', /lease expired/);
    assert.match((await setting(`failed:${id}`)) ?? '', /lease expired/);
    clock.set(T0);
  });

  it('runs jobs with the in-process runner', async () => {
    const ids = await Promise.all([1, 2, 3].map((v) => enqueue({ value: v })));
    p.ctx.jobs.start(2, 10);
    const t0 = Date.now();
    while (Date.now() - t0 < 5000) {
      const states = await Promise.all(ids.map(async (id) => (await get(id)).state));
      if (states.every((s) => s === 'done')) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    await p.ctx.jobs.stop();
    assert.deepEqual(await Promise.all(ids.map(async (id) => (await get(id)).result)), ['{"doubled":2}', '{"doubled":4}', '{"doubled":6}']);
  });
});

describe('concurrent claimers on one database', () => {
  let a: TestPlatform;
  let b: TestPlatform;
  // On PostgreSQL: two platforms (two pools) on one database. On SQLite one process holds one
  // connection (two in one process would block each other's event loop in busy waits), so the
  // claimers share it; separate `menhu worker` processes are serialised by BEGIN IMMEDIATE.
  before(async () => {
    a = await startPlatform();
    b = onPg ? await startPlatform({ databaseUrl: a.databaseUrl }) : a;
    for (const p of new Set([a, b])) p.ctx.jobs.register('race', { run: async () => null });
  });
  after(async () => {
    if (b !== a) await b.close();
    await a.close();
  });

  it(`never hand one job to two workers (${onPg ? 'PostgreSQL: FOR UPDATE SKIP LOCKED' : 'SQLite: BEGIN IMMEDIATE'})`, async () => {
    const N = 60;
    for (let i = 0; i < N; i++) await a.ctx.jobs.enqueue(a.ctx.db.kysely, { id: `race-${String(i).padStart(3, '0')}`, kind: 'race', payload: i });
    const taken = new Map<string, string>();
    const dupes: string[] = [];
    const worker = async (p: TestPlatform, name: string) => {
      for (;;) {
        const j = await p.ctx.jobs.claim(['race'], name);
        if (!j) return;
        if (taken.has(j.id)) dupes.push(j.id);
        taken.set(j.id, name);
      }
    };
    // four claimers per platform, two platforms (two connection pools / two SQLite connections)
    await Promise.all([0, 1, 2, 3].flatMap((i) => [worker(a, `a${i}`), worker(b, `b${i}`)]));
    assert.deepEqual(dupes, []);
    assert.equal(taken.size, N);
    const rows = await a.ctx.db.kysely.selectFrom('jobs').select(['id', 'worker', 'attempts']).where('kind', '=', 'race').execute();
    assert.ok(rows.every((r) => r.attempts === 1 && r.worker === taken.get(r.id)));
    const byPlatform = new Set([...taken.values()].map((w) => w[0]));
    assert.equal(byPlatform.size, 2, 'both platforms took jobs');
    assert.ok(new Set(taken.values()).size >= 4, 'the claimers interleaved');
  });
});
