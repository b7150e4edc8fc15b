/**
 * Native REST for declared objects (/rest/v1/objects) against a real server with a schema file of
 * its own: the objects with their fields and rules for any caller; rows for operators only, read
 * through the objects service's query path (the admin role's rules and row filter, hidden fields,
 * `cond` compiled to parameterised SQL), with cursor paging and a total on the first page.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { objectsOf } from '../../src/modules/objects.js';
import { registerDeveloper } from '../../src/services/accounts/index.js';
import { bearer, http, operatorCreds, startServer, tenantWithApp, type NativeCreds, type TestServer } from '../helpers.js';

const SCHEMA = `
objects:
  Item:
    fields: [id, name(s), price(n), kind(2), secret(s), ownerId, createTm]
    required: [name]
    readonly: [createTm]
    hidden: [secret]
    enum:
      kind: { A: 甲类, B: 乙类 }
    acl:
      guest: { ops: [get, query] }
      user: { ops: [get, query, add], filter: { ownerId: uid }, readonly: [price] }
  Owned:
    fields: [id, title(m), ownerId]
    acl:
      admin: { ops: [get, query], filter: { ownerId: adminId } }
  Sealed:
    fields: [id, code(s)]
    acl:
      admin: { ops: [add] }
`;

describe('native REST: declared objects', () => {
  let s: TestServer;
  let dir: string;
  let op: NativeCreds;
  let tenant: NativeCreds;
  let opCookie: Record<string, string>;
  let opDevId: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'menhu-objects-rest-'));
    writeFileSync(join(dir, 'schema.yaml'), SCHEMA);
    s = await startServer({ env: { MENHU_BQP_SCHEMA: join(dir, 'schema.yaml') } });
    op = await operatorCreds(s.ctx);
    const t = await tenantWithApp(s.ctx, 'objects tenant');
    tenant = t.creds;
    const dev = await registerDeveloper(s.ctx, { username: 'objects-op', password: 'objects-pass', role: 'admin', tenantId: t.tenantId });
    opDevId = dev.id;
    const login = await http(`${s.url}/rest/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'objects-op', password: 'objects-pass' }) });
    opCookie = { cookie: (login.headers.get('set-cookie') ?? '').split(';')[0] };
    const db = s.ctx.db.kysely as any;
    const table = (n: string) => objectsOf(s.ctx).schema.objects.get(n)!.table;
    for (let i = 1; i <= 25; i++) await db.insertInto(table('Item')).values({ name: `item ${i}`, price: i * 150, kind: i % 2 ? 'A' : 'B', secret: `s3cret-${i}`, ownerId: i % 3, createTm: '2026-11-23 12:00:00' }).execute();
    for (const [title, ownerId] of [['mine', opDevId], ['theirs', opDevId + 1000]] as const) await db.insertInto(table('Owned')).values({ title, ownerId }).execute();
  });
  after(async () => {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const get = (c: NativeCreds | Record<string, string>, path: string) => http(`${s.url}/rest/v1/objects${path}`, { headers: 'key' in c ? bearer(c as NativeCreds) : (c as Record<string, string>) });
  const q = (cond: string) => encodeURIComponent(cond);

  it('lists the declared objects with their fields, rules and operations per role, for any caller', async () => {
    const r = await get(tenant, '');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(
      r.json.map((o: { name: string }) => o.name),
      ['Item', 'Owned', 'Sealed'],
    );
    const item = r.json[0];
    const f = Object.fromEntries(item.fields.map((x: { name: string }) => [x.name, x]));
    assert.deepEqual(Object.keys(f), ['id', 'name', 'price', 'kind', 'secret', 'ownerId', 'createTm']);
    assert.deepEqual(f.name, { name: 'name', type: 'text', length: 20, required: true, readonly: false, readonly_for: [], hidden: false, password: false, enum: null });
    assert.deepEqual([f.id.type, f.id.readonly], ['id', true]);
    assert.deepEqual([f.price.type, f.price.readonly_for], ['dec', ['user']]);
    assert.deepEqual([f.createTm.type, f.createTm.readonly], ['datetime', true]);
    assert.equal(f.secret.hidden, true);
    assert.deepEqual(f.kind.enum, { A: '甲类', B: '乙类' });
    assert.deepEqual(item.operations, { guest: ['get', 'query'], user: ['add', 'get', 'query'], employee: ['get', 'query'], admin: ['add', 'get', 'set', 'del', 'query', 'setIf', 'delIf', 'batchAdd', 'dup', 'batchSet', 'batchDel'] });
    assert.deepEqual(item.row_filters, { user: { ownerId: 'uid' } });
    const owned = (await get(tenant, '/Owned')).json;
    assert.deepEqual(owned.operations.admin, ['get', 'query']);
    assert.deepEqual(owned.row_filters, { admin: { ownerId: 'adminId' } });
    assert.equal((await get(tenant, '/Nope')).status, 404);
    assert.equal((await get(tenant, '/lower')).status, 400);
    assert.equal((await http(`${s.url}/rest/v1/objects`)).status, 401);
  });

  it('reads rows for operators only, page by page with a total on the first page', async () => {
    const refused = await get(tenant, '/Item/rows');
    assert.equal(refused.status, 403);
    assert.equal(refused.json.code, 'FORBIDDEN');

    const first = await get(op, '/Item/rows?limit=10');
    assert.equal(first.status, 200, first.text);
    assert.deepEqual(first.json.columns, ['id', 'name', 'price', 'kind', 'ownerId', 'createTm'], 'the hidden field is not read');
    assert.equal(first.json.total, 25);
    assert.deepEqual(first.json.items[0], { id: 1, name: 'item 1', price: '1.50', kind: 'A', ownerId: 1, createTm: '2026-11-23 12:00:00' });
    const ids: number[] = first.json.items.map((r: { id: number }) => r.id);
    let cursor: string | null = first.json.next_cursor;
    while (cursor) {
      const page = await get(op, `/Item/rows?limit=10&cursor=${cursor}`);
      assert.equal(page.status, 200, page.text);
      assert.equal(page.json.total, null);
      ids.push(...page.json.items.map((r: { id: number }) => r.id));
      cursor = page.json.next_cursor;
    }
    assert.deepEqual(ids, Array.from({ length: 25 }, (_, i) => i + 1));

    // a developer session of an operator reads the same way
    const dev = await get(opCookie, `/Item/rows?cond=${q("kind='B' and price>=15")}&orderby=${q('price desc')}&res=${q('id,name,price')}`);
    assert.equal(dev.status, 200, dev.text);
    assert.deepEqual(
      dev.json.items.map((r: { id: number }) => r.id),
      [24, 22, 20, 18, 16, 14, 12, 10],
    );
    assert.deepEqual(dev.json.columns, ['id', 'name', 'price']);
    assert.equal(dev.json.total, 8);
    const like = await get(op, `/Item/rows?cond=${q("name like '%item 2%'")}`);
    assert.deepEqual(
      like.json.items.map((r: { name: string }) => r.name),
      ['item 2', 'item 20', 'item 21', 'item 22', 'item 23', 'item 24', 'item 25'],
    );
  });

  it("applies the admin role's rules: its row filter, and operations it lacks", async () => {
    const mine = await get(opCookie, '/Owned/rows');
    assert.equal(mine.status, 200, mine.text);
    assert.deepEqual(
      mine.json.items.map((r: { title: string }) => r.title),
      ['mine'],
    );
    // an operator app has no admin id for the filter to bind: refused, not unfiltered
    assert.equal((await get(op, '/Owned/rows')).status, 403);
    const sealed = await get(op, '/Sealed/rows');
    assert.equal(sealed.status, 403);
    assert.equal(sealed.json.code, 'FORBIDDEN');
  });

  it('refuses bad conditions and paging without touching the data', async () => {
    const count = async () => Number((await (s.ctx.db.kysely as any).selectFrom(objectsOf(s.ctx).schema.objects.get('Item')!.table).select((e: any) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const before = await count();
    const cases: [string, number, string][] = [
      [`/Item/rows?cond=${q("secret like 's3cret%'")}`, 400, 'UNKNOWN_FIELD'],
      [`/Item/rows?orderby=secret`, 400, 'UNKNOWN_FIELD'],
      [`/Item/rows?res=secret`, 400, 'UNKNOWN_FIELD'],
      [`/Item/rows?cond=${q('nosuch=1')}`, 400, 'UNKNOWN_FIELD'],
      [`/Item/rows?cond=${q("name='x'; delete from bqp_Item")}`, 403, 'FORBIDDEN'],
      [`/Item/rows?cond=${q("name='x' union select secret from bqp_Item")}`, 403, 'FORBIDDEN'],
      [`/Item/rows?cond=${q("name='x' or 1=1 --")}`, 403, 'FORBIDDEN'],
      [`/Item/rows?cond=${q("name=(select secret from bqp_Item)")}`, 403, 'FORBIDDEN'],
      [`/Item/rows?cond=${q("name='unterminated")}`, 400, 'VALIDATION'],
      ['/Item/rows?cursor=abc', 400, 'VALIDATION'],
      ['/Item/rows?cursor=-1', 400, 'VALIDATION'],
      ['/Item/rows?limit=0', 400, 'VALIDATION'],
      ['/Item/rows?limit=5000', 400, 'VALIDATION'],
      ['/Item/rows?pagesz=10', 400, 'VALIDATION'],
      ['/Nope/rows', 404, 'NOT_FOUND'],
    ];
    for (const [path, status, code] of cases) {
      const r = await get(op, path);
      assert.equal(r.status, status, `${path}: ${r.text}`);
      assert.equal(r.json.code, code, path);
      assert.doesNotMatch(r.text, /s3cret/, path);
    }
    // a quote in a literal is a value, not SQL
    const quoted = await get(op, `/Item/rows?cond=${q("name='it''s' or name='item 3'")}`);
    assert.equal(quoted.status, 200, quoted.text);
    assert.deepEqual(
      quoted.json.items.map((r: { id: number }) => r.id),
      [3],
    );
    assert.equal(await count(), before);
  });
});
