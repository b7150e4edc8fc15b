/**
 * Concurrency over real HTTP: many random transfers from 50 concurrent clients, double-spend
 * attempts on one wallet, and one idempotency key sent many times at once. On SQLite by default,
 * on PostgreSQL under --pg. MENHU_LEDGER_TRANSFERS sets the number of random transfers (default
 * 1,000 to keep the suite quick; 10,000 for the full run).
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { createWallet, fund, requestHash, transfer, wallet, type TransferSpec } from '../../src/services/ledger/index.js';
import { ulordEnv, type UlordEnv } from './fixture.js';

const TRANSFERS = Number(process.env.MENHU_LEDGER_TRANSFERS ?? 1000);
const CLIENTS = 50;
const WALLETS = 20;

/** Small deterministic PRNG so a failure can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

describe(`ledger under concurrency (${TRANSFERS} transfers, ${CLIENTS} clients)`, () => {
  let e: UlordEnv;
  const app = () => ({ id: e.appId, tenantId: 0, developerId: e.devId });
  before(async () => {
    e = await ulordEnv();
    const a = await e.s.ctx.db.kysely.selectFrom('apps').select('tenant_id').where('id', '=', e.appId).executeTakeFirstOrThrow();
    const ref = { ...app(), tenantId: Number(a.tenant_id) };
    for (let i = 0; i < WALLETS; i++) {
      const w = await createWallet(e.s.ctx, ref, `w${i}`, `pw${i}`);
      await fund(e.s.ctx, w, '100');
    }
  });
  afterEach(() => e.checkInvariants());
  after(() => e.s.close());

  it('random transfers: none lost, none duplicated, none negative', async () => {
    const rand = rng(42);
    const jobs = Array.from({ length: TRANSFERS }, (_, i) => {
      const from = Math.floor(rand() * WALLETS);
      let to = Math.floor(rand() * (WALLETS - 1));
      if (to >= from) to++;
      const amount = (Math.floor(rand() * 2_000_000_000) / 1e8).toFixed(8);
      return { key: `r-${i}`, body: { send_user: `w${from}`, pay_password: `pw${from}`, recv_user: `w${to}`, amount } };
    });
    const ok = new Map<string, string>();
    let refused = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        while (next < jobs.length) {
          const j = jobs[next++];
          const r = await e.ext('/transactions/paytouser/', j.body, { 'idempotency-key': j.key });
          if (r.json?.errcode === 0) ok.set(j.key, r.headers.get('x-ulord-txid')!);
          else if (r.json?.errcode === 20206) refused++;
          else assert.fail(`unexpected answer ${r.status} ${r.text}`);
        }
      }),
    );
    assert.equal(ok.size + refused, TRANSFERS);
    assert.ok(ok.size > TRANSFERS / 2, `most transfers succeed (${ok.size})`);
    const rows = await e.s.ctx.db.kysely.selectFrom('ledger_transfers').select(['idem_key', 'txid']).where('kind', '=', 'pay').execute();
    assert.equal(rows.length, ok.size, 'exactly one transfer row per successful answer');
    for (const r of rows) assert.equal(ok.get(r.idem_key), r.txid);
    // retrying a sample (successes and refusals alike) changes nothing that was paid
    const before = rows.length;
    const sample = jobs.filter((_, i) => i % 50 === 0);
    for (const j of sample) {
      const r = await e.ext('/transactions/paytouser/', j.body, { 'idempotency-key': j.key });
      if (ok.has(j.key)) assert.equal(r.headers.get('x-ulord-txid'), ok.get(j.key));
    }
    const afterRows = await e.s.ctx.db.kysely.selectFrom('ledger_transfers').select('id').where('kind', '=', 'pay').where('idem_key', 'in', [...ok.keys()]).execute();
    assert.equal(afterRows.length, before);
    let sum = 0;
    for (let i = 0; i < WALLETS; i++) sum += (await wallet(e.s.ctx, e.appId, `w${i}`)).balance;
    const paidToSampledRefusals = (await e.s.ctx.db.kysely.selectFrom('ledger_transfers').select('amount').where('kind', '=', 'pay').where('idem_key', 'not in', [...ok.keys()]).execute()).reduce((s, r) => s + Number(r.amount), 0);
    assert.ok(paidToSampledRefusals >= 0);
    assert.equal(sum, WALLETS * 100 * 1e8, 'money only moved between the wallets');
  });

  it('double spend: 50 concurrent payments from a wallet that covers 10', async () => {
    const a = await e.s.ctx.db.kysely.selectFrom('apps').select('tenant_id').where('id', '=', e.appId).executeTakeFirstOrThrow();
    const spender = await createWallet(e.s.ctx, { ...app(), tenantId: Number(a.tenant_id) }, 'spender', 'sp');
    await fund(e.s.ctx, spender, '10');
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => e.ext('/transactions/paytouser/', { send_user: 'spender', pay_password: 'sp', recv_user: `w${i % WALLETS}`, amount: '1' }, { 'idempotency-key': `ds-${i}` })),
    );
    const codes = answers.map((r) => r.json.errcode);
    assert.equal(codes.filter((c) => c === 0).length, 10);
    assert.equal(codes.filter((c) => c === 20206).length, 40);
    assert.equal((await wallet(e.s.ctx, e.appId, 'spender')).balance, 0);
  });

  it('one idempotency key sent 30 times at once pays once', async () => {
    const body = { send_user: 'w1', pay_password: 'pw1', recv_user: 'w2', amount: '0.5' };
    const before = (await wallet(e.s.ctx, e.appId, 'w2')).balance;
    const answers = await Promise.all(Array.from({ length: 30 }, () => e.ext('/transactions/paytouser/', body, { 'idempotency-key': 'same-key' })));
    const w1 = (await wallet(e.s.ctx, e.appId, 'w1')).balance;
    const ok = answers.filter((r) => r.json.errcode === 0);
    if (w1 >= 0.5e8 || ok.length) {
      assert.equal(ok.length, 30);
      assert.equal(new Set(ok.map((r) => r.headers.get('x-ulord-txid'))).size, 1);
      assert.equal((await wallet(e.s.ctx, e.appId, 'w2')).balance, before + 0.5e8);
    }
    const rows = await e.s.ctx.db.kysely.selectFrom('ledger_transfers').select('id').where('idem_key', '=', 'same-key').execute();
    assert.ok(rows.length <= 1);
  });

  it('one batch: replays, a key reused with other content, a refusal that depends on order, transfers that cancel out', async () => {
    const ctx = e.s.ctx;
    const a = await ctx.db.kysely.selectFrom('apps').select('tenant_id').where('id', '=', e.appId).executeTakeFirstOrThrow();
    const ref = { ...app(), tenantId: Number(a.tenant_id) };
    const x = await createWallet(ctx, ref, 'bx', 'px');
    const y = await createWallet(ctx, ref, 'by', 'py');
    await fund(ctx, x, '10');
    const spec = (key: string, from: number, to: number, amount: number): TransferSpec => ({
      scope: `app:${e.appId}`, key, request: requestHash(['pay', from, to, amount]), tenantId: ref.tenantId, appId: e.appId, debitId: from, creditId: to, amount, kind: 'pay',
    });
    const first = await transfer(ctx, spec('b-1', x.id, y.id, 10e8)); // x: 0, y: 10
    // submitted together, so they share a batch (or a few): the outcome must be that of running them in order
    const settle = (p: Promise<unknown>) => p.then((v) => ({ ok: true as const, v }), (err) => ({ ok: false as const, err }));
    const [replay, back, tooMuch, twinA, twinB, there, again] = await Promise.all([
      settle(transfer(ctx, spec('b-1', x.id, y.id, 10e8))), // replay of the first: pays nothing
      settle(transfer(ctx, spec('b-2', y.id, x.id, 4e8))), // x: 4, y: 6
      settle(transfer(ctx, spec('b-3', x.id, y.id, 5e8))), // x has 4: refused
      settle(transfer(ctx, spec('b-4', y.id, x.id, 1e8))), // x: 5, y: 5
      settle(transfer(ctx, spec('b-4', y.id, x.id, 2e8))), // same key, other amount: refused
      settle(transfer(ctx, spec('b-5', x.id, y.id, 3e8))), // x: 2, y: 8
      settle(transfer(ctx, spec('b-6', y.id, x.id, 3e8))), // x: 5, y: 5 (cancels b-5)
    ]);
    assert.ok(replay.ok && (replay.v as { replayed: boolean; transfer: { txid: string } }).replayed);
    assert.equal((replay.v as { transfer: { txid: string } }).transfer.txid, first.transfer.txid);
    assert.ok(back.ok && twinA.ok && there.ok && again.ok);
    assert.ok(!tooMuch.ok && (tooMuch.err as { code: string }).code === 'INSUFFICIENT_FUNDS');
    assert.ok(!twinB.ok && (twinB.err as { code: string }).code === 'PAYMENT_REFUSED');
    assert.equal((await wallet(ctx, e.appId, 'bx')).balance, 5e8);
    assert.equal((await wallet(ctx, e.appId, 'by')).balance, 5e8);
    // a batch whose transfers cancel out changes no balance but records both
    const [p, q] = await Promise.all([transfer(ctx, spec('b-7', x.id, y.id, 2e8)), transfer(ctx, spec('b-8', y.id, x.id, 2e8))]);
    assert.ok(!p.replayed && !q.replayed);
    assert.equal((await wallet(ctx, e.appId, 'bx')).balance, 5e8);
    const rows = await ctx.db.kysely.selectFrom('ledger_transfers').select('idem_key').where('idem_key', 'like', 'b-%').execute();
    assert.deepEqual(rows.map((r) => r.idem_key).sort(), ['b-1', 'b-2', 'b-4', 'b-5', 'b-6', 'b-7', 'b-8']);
  });

  it('consuming the same content from many requests at once pays once', async () => {
    const r = await e.ext('/transactions/publish/', { author: 'w3', title: 't', ipfs_hash: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o', price: '0.3', pay_password: 'pw3' });
    const claim = r.json.result.claim_id;
    const answers = await Promise.all(Array.from({ length: 20 }, () => e.ext('/transactions/consume/', { username: 'w4', claim_id: claim, customer_pay_password: 'pw4' })));
    assert.ok(answers.every((a) => a.json.errcode === 0 || a.json.errcode === 20206));
    const n = await e.s.ctx.db.kysely.selectFrom('ledger_purchases').select('id').where('customer', '=', 'w4').execute();
    assert.ok(n.length <= 1);
    const t = await e.s.ctx.db.kysely.selectFrom('ledger_transfers').select('id').where('kind', '=', 'consume').execute();
    assert.equal(t.length, n.length);
  });
});
