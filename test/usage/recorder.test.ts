/**
 * The request recorder (services/usage) on the real database: events are buffered and written in
 * batches (by timer and by size), everything buffered is written on close, the sweeper keeps the
 * retention horizon and the row cap, and the hourly aggregates stay exact when two platforms on one
 * database flush at once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Ctx } from '../../src/core/context.js';
import { FLUSH_AT, FLUSH_MS, flushRequests, recorder, sweepRequests, type RequestEvent } from '../../src/services/usage/index.js';
import { freshPgDatabase, onPg, startPlatform, type TestPlatform } from '../helpers.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T = Date.UTC(2026, 10, 23, 10, 0, 0);

const ev = (o: Partial<RequestEvent> = {}): RequestEvent => ({
  at: T,
  tenantId: 1,
  appId: 1,
  service: 'native',
  method: 'GET',
  route: '/rest/v1/me',
  status: 200,
  durationUs: 1000,
  ip: '203.0.113.77',
  code: null,
  ...o,
});

const count = async (ctx: Ctx): Promise<number> => Number((await ctx.db.kysely.selectFrom('request_log').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

/** Two platforms on one database: a shared PostgreSQL database, or a shared SQLite file. */
async function twoPlatforms(): Promise<{ a: TestPlatform; b: TestPlatform; close(): Promise<void> }> {
  if (onPg) {
    const db = await freshPgDatabase();
    const a = await startPlatform({ databaseUrl: db.url });
    const b = await startPlatform({ databaseUrl: db.url });
    return { a, b, close: async () => (await a.close(), await b.close(), await db.drop()) };
  }
  const a = await startPlatform();
  const b = await startPlatform({ dataDir: a.dataDir });
  return { a, b, close: async () => (await b.close(), await a.close()) };
}

