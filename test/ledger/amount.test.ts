import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { formatUnits, parseAmount, toUld } from '../../src/services/ledger/amount.js';
import { ledgerModule } from '../../src/modules/ledger.js';
import { balanceOf, developerAccount } from '../../src/services/ledger/index.js';
import { getDeveloper, registerDeveloper } from '../../src/services/accounts/index.js';
import { startPlatform } from '../helpers.js';
import { checkLedger } from './fixture.js';

describe('amounts', () => {
  it('parses decimal text and JSON numbers exactly', () => {
    assert.equal(parseAmount('1', 'a'), 100_000_000);
    assert.equal(parseAmount('0.00000001', 'a'), 1);
    assert.equal(parseAmount(0.1, 'a'), 10_000_000);
    assert.equal(parseAmount(0.3, 'a'), 30_000_000, 'not 0.30000000000000004');
    assert.equal(parseAmount(1.17755, 'a'), 117_755_000);
    assert.equal(parseAmount(1e-8, 'a'), 1);
    assert.equal(parseAmount('1.10000000', 'a'), 110_000_000, 'trailing zeros beyond 8 are fine when zero');
    assert.equal(parseAmount('1.100000000', 'a'), 110_000_000);
    assert.equal(parseAmount('-0.02', 'a', { signed: true }), -2_000_000);
    assert.equal(parseAmount('0', 'a', { allowZero: true }), 0);
    assert.equal(parseAmount('10000000', 'a'), 1_000_000_000_000_000);
  });

  it('refuses what is not an amount', () => {
    for (const bad of ['-1', -1, '1.000000001', 1.000000001, 'abc', '1,5', '0x10', '1e400', 'Infinity', NaN, Infinity, '', '  ', [1], { a: 1 }, true, '10000000.00000001', '1 000']) {
      assert.throws(() => parseAmount(bad, 'amount'), (e: { code: string }) => ['VALIDATION', 'MISSING_FIELD'].includes(e.code), `accepted ${JSON.stringify(bad)}`);
    }
    assert.throws(() => parseAmount(0, 'amount'), /zero/);
    assert.throws(() => parseAmount(undefined, 'amount'), (e: { code: string }) => e.code === 'MISSING_FIELD');
  });

  it('round-trips every amount with 8 places through text and through JSON numbers', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n ** 15n }), (u) => {
        const text = formatUnits(u);
        assert.equal(BigInt(parseAmount(text, 'a')), u);
        assert.equal(BigInt(parseAmount(toUld(u), 'a')), u, `${text} as a JSON number`);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('demo', () => {
  it("funds the demo admin's developer account with 1,000 ULD, once", async () => {
    const p = await startPlatform();
    try {
      // the ledger module's demo hook as seedDemo runs it (twice: the funding key makes it once)
      const admin = await registerDeveloper(p.ctx, { username: 'admin', password: 'admin', role: 'admin' });
      await ledgerModule.demo!(p.ctx, { tenantId: admin.tenantId, adminId: admin.id });
      await ledgerModule.demo!(p.ctx, { tenantId: admin.tenantId, adminId: admin.id });
      const acct = await developerAccount(p.ctx, (await getDeveloper(p.ctx, admin.id))!);
      assert.equal((await balanceOf(p.ctx, acct.id)).total, 1000 * 1e8);
      await checkLedger(p);
    } finally {
      await p.close();
    }
  });
});
