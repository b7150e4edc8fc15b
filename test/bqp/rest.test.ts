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
import sharp from 'sharp';
import { objectsOf } from '../../src/modules/objects.js';
import { upload } from '../../src/services/objects/files.js';
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
  Shop:
    fields: [id, name(s), status(2), picId, pics(m), note(l), createTm]
    required: [name]
    readonly: [createTm]
    enum:
      status: { OP: 营业, CL: 关闭 }
    subobj:
      log: { obj: ShopLog, fk: shopId }
    statusLog: { obj: ShopLog, fk: shopId, action: action, tm: tm }
  ShopLog:
    fields: [id, shopId, action(2), tm]
  Other:
    fields: [id, attId]
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
      ['Item', 'Other', 'Owned', 'Sealed', 'Shop', 'ShopLog'],
    );
    const item = r.json[0];
    const f = Object.fromEntries(item.fields.map((x: { name: string }) => [x.name, x]));
    assert.deepEqual(Object.keys(f), ['id', 'name', 'price', 'kind', 'secret', 'ownerId', 'createTm']);
    assert.deepEqual(f.name, { name: 'name', type: 'text', length: 20, required: true, readonly: false, readonly_for: [], hidden: false, password: false, enum: null, attachment: false });
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

  const send = (c: NativeCreds | Record<string, string>, path: string, body: unknown) =>
    http(`${s.url}/rest/v1/objects${path}`, { method: 'PATCH', headers: { 'content-type': 'application/json', ...('key' in c ? bearer(c as NativeCreds) : (c as Record<string, string>)) }, body: JSON.stringify(body) });
  const table = (n: string) => objectsOf(s.ctx).schema.objects.get(n)!.table;
  const addShop = async (name: string) => Number((await (s.ctx.db.kysely as any).insertInto(table('Shop')).values({ name, status: 'OP', createTm: '2026-11-23 12:00:00' }).returning('id').executeTakeFirstOrThrow()).id);

  it('edits a row through the Obj.set rules and answers it as read back', async () => {
    const id = await addShop('north');
    const r = await send(op, `/Shop/rows/${id}`, { name: 'north 2', status: 'CL', note: 'closed for winter' });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { id, name: 'north 2', status: 'CL', picId: null, pics: null, note: 'closed for winter', createTm: '2026-11-23 12:00:00' });
    // the status log entry Obj.set writes
    const log = await (s.ctx.db.kysely as any).selectFrom(table('ShopLog')).selectAll().where('shopId', '=', id).execute();
    assert.deepEqual(
      log.map((l: { action: string }) => l.action),
      ['CL'],
    );
    // a developer session of an operator edits too; null clears a field
    const dev = await send(opCookie, `/Shop/rows/${id}`, { note: null });
    assert.equal(dev.status, 200, dev.text);
    assert.equal(dev.json.note, null);
    assert.equal((await get(op, `/Shop/rows?cond=${q(`id=${id}`)}`)).json.items[0].name, 'north 2');
  });

  it('refuses bad edits with the field named, and changes nothing', async () => {
    const id = await addShop('south');
    const row = async () => (await (s.ctx.db.kysely as any).selectFrom(table('Shop')).selectAll().where('id', '=', id).executeTakeFirstOrThrow()) as Record<string, unknown>;
    const before = await row();
    const cases: [string, unknown, number, string, string | undefined][] = [
      [`/Shop/rows/${id}`, { createTm: '2026-01-01 00:00:00' }, 403, 'FORBIDDEN', 'createTm'],
      [`/Shop/rows/${id}`, { id: 99 }, 403, 'FORBIDDEN', 'id'],
      [`/Shop/rows/${id}`, { status: 'XX' }, 400, 'VALIDATION', 'status'],
      [`/Shop/rows/${id}`, { name: 'ok', picId: 'abc' }, 400, 'VALIDATION', 'picId'],
      [`/Shop/rows/${id}`, { name: null }, 400, 'VALIDATION', 'name'],
      [`/Shop/rows/${id}`, { name: 'x'.repeat(21) }, 400, 'VALIDATION', 'name'],
      [`/Shop/rows/${id}`, { nosuch: 1 }, 400, 'UNKNOWN_FIELD', 'nosuch'],
      [`/Shop/rows/${id}`, { log: 'x' }, 400, 'UNKNOWN_FIELD', 'log'],
      [`/Shop/rows/${id}`, { name: ['a'] }, 400, 'VALIDATION', undefined],
      [`/Shop/rows/${id}`, {}, 400, 'VALIDATION', undefined],
      [`/Shop/rows/${id}`, [], 400, 'VALIDATION', undefined],
      [`/Shop/rows/999999`, { name: 'ghost' }, 404, 'NOT_FOUND', undefined],
      [`/Shop/rows/0`, { name: 'ghost' }, 400, 'VALIDATION', undefined],
      [`/Shop/rows/2147483648`, { name: 'ghost' }, 400, 'VALIDATION', undefined],
      [`/Nope/rows/1`, { name: 'ghost' }, 404, 'NOT_FOUND', undefined],
      [`/Owned/rows/1`, { title: 'x' }, 403, 'FORBIDDEN', undefined],
    ];
    for (const [path, body, status, code, field] of cases) {
      const r = await send(op, path, body);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
      assert.equal(r.json.code, code, JSON.stringify(body));
      assert.equal(r.json.field, field, JSON.stringify(body));
    }
    const tenantTry = await send(tenant, `/Shop/rows/${id}`, { name: 'tenant' });
    assert.equal(tenantTry.status, 403);
    assert.equal((await http(`${s.url}/rest/v1/objects/Shop/rows/${id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: '{"name":"anon"}' })).status, 401);
    assert.deepEqual(await row(), before);
  });

  it('stores injection-looking values as data', async () => {
    const id = await addShop('west');
    const evil = "x'); delete from bqp_Shop; --";
    const r = await send(op, `/Shop/rows/${id}`, { name: evil.slice(0, 20), note: `${evil} ' or 1=1 -- \\ %_` });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.name, evil.slice(0, 20));
    assert.equal(r.json.note, `${evil} ' or 1=1 -- \\ %_`);
    const stored = await (s.ctx.db.kysely as any).selectFrom(table('Shop')).select(['name', 'note']).where('id', '=', id).executeTakeFirstOrThrow();
    assert.deepEqual(stored, { name: evil.slice(0, 20), note: `${evil} ' or 1=1 -- \\ %_` });
    assert.ok(Number((await (s.ctx.db.kysely as any).selectFrom(table('Shop')).select((e: any) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n) >= 3);
  });

  it('serves the files a row refers to, with their stored type, to operators only', async () => {
    const png = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#c33' } }).png().toBuffer();
    const [pic] = await upload(s.ctx, [{ name: '门店.png', data: png }], { genThumb: true, autoResize: false, by: null });
    const [doc, loose] = await upload(s.ctx, [{ name: 'menu.txt', data: Buffer.from('<script>alert(1)</script>') }, { name: 'loose.txt', data: Buffer.from('nobody refers to me') }], { genThumb: false, autoResize: false, by: null });
    const id = await addShop('east');
    const ed = await send(op, `/Shop/rows/${id}`, { picId: pic.id, pics: `${doc.id}` });
    assert.equal(ed.status, 200, ed.text);
    const shop = (await get(tenant, '/Shop')).json;
    assert.deepEqual(
      shop.fields.filter((f: { attachment: boolean }) => f.attachment).map((f: { name: string }) => f.name),
      ['picId', 'pics'],
    );

    const img = await fetch(`${s.url}/rest/v1/objects/Shop/attachments/${pic.id}`, { headers: bearer(op) });
    assert.equal(img.status, 200);
    assert.equal(img.headers.get('content-type'), 'image/png');
    assert.equal(img.headers.get('x-content-type-options'), 'nosniff');
    assert.match(img.headers.get('content-disposition') ?? '', /^filename=.*filename\*=UTF-8''%E9%97%A8%E5%BA%97\.png$/);
    assert.deepEqual(Buffer.from(await img.arrayBuffer()), png);
    // revalidation: the same ETag answers 304 without the bytes; another one gets them
    const etag = img.headers.get('etag')!;
    const again = await fetch(`${s.url}/rest/v1/objects/Shop/attachments/${pic.id}`, { headers: { ...bearer(op), 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.equal(again.headers.get('etag'), etag);
    assert.equal((await again.arrayBuffer()).byteLength, 0);
    assert.equal((await fetch(`${s.url}/rest/v1/objects/Shop/attachments/${pic.id}`, { headers: { ...bearer(op), 'if-none-match': '"other"' } })).status, 200);
    assert.equal((await fetch(`${s.url}/rest/v1/objects/Shop/attachments/${pic.id}`, { headers: { 'if-none-match': etag } })).status, 401, 'no 304 without credentials');
    const thumb = await fetch(`${s.url}/rest/v1/objects/Shop/attachments/${pic.id}?thumb=true`, { headers: opCookie });
    assert.equal(thumb.status, 200);
    assert.equal(thumb.headers.get('content-type'), 'image/jpeg');
    assert.equal((await sharp(Buffer.from(await thumb.arrayBuffer())).metadata()).format, 'jpeg');

    const txt = await fetch(`${s.url}/rest/v1/objects/Shop/attachments/${doc.id}`, { headers: bearer(op) });
    assert.equal(txt.status, 200);
    assert.equal(txt.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(txt.headers.get('content-disposition'), 'attachment; filename="menu.txt"');
    assert.equal(txt.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(await txt.text(), '<script>alert(1)</script>');

    const refused: [string, NativeCreds | Record<string, string>, number, string][] = [
      [`/Shop/attachments/${loose.id}`, op, 404, 'NOT_FOUND'], // stored, but no Shop row refers to it
      [`/Other/attachments/${pic.id}`, op, 404, 'NOT_FOUND'], // another object's file
      [`/Shop/attachments/999999`, op, 404, 'NOT_FOUND'],
      [`/Item/attachments/${pic.id}`, op, 404, 'NOT_FOUND'], // no attachment fields
      [`/Nope/attachments/${pic.id}`, op, 404, 'NOT_FOUND'],
      [`/Shop/attachments/abc`, op, 400, 'VALIDATION'],
      [`/Shop/attachments/2147483648`, op, 400, 'VALIDATION'],
      [`/Shop/attachments/${pic.id}?thumb=maybe`, op, 400, 'VALIDATION'],
      [`/Shop/attachments/${pic.id}`, tenant, 403, 'FORBIDDEN'],
    ];
    for (const [path, who, status, code] of refused) {
      const r = await get(who, path);
      assert.equal(r.status, status, `${path}: ${r.text}`);
      assert.equal(r.json.code, code, path);
    }
    // a file one row's list names, by its exact id only (not a prefix)
    await send(op, `/Shop/rows/${id}`, { pics: `${doc.id}1,${doc.id}2` });
    assert.equal((await get(op, `/Shop/attachments/${doc.id}`)).status, 404);
    assert.equal((await http(`${s.url}/rest/v1/objects/Shop/attachments/${pic.id}`)).status, 401);
  });
});