describe('request recorder', () => {
  const open: TestPlatform[] = [];
  after(async () => {
    for (const p of open) await p.close();
  });

  it('buffers events and writes them in batches: by timer, and at once past FLUSH_AT', async () => {
    const p = await startPlatform();
    open.push(p);
    const rec = recorder(p.ctx);
    for (let i = 0; i < 10; i++) rec.push(ev());
    assert.equal(await count(p.ctx), 0, 'nothing is written on the request path');
    await sleep(FLUSH_MS + 400);
    assert.equal(await count(p.ctx), 10, 'the timer wrote the batch');
    for (let i = 0; i < FLUSH_AT; i++) rec.push(ev({ status: 404, code: 'NOT_FOUND' }));
    for (let i = 0; i < 50 && (await count(p.ctx)) < 10 + FLUSH_AT; i++) await sleep(20);
    assert.ok((await count(p.ctx)) >= 10 + FLUSH_AT, 'a full buffer is written without waiting for the timer');
    await flushRequests(p.ctx);
    const row = await p.ctx.db.kysely.selectFrom('request_log').selectAll().where('status', '=', 404).executeTakeFirstOrThrow();
    assert.equal(row.ip_prefix, '203.0.113.0/24', 'only the address prefix is stored');
    assert.equal(row.error_code, 'NOT_FOUND');
    const agg = await p.ctx.db.kysely.selectFrom('usage_hourly').selectAll().execute();
    assert.deepEqual(
      agg.map((r) => [Number(r.tenant_id), Number(r.app_id), r.service, Number(r.hour), Number(r.requests), Number(r.errors), Number(r.duration_us)]),
      [[1, 1, 'native', T, 10 + FLUSH_AT, FLUSH_AT, (10 + FLUSH_AT) * 1000]],
    );
  });

  it('writes everything buffered when the platform closes', async () => {
    const db = onPg ? await freshPgDatabase() : null;
    const dir = mkdtempSync(join(tmpdir(), 'menhu-usage-'));
    const p = await startPlatform(db ? { databaseUrl: db.url } : { dataDir: dir });
    const rec = recorder(p.ctx);
    for (let i = 0; i < 25; i++) rec.push(ev({ appId: null, tenantId: null, at: T + i }));
    await p.close(); // the buffer's timer has not fired: close() flushes it
    const again = await startPlatform(db ? { databaseUrl: db.url } : { dataDir: dir });
    try {
      assert.equal(await count(again.ctx), 25);
      const agg = await again.ctx.db.kysely.selectFrom('usage_hourly').selectAll().executeTakeFirstOrThrow();
      assert.deepEqual([Number(agg.tenant_id), Number(agg.app_id), Number(agg.requests)], [0, 0, 25], 'no tenant/app is 0 in the aggregates');
    } finally {
      await again.close();
      await db?.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sweeps rows past the horizon and past the row cap, and aggregates past theirs', async () => {
    const p = await startPlatform({ config: { requestLog: { days: 7, maxRows: 0, usageDays: 30 } } });
    open.push(p);
    const now = Date.now();
    const base = now - (now % HOUR);
    const rec = recorder(p.ctx);
    for (let i = 1; i <= 3; i++) rec.push(ev({ at: base - 8 * DAY + i }));
    for (let i = 1; i <= 2; i++) rec.push(ev({ at: base - 40 * DAY + i }));
    for (let i = 1; i <= 6; i++) rec.push(ev({ at: base + i }));
    await flushRequests(p.ctx);
    assert.equal(await count(p.ctx), 11);
    assert.deepEqual(await sweepRequests(p.ctx), { log: 5, usage: 1 });
    assert.equal(await count(p.ctx), 6);
    const hours = await p.ctx.db.kysely.selectFrom('usage_hourly').select('hour').execute();
    assert.equal(hours.length, 2, 'the 8-day-old hour stays in the aggregates (kept 30 days), the 40-day-old one goes');

    p.ctx.config.requestLog.maxRows = 4;
    assert.equal((await sweepRequests(p.ctx)).log, 2);
    const left = await p.ctx.db.kysely.selectFrom('request_log').select('at').orderBy('at').execute();
    assert.deepEqual(
      left.map((r) => Number(r.at)),
      [base + 3, base + 4, base + 5, base + 6],
      'the newest rows stay',
    );
    assert.deepEqual(await sweepRequests(p.ctx), { log: 0, usage: 0 });
  });

  it('keeps the aggregates exact when two platforms on one database flush at once', async () => {
    const { a, b, close } = await twoPlatforms();
    try {
      const expected = new Map<string, { requests: number; errors: number; dur: number }>();
      const recs = [recorder(a.ctx), recorder(b.ctx)];
      const ROUNDS = 4;
      const PER = 700;
      let seq = 0;
      for (let round = 0; round < ROUNDS; round++) {
        for (const rec of recs) {
          for (let i = 0; i < PER; i++) {
            // overlapping keys in different orders on each side
            const k = (seq++ * 7919) % 24;
            const e = ev({ tenantId: 1 + (k % 2), appId: 1 + (k % 3), service: k % 4 < 2 ? 'native' : 'bqp', at: T + (k % 4) * HOUR + i, status: k % 5 === 0 ? 500 : 200, durationUs: 100 + k });
            rec.push(e);
            const key = `${e.tenantId}|${e.appId}|${e.service}|${e.at - (e.at % HOUR)}`;
            const x = expected.get(key) ?? { requests: 0, errors: 0, dur: 0 };
            x.requests++;
            x.errors += e.status >= 400 ? 1 : 0;
            x.dur += e.durationUs;
            expected.set(key, x);
          }
        }
        // On SQLite both platforms of this one process share a synchronous driver: a writer waiting
        // for the file lock would block the event loop the lock holder needs, so they take turns
        // (separate processes wait on each other normally); on PostgreSQL they really race.
        if (onPg) await Promise.all([flushRequests(a.ctx), flushRequests(b.ctx)]);
        else for (const c of [a.ctx, b.ctx]) await flushRequests(c);
      }
      const rows = await a.ctx.db.kysely.selectFrom('usage_hourly').selectAll().execute();
      const got = new Map(rows.map((r) => [`${r.tenant_id}|${r.app_id}|${r.service}|${r.hour}`, { requests: Number(r.requests), errors: Number(r.errors), dur: Number(r.duration_us) }]));
      assert.deepEqual(Object.fromEntries([...got].sort()), Object.fromEntries([...expected].sort()));
      assert.equal(await count(a.ctx), ROUNDS * PER * 2);
    } finally {
      await close();
    }
  });
});
