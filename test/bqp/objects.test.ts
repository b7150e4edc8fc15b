/**
 * Declared objects: schema parsing and type inference (bqp.md §3.2), table creation and alteration
 * on the configured engine, value conversions, batchAdd, and the BQP routes living beside the
 * MiningLamp (/api/v1/…) and Fangtang (/api/third/…) routes.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { objectsModule } from '../../src/modules/objects.js';
import { syncSchema } from '../../src/services/objects/ddl.js';
import sharp from 'sharp';
import { decToInt, normDate } from '../../src/services/objects/expr.js';
import { outValue } from '../../src/services/objects/query.js';
import { loadSchemaFile, parseFieldDecl, parseSchema, SchemaError } from '../../src/services/objects/schema.js';
import { startPlatform, type TestServer } from '../helpers.js';
import { Client, startBqp } from './client.js';

describe('schema file', () => {
  it('infers types from names as JDCloud upglib does', () => {
    const t = (d: string) => {
      const f = parseFieldDecl(d);
      return `${f.name}:${f.type}${f.len ? `(${f.len})` : ''}`;
    };
    assert.deepEqual(
      ['id', 'name(s)', 'dscr(l)', 'code(16)', 'req(t)', 'price(n)', 'qty(i)', 'startTm(tm)', 'birth(date)', 'done(flag)', 'cnt&', 'fee@', 'ratio#', 'f!'].map(t),
      ['id:id', 'name:text(20)', 'dscr:text(255)', 'code:text(16)', 'req:text', 'price:dec', 'qty:int', 'startTm:datetime', 'birth:date', 'done:flag', 'cnt:int', 'fee:dec', 'ratio:real', 'f:real'],
    );
    assert.deepEqual(
      ['amount', 'total2', 'unitPrice', 'userId', 'logCnt', '订单编号', 'createTm', 'tm', '下单时间', 'payDt', '生日日期', '是否有效', 'delFlag', 'uname'].map(t),
      ['amount:dec', 'total2:dec', 'unitPrice:dec', 'userId:int', 'logCnt:int', '订单编号:int', 'createTm:datetime', 'tm:datetime', '下单时间:datetime', 'payDt:date', '生日日期:date', '是否有效:flag', 'delFlag:flag', 'uname:text(50)'],
    );
    assert.throws(() => parseFieldDecl('x(zz)'), SchemaError);
  });

  it('refuses bad declarations with a message naming the place', () => {
    const bad = (o: unknown, re: RegExp) => assert.throws(() => parseSchema(o), (e: unknown) => e instanceof SchemaError && re.test((e as Error).message));
    bad({ objects: { lower: { fields: ['id'] } } }, /upper-case/);
    bad({ objects: { A: { fields: ['id', 'x', 'x'] } } }, /declared twice/);
    bad({ objects: { A: { fields: ['id'], required: ['nope'] } } }, /A\.required: no field nope/);
    bad({ objects: { A: { fields: ['id'], acl: { god: {} } } } }, /unknown role god/);
    bad({ objects: { A: { fields: ['id', 'bId'], acl: { user: { filter: { bId: 'nobody' } } } } } }, /session variable/);
    bad({ objects: { A: { fields: ['id'], subobj: { items: { obj: 'B', fk: 'aId' } } } } }, /no object B/);
    bad({ objects: { A: { fields: ['id', 'bId'], joins: { b: { obj: 'B', on: 'bId' } }, vcols: { bName: { join: 'b', field: 'name' } } }, B: { fields: ['id', 'pwd'], hidden: ['pwd'] } } }, /no visible field B\.name/);
    bad({ objects: { A: { fields: ['id'], table: 'x; drop' } } }, /bad table name/);
    bad({ apiLog: 'Nope', objects: {} }, /apiLog: no object Nope/);
    bad({ objects: { A: { fields: ['id'], methods: { query: {} } } } }, /A\.methods\.query: a method name/);
    bad({ objects: { A: { fields: ['id'], methods: { Big: {} } } } }, /A\.methods\.Big: a method name/);
    bad({ objects: { A: { fields: ['id'], methods: { m: { op: 'del' } } } } }, /A\.methods\.m\.op: query or get/);
    bad({ objects: { A: { fields: ['id'], methods: { m: { params: ['x'], where: { nope: 'x' } } } } } }, /A\.methods\.m\.where: no field nope/);
    bad({ objects: { A: { fields: ['id', 'x'], methods: { m: { where: { x: 'y' } } } } } }, /y is not one of the method's params/);
    bad({ objects: { A: { fields: ['id'], methods: { m: { set: { gcond: '1' } } } } } }, /gcond cannot be fixed/);
    bad({ objects: { A: { fields: ['id'], acl: { user: { ops: ['query', 'mine'] } } } } }, /unknown operation mine/);
  });

  it('the shipped example declares the model of bqp.md §3.3 and the seed\'s Store', () => {
    const s = loadSchemaFile(join(import.meta.dirname, '../../examples/bqp-schema.yaml'));
    for (const o of ['User', 'Employee', 'Ordr', 'OrderLog', 'OrderAtt', 'ApiLog', 'Store']) assert.ok(s.objects.has(o), o);
    assert.equal(s.objects.get('Ordr')!.fields.get('amount')!.type, 'dec');
    assert.ok(s.objects.get('Store')!.fields.has('pause'));
    assert.deepEqual([...s.objects.get('Ordr')!.subobj.keys()], ['orderLog', 'atts']);
  });
});

describe('conversions', () => {
  it('decimals are exact hundredths in and fixed-point strings out', () => {
    assert.equal(decToInt('10', 2), 1000);
    assert.equal(decToInt('128.005', 2), 12801);
    assert.equal(decToInt('-0.5', 2), -50);
    assert.equal(decToInt(0.1 + 0.2, 2), 30);
    assert.equal(decToInt('1e3', 2), 100000);
    assert.equal(decToInt('abc', 2), null);
    assert.equal(decToInt('', 2), null);
    assert.equal(outValue(12800, { k: 'num', scale: 2, real: false }), '128.00');
    assert.equal(outValue(-5, { k: 'num', scale: 2, real: false }), '-0.05');
    assert.equal(outValue('250000', { k: 'num', scale: 4, real: false }), '25.0000');
    assert.equal(outValue('42', { k: 'num', scale: 0, real: false }), 42);
  });
  it('dates are normalised so text comparison orders them', () => {
    assert.equal(normDate('2017-9-1', 'datetime'), '2017-09-01 00:00:00');
    assert.equal(normDate('2017/9/1 8:5', 'datetime'), '2017-09-01 08:05:00');
    assert.equal(normDate('2017-9-1 10:00:00', 'date'), '2017-09-01');
    assert.equal(normDate('not a date', 'date'), 'not a date');
  });
});

describe('tables from the schema file', () => {
  it('creates tables, then adds declared columns without touching data (the migrate hook)', async () => {
    const p = await startPlatform();
    try {
      const file = join(p.dataDir, 'schema.yaml');
      writeFileSync(file, 'objects:\n  Item:\n    fields: [id, name(s), price]\n');
      const first = await objectsModule.schema!(p.ctx.db, { ...p.config, bqpSchema: file });
      assert.deepEqual(first, ['create table bqp_Item']);
      await p.ctx.db.kysely.insertInto('bqp_Item' as never).values({ name: 'a', price: 150 } as never).execute();
      writeFileSync(file, 'objects:\n  Item:\n    fields: [id, name(s), price, stockCnt, updateTm]\n');
      const second = await syncSchema(p.ctx.db, loadSchemaFile(file));
      assert.deepEqual(second, ['add column bqp_Item.stockCnt', 'add column bqp_Item.updateTm']);
      assert.deepEqual(await syncSchema(p.ctx.db, loadSchemaFile(file)), []);
      const rows = await p.ctx.db.kysely.selectFrom('bqp_Item' as never).selectAll().execute();
      assert.deepEqual(rows, [{ id: 1, name: 'a', price: 150, stockCnt: null, updateTm: null }]);
    } finally {
      await p.close();
    }
  });
});

describe('BQP beside the other dialects, batchAdd, HTML escaping', () => {
  let s: TestServer;
  let B: string;
  before(async () => {
    ({ s, B } = await startBqp());
  });
  after(async () => {
    await s.close();
  });

  it('the MiningLamp (/api/v1/…) and Fangtang (/api/third/…) routes keep winning over /api/:call', async () => {
    const ml = await fetch(`${s.url}/api/v1/generateqr/R1`, { method: 'POST', body: new URLSearchParams({ user: 'nobody', passcode: 'x' }) });
    const mlText = await ml.text();
    assert.ok(!mlText.startsWith('['), `MiningLamp answered in BQP words: ${mlText}`);
    assert.notEqual(ml.status, 200);
    const ft = await fetch(`${s.url}/api/third/photo/upload`, { method: 'POST' });
    const ftBody: unknown = await ft.json();
    assert.ok(!Array.isArray(ftBody), `Fangtang answered in BQP words: ${JSON.stringify(ftBody)}`);
    const r: unknown = await (await fetch(`${B}/Store.query?res=id&pagesz=1`)).json();
    assert.deepEqual(r, [0, { h: ['id'], d: [[1]], nextkey: 1 }]);
    // unknown paths under /api answer in BQP words, never a 404 page
    assert.equal(((await (await fetch(`${s.url}/api/nothing/here`)).json()) as number[])[0], 1);
  });

  it('batchAdd from JSON list and from a text table, in one transaction', async () => {
    const c = new Client(B);
    const r = await c.call('/ApiLog.batchAdd', { json: { list: [{ ac: 'ba1', addr: 'x' }, { ac: 'ba2' }] } });
    assert.equal(r[0], 0);
    assert.equal(r[1].cnt, 2);
    const t = await c.call('/ApiLog.batchAdd?title=ac,-,addr', { method: 'POST', body: 'ba3\tskip\tA3\nba4\tskip\tA4\n', headers: { 'content-type': 'text/plain' } });
    assert.equal(t[1].cnt, 2);
    assert.equal((await c.call(`/ApiLog.get?id=${t[1].idList[1]}`))[1].addr, 'A4');
    // a bad row: nothing of the batch is stored
    const bad = await c.call('/ApiLog.batchAdd', { json: { list: [{ ac: 'ba5' }, { addr: 'no ac' }] } });
    assert.equal(bad[0], 1);
    assert.deepEqual((await c.call(`/ApiLog.query?${new URLSearchParams({ res: 'id', cond: "ac='ba5'" })}`))[1].d, []);
  });

  it('escapes < and > in stored text like the reference; cond compares with the stored form', async () => {
    const c = new Client(B);
    const id = (await c.call('/ApiLog.add', { form: { ac: 'x<y>', addr: '<script>' } }))[1];
    const g = await c.call(`/ApiLog.get?id=${id}&res=ac,addr`);
    assert.deepEqual(g[1], { ac: 'x&lt;y&gt;', addr: '&lt;script&gt;' });
  });

  it('type errors and enum checks on write are parameter errors', async () => {
    const emp = new Client(B);
    await emp.call('/login?_app=emp', { form: { uname: 'emp', pwd: '1234' } });
    assert.equal((await emp.call('/Ordr.add?_app=emp', { form: { amount: 'lots', dscr: 'x' } }))[0], 1);
    assert.equal((await emp.call('/Ordr.add?_app=emp', { form: { status: 'ZZ', dscr: 'x' } }))[0], 1);
    assert.equal((await emp.call('/Ordr.add?_app=emp', { form: { createTm: 'yesterday', dscr: 'x' } }))[0], 1);
    assert.equal((await emp.call('/Ordr.add?_app=emp', { form: { nosuch: '1', dscr: 'x' } }))[0], 3);
    const id = (await emp.call('/Ordr.add?_app=emp', { form: { amount: '99.999', dscr: 'x', createTm: '2020-1-2 3:4' } }))[1];
    const o = (await emp.call(`/Ordr.get?id=${id}&_app=emp`))[1];
    assert.equal(o.amount, '100.00');
    assert.equal(o.createTm, '2020-01-02 03:04:00');
    // decimals and dates compare as values in cond
    const q = await emp.call(`/Ordr.query?${new URLSearchParams({ res: 'id', cond: `amount>=99.995 and amount<100.01 and createTm<'2020-1-3' and id=${id}`, _app: 'emp' })}`);
    assert.deepEqual(q[1].d, [[id]]);
    const sum = await emp.call(`/Ordr.query?${new URLSearchParams({ res: 'sum(amount) s, avg(amount) a, count(*) n', cond: `id=${id}`, fmt: 'one', _app: 'emp' })}`);
    assert.deepEqual(sum[1], { s: '100.00', a: 100, n: 1 });
  });
});

describe('upload bounds and admin login', () => {
  let s: TestServer;
  let B: string;
  before(async () => {
    ({ s, B } = await startBqp({ config: { uploadLimit: 64 * 1024 } }));
  });
  after(async () => {
    await s.close();
  });

  it('refuses files over the size limit, unknown types, unreadable and oversized images; stores nothing then', async () => {
    const c = new Client(B);
    await c.call('/login', { form: { uname: 'rtest', pwd: '1234' } });
    const files = async () => (await s.ctx.db.kysely.selectFrom('bqp_files').select('id').execute()).length;
    const up = (name: string, data: Buffer | string) => {
      const fd = new FormData();
      fd.append('ok', new Blob(['fine']), 'ok.txt');
      fd.append('file', new Blob([data]), name);
      return c.call('/upload', { method: 'POST', body: fd });
    };
    assert.equal((await up('big.txt', Buffer.alloc(100 * 1024, 97)))[0], 1);
    assert.equal((await up('x.exe', 'MZ'))[0], 1);
    assert.equal((await up('fake.jpg', 'not an image'))[0], 1);
    // 9000 x 5000 = 45 Mpixel, a few KB as PNG
    const huge = await sharp({ create: { width: 9000, height: 5000, channels: 3, background: { r: 0, g: 0, b: 0 } } }).png({ compressionLevel: 9, palette: true }).toBuffer();
    assert.ok(huge.length < 64 * 1024);
    assert.equal((await up('huge.png', huge))[0], 1);
    assert.equal(await files(), 0);
    assert.equal((await up('small.txt', 'hello'))[0], 0);
    assert.equal(await files(), 2);
  });

  it('an operator (menhu admin developer) logs in with _app=admin and has every operation', async () => {
    const a = new Client(B);
    assert.equal((await a.call('/login?_app=admin', { form: { uname: 'admin', pwd: 'wrong' } }))[0], -1);
    const l = await a.call('/login?_app=admin', { form: { uname: 'admin', pwd: 'admin' } });
    assert.equal(l[0], 0);
    assert.ok(a.cookies.has('adminid'));
    const q = await a.call('/User.query?_app=admin&res=id,uname');
    assert.equal(q[0], 0);
    assert.ok(q[1].d.some((r: unknown[]) => r[1] === 'rtest'));
    assert.equal((await a.call('/User.query?res=id,pwd&_app=admin'))[0], 3);
    // the admin session is not a user session
    assert.equal((await a.call('/Ordr.query'))[0], 2);
  });
});
