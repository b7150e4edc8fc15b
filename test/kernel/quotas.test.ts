/**
 * Quotas: reserve / commit / refund inside transactions, idempotent settling, and never below
 * zero under many parallel reservations (SQLite and PostgreSQL).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isDomainError } from '../../src/core/errors.js';
import { addQuota, commitQuota, refundQuota, remainingQuota, reserveQuota } from '../../src/core/limits/quotas.js';
import { createTenant } from '../../src/services/accounts/index.js';
import { onPg, startPlatform, type TestPlatform } from '../helpers.js';

describe('quotas', () => {
  let p: TestPlatform;
  let tenantId: number;
  before(async () => {
    p = await startPlatform();
    tenantId = Number((await createTenant(p.ctx, 'payer')).id);
  });
  after(() => p.close());

  const db = () => p.ctx.db.kysely;
  const row = async (service: string) =>
    db().selectFrom('quotas').select(['remaining', 'held']).where('tenant_id', '=', tenantId).where('service', '=', service).executeTakeFirst();
  const hold = async (id: string) => db().selectFrom('quota_holds').selectAll().where('id', '=', id).executeTakeFirst();
  const reserve = (service: string, holdId: string, amount = 1) =>
    p.ctx.db.tx((trx) => reserveQuota(trx, { holdId, tenantId, service, amount, now: p.ctx.clock.now() }));

  it('reserves, commits and refunds; settling is idempotent', async () => {
    assert.equal(await addQuota(db(), tenantId, 'a', 10), 10);
    await reserve('a', 'h1', 3);
    assert.deepEqual(await row('a'), { remaining: 7, held: 3 });
    assert.equal((await hold('h1'))?.state, 'held');

    assert.equal(await p.ctx.db.tx((trx) => commitQuota(trx, 'h1', 1)), true);
    assert.deepEqual(await row('a'), { remaining: 7, held: 0 });
    assert.equal(await p.ctx.db.tx((trx) => commitQuota(trx, 'h1', 2)), false, 'second commit does nothing');
    assert.equal(await p.ctx.db.tx((trx) => refundQuota(trx, 'h1', 3)), false, 'a committed hold cannot be refunded');
    assert.deepEqual(await row('a'), { remaining: 7, held: 0 });
    assert.equal((await hold('h1'))?.state, 'committed');

    await reserve('a', 'h2', 2);
    assert.equal(await p.ctx.db.tx((trx) => refundQuota(trx, 'h2', 4)), true);
    assert.equal(await p.ctx.db.tx((trx) => refundQuota(trx, 'h2', 5)), false, 'second refund does nothing');
    assert.equal(await p.ctx.db.tx((trx) => commitQuota(trx, 'h2', 6)), false);
    assert.deepEqual(await row('a'), { remaining: 7, held: 0 });
    assert.equal(await p.ctx.db.tx((trx) => commitQuota(trx, 'no-such-hold', 7)), false);
  });

  it('refuses a reservation larger than what remains, changing nothing', async () => {
    await addQuota(db(), tenantId, 'b', 2);
    await assert.rejects(reserve('b', 'hb1', 3), (e) => isDomainError(e) && e.code === 'QUOTA_EXHAUSTED');
    await assert.rejects(reserve('nothing-bought', 'hb2', 1), (e) => isDomainError(e) && e.code === 'QUOTA_EXHAUSTED');
    assert.deepEqual(await row('b'), { remaining: 2, held: 0 });
    assert.equal(await hold('hb1'), undefined);
    await assert.rejects(addQuota(db(), tenantId, 'b', -3), (e) => isDomainError(e) && e.code === 'VALIDATION');
    assert.equal(await remainingQuota(db(), tenantId, 'b'), 2);
  });

  it('rolls a reservation back with the work it pays for', async () => {
    await addQuota(db(), tenantId, 'c', 5);
    await assert.rejects(
      p.ctx.db.tx(async (trx) => {
        await reserveQuota(trx, { holdId: 'hc1', tenantId, service: 'c', amount: 2, now: 0 });
        await trx.insertInto('settings').values({ key: 'work-hc1', value: 'x' }).execute();
        throw new Error('the work failed');
      }),
      /the work failed/,
    );
    assert.deepEqual(await row('c'), { remaining: 5, held: 0 });
    assert.equal(await hold('hc1'), undefined);
    assert.equal(await db().selectFrom('settings').select('key').where('key', '=', 'work-hc1').executeTakeFirst(), undefined);
  });

  it(`never goes below zero under parallel reservations (${onPg ? 'PostgreSQL pool' : 'SQLite'})`, async () => {
    const UNITS = 25;
    const TRIES = 80;
    await addQuota(db(), tenantId, 'race', UNITS);
    const results = await Promise.allSettled(Array.from({ length: TRIES }, (_, i) => reserve('race', `race-${i}`)));
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    const refused = results.filter((r) => r.status === 'rejected' && isDomainError(r.reason) && r.reason.code === 'QUOTA_EXHAUSTED').length;
    assert.equal(ok, UNITS);
    assert.equal(refused, TRIES - UNITS, 'every other attempt is QUOTA_EXHAUSTED, nothing else');
    assert.deepEqual(await row('race'), { remaining: 0, held: UNITS });

    // settle every hold from many places at once: each settles exactly once
    const holds = results.map((r, i) => (r.status === 'fulfilled' ? `race-${i}` : null)).filter((x): x is string => x !== null);
    const settle = await Promise.all(
      holds.flatMap((h, i) => [0, 1, 2].map((k) => p.ctx.db.tx((trx) => ((i + k) % 2 ? commitQuota(trx, h, 1) : refundQuota(trx, h, 1))))),
    );
    assert.equal(settle.filter(Boolean).length, UNITS, 'one settle per hold');
    const states = await db().selectFrom('quota_holds').select(['state']).where('service', '=', 'race').execute();
    const refunded = states.filter((s) => s.state === 'refunded').length;
    assert.equal(states.filter((s) => s.state === 'held').length, 0);
    assert.deepEqual(await row('race'), { remaining: refunded, held: 0 });
  });
});
