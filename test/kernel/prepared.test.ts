/** core/db prepared(): a query compiled once, run with new parameters, on SQLite and PostgreSQL. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { prepared } from '../../src/core/db/index.js';
import { createTenant } from '../../src/services/accounts/index.js';
import { startPlatform, type TestPlatform } from '../helpers.js';

describe('prepared queries', () => {
  let p: TestPlatform;
  before(async () => {
    p = await startPlatform();
  });
  after(() => p.close());

  it('binds new values on every run and matches the builder', async () => {
    const names = ['alpha', "o'brien; drop table tenants --", 'gamma \\ back\\slash %_', 'δέλτα'];
    const made = [];
    for (const n of names) made.push(await createTenant(p.ctx, n));
    const byName = prepared<{ name: string }, { id: number; name: string }>((db, q) => db.selectFrom('tenants').select(['id', 'name']).where('name', '=', q.name));
    for (const t of made) {
      const rows = await byName(p.ctx.db.kysely, { name: t.name });
      assert.deepEqual(rows.map((r) => [Number(r.id), r.name]), [[Number(t.id), t.name]]);
    }
    assert.deepEqual(await byName(p.ctx.db.kysely, { name: 'nobody' }), []);
    // the table is intact after a value that reads like SQL
    assert.equal((await p.ctx.db.kysely.selectFrom('tenants').select('id').where('name', 'in', names).execute()).length, names.length);
  });

  it('keeps constants of the query and swaps only the placeholders (several, any order)', async () => {
    const a = await createTenant(p.ctx, 'range-a');
    const b = await createTenant(p.ctx, 'range-b');
    const q = prepared<{ lo: number; hi: number; n: number }, { id: number }>((db, x) =>
      db.selectFrom('tenants').select('id').where('name', 'like', 'range-%').where('id', '>=', x.lo).where('id', '<=', x.hi).orderBy('id').limit(x.n),
    );
    const ids = async (lo: number, hi: number, n: number) => (await q(p.ctx.db.kysely, { lo, hi, n })).map((r) => Number(r.id));
    assert.deepEqual(await ids(Number(a.id), Number(b.id), 10), [Number(a.id), Number(b.id)]);
    assert.deepEqual(await ids(Number(a.id), Number(b.id), 1), [Number(a.id)]);
    assert.deepEqual(await ids(Number(b.id), Number(b.id), 10), [Number(b.id)]);
  });

  it('refuses a placeholder that Kysely would transform instead of binding', async () => {
    const bad = prepared<{ name: string }, { id: number }>((db, x) => db.selectFrom('tenants').select('id').where('name', '=', `prefix-${x.name}`));
    await assert.rejects(bad(p.ctx.db.kysely, { name: 'a' }), /was transformed/);
  });
});
