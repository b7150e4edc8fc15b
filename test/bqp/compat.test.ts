/**
 * research/bqp.md §5: every request → response case, against the real server (SQLite by default,
 * PostgreSQL with --pg). Cases are numbered as in §5.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import ExcelJS from 'exceljs';
import iconv from 'iconv-lite';
import sharp from 'sharp';
import { md5hex } from '../../src/core/crypto.js';
import { objectsOf } from '../../src/modules/objects.js';
import type { TestServer } from '../helpers.js';
import { Client, SIGN_TS, startBqp } from './client.js';

const TM = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;

describe('BQP §5 compatibility cases', () => {
  let s: TestServer;
  let B: string;
  let c: Client; // logged in as user rtest from case 5 on
  let anon: Client;
  let U: number;
  let A: number; // ApiLog row ac=t1 addr=a1
  let O: number; // an order of rtest

  before(async () => {
    ({ s, B } = await startBqp());
    c = new Client(B);
    anon = new Client(B);
  });
  after(async () => {
    await s.close();
  });

  it('1-3: unknown call, missing ac, ?ac= equals PATH_INFO', async () => {
    const r = await anon.req('/methodxx');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain; charset=UTF-8');
    assert.deepEqual(r.json.slice(0, 2), [1, '接口不支持']);
    assert.equal(r.text.endsWith('\n'), true);
    assert.equal((await anon.call(''))[0], 1);
    assert.equal((await anon.call('/'))[0], 1);
    await anon.call('/ApiLog.add', { form: { ac: 't0', addr: 'first' } });
    // both forms see the same (first) row
    const a = await anon.call('?ac=ApiLog.query&res=id&pagesz=1');
    const b = await anon.call('/ApiLog.query?res=id&pagesz=1');
    assert.equal(a[0], 0);
    assert.deepEqual(a[1].d, b[1].d);
    assert.deepEqual(a[1].h, ['id']);
  });

  it('4-7: whoami, login, session cookie, bad password', async () => {
    assert.equal((await c.call('/whoami'))[0], 2);
    const r = await c.req('/login', { form: { uname: 'rtest', pwd: '1234' } });
    assert.equal(r.json[0], 0);
    U = r.json[1].id;
    assert.equal(typeof U, 'number');
    assert.equal(typeof r.json[1]._token, 'string');
    assert.equal(typeof r.json[1]._expire, 'number');
    assert.equal(r.json[1].pwd, undefined);
    assert.match(r.headers.get('set-cookie') ?? '', /^userid=[^;]+;.*HttpOnly/i);
    const w = await c.call('/whoami');
    assert.equal(w[0], 0);
    assert.equal(w[1].id, U);
    assert.equal((await anon.call('/login', { form: { uname: 'rtest', pwd: 'bad' } }))[0], -1);
    assert.equal((await anon.call('/login', { form: { uname: 'nobody', pwd: '1234' } }))[0], -1);
    // login by phone
    assert.equal((await new Client(B).call('/login', { form: { uname: '19900000001', pwd: '1234' } }))[1].id, U);
  });

  it('8-12: add (form, res, required, JSON, bad JSON)', async () => {
    const r8 = await anon.call('/ApiLog.add', { form: { ac: 't1', addr: 'a1' } });
    assert.equal(r8[0], 0);
    assert.equal(typeof r8[1], 'number');
    A = r8[1];
    const r9 = await anon.call('/ApiLog.add?res=id,addr,tm', { form: { ac: 't1', addr: 'a2' } });
    assert.equal(r9[0], 0);
    assert.deepEqual(Object.keys(r9[1]), ['id', 'addr', 'tm']);
    assert.equal(r9[1].addr, 'a2');
    assert.match(r9[1].tm, TM);
    assert.equal((await anon.call('/ApiLog.add', { form: { addr: 'x' } }))[0], 1);
    const r11 = await anon.call('/ApiLog.add', { json: { ac: 't1', addr: 'j' } });
    assert.equal(r11[0], 0);
    assert.equal(typeof r11[1], 'number');
    assert.deepEqual(await anon.call('/ApiLog.add', { json: '{bad' }), [1, '参数不正确', 'bad json-format body']);
  });

  it('13-16: get, get with res, missing/negative id, set', async () => {
    const g = await anon.call(`/ApiLog.get?id=${A}`);
    assert.equal(g[0], 0);
    assert.equal(g[1].id, A);
    assert.equal(g[1].ac, 't1');
    assert.equal(g[1].addr, 'a1');
    assert.match(g[1].tm, TM);
    assert.equal('ua' in g[1], false);
    assert.deepEqual(await anon.call(`/ApiLog.get?id=${A}&res=id,addr`), [0, { id: A, addr: 'a1' }]);
    assert.equal((await anon.call('/ApiLog.get'))[0], 1);
    assert.equal((await anon.call('/ApiLog.get?id=-9'))[0], 1);
    assert.equal((await anon.call('/ApiLog.del?id=-9'))[0], 1);
    assert.deepEqual(await anon.call(`/ApiLog.set?id=${A}`, { form: { addr: 'new' } }), [0, 'OK']);
    assert.equal((await anon.call(`/ApiLog.get?id=${A}`))[1].addr, 'new');
    await anon.call(`/ApiLog.set?id=${A}`, { form: { addr: 'a1' } });
  });

  it('17: set with "" / "null" / "empty"', async () => {
    const add = await c.call('/Ordr.add', { form: { dscr: 'd17', cmt: 'c17', amount: '1' } });
    O = add[1];
    assert.deepEqual(await c.call(`/Ordr.set?id=${O}`, { form: { dscr: '' } }), [0, 'OK']);
    assert.deepEqual(await c.call(`/Ordr.set?id=${O}`, { form: { cmt: 'null' } }), [0, 'OK']);
    let g = (await c.call(`/Ordr.get?id=${O}`))[1];
    assert.equal(g.dscr, null);
    assert.equal(g.cmt, null);
    await c.call(`/Ordr.set?id=${O}`, { form: { dscr: 'empty' } });
    g = (await c.call(`/Ordr.get?id=${O}`))[1];
    assert.equal(g.dscr, '');
  });

  it('18-20: query default, res/cond, empty result', async () => {
    for (let i = 0; i < 4; i++) await anon.call('/ApiLog.add', { form: { ac: `q${i}`, addr: `qa${i}` } });
    const q = await anon.call('/ApiLog.query?pagesz=3');
    assert.equal(q[0], 0);
    for (const f of ['id', 'ac', 'addr', 'tm']) assert.ok(q[1].h.includes(f), f);
    assert.equal(q[1].h.includes('ua'), false);
    assert.ok(q[1].d.length <= 3);
    if (q[1].nextkey !== undefined) assert.equal(q[1].d.length, 3);
    assert.deepEqual(await anon.call(`/ApiLog.query?res=id,ac&cond=id%3D${A}`), [0, { h: ['id', 'ac'], d: [[A, 't1']] }]);
    assert.deepEqual(await anon.call('/ApiLog.query?res=id&cond=id%3D-1'), [0, { h: [], d: [] }]);
  });

  it('21-24: keyset paging, offset paging with total, page, pagesz limits', async () => {
    await objectsOf(s.ctx).flushLog();
    const q = await anon.call(`/ApiLog.query?res=id,ac&orderby=id%20DESC&pagesz=3&cond=id<%3D${A + 4}`);
    assert.equal(q[1].d.length, 3);
    assert.equal(q[1].nextkey, q[1].d[2][0]);
    const q2 = await anon.call(`/ApiLog.query?res=id,ac&orderby=id%20DESC&pagesz=3&cond=id<%3D${A + 4}&pagekey=${q[1].nextkey}`);
    assert.ok(q2[1].d.length > 0);
    for (const row of q2[1].d) assert.ok(row[0] < q[1].nextkey);

    const p = await anon.call(`/ApiLog.query?res=id,ac&orderby=tm%20DESC&pagesz=3&pagekey=0`);
    assert.equal(typeof p[1].total, 'number');
    assert.ok(p[1].total >= 8);
    assert.equal(p[1].nextkey, 2);
    const p2 = await anon.call(`/ApiLog.query?res=id,ac&orderby=tm%20DESC&pagesz=3&pagekey=2`);
    assert.equal(p2[1].total, undefined);
    assert.equal(p2[1].d.length, 3);

    const pg = await anon.call(`/ApiLog.query?res=id,ac&orderby=id%20DESC&pagesz=3&cond=id<%3D${A + 4}&page=1`);
    assert.equal(typeof pg[1].total, 'number');
    assert.equal(pg[1].nextkey, 2);
    const pg2 = await anon.call(`/ApiLog.query?res=id,ac&orderby=id%20DESC&pagesz=3&cond=id<%3D${A + 4}&page=2`);
    assert.deepEqual(pg2[1].d[0][0], q2[1].d[0][0]);

    const all = await anon.call('/ApiLog.query?pagesz=-1&res=id');
    assert.ok(all[1].d.length <= 1000);
    assert.ok(all[1].d.length > 20);
    assert.equal((await anon.call('/ApiLog.query?pagesz=0&res=id'))[1].d.length, 20);
  });

  it('25-29: fmt list, array, one, one?, aggregate one', async () => {
    const l = await anon.call('/ApiLog.query?fmt=list&pagesz=2');
    assert.equal(l[1].list.length, 2);
    assert.equal(typeof l[1].list[0].id, 'number');
    assert.deepEqual(await anon.call(`/ApiLog.query?fmt=array&res=id&cond=id%3D${A}`), [0, [{ id: A }]]);
    const one = await anon.call(`/ApiLog.query?fmt=one&cond=id%3D${A}`);
    assert.equal(one[1].id, A);
    assert.deepEqual(await anon.call('/ApiLog.query?fmt=one&cond=id%3D-1'), [1, '查询不到数据', 'no data']);
    assert.deepEqual(await anon.call(`/ApiLog.query?fmt=one%3F&res=id&cond=id%3D${A}`), [0, A]);
    assert.deepEqual(await anon.call('/ApiLog.query?fmt=one%3F&res=id&cond=id%3D-1'), [0, false]);
    assert.deepEqual(await anon.call(`/ApiLog.query?fmt=one%3F&res=userId&cond=id%3D${A}`), [0, null]);
    const cnt = await anon.call('/ApiLog.query?res=COUNT(*)%20cnt&fmt=one');
    assert.deepEqual(Object.keys(cnt[1]), ['cnt']);
    assert.equal(typeof cnt[1].cnt, 'number');
  });

  it('30-33: gres, gcond, aliases (Chinese, quoted), enum mapping', async () => {
    const q = await anon.call('/ApiLog.query?gres=ac&res=count(*)%20cnt,sum(id)%20s&cond=ac%20IS%20NOT%20NULL&orderby=cnt%20desc&pagekey=0');
    assert.deepEqual(q[1].h, ['ac', 'cnt', 's']);
    const n = await anon.call('/ApiLog.query?res=count(distinct%20ac)%20n&cond=ac%20is%20not%20null&fmt=one');
    assert.equal(q[1].total, n[1].n);
    for (let i = 1; i < q[1].d.length; i++) assert.ok(q[1].d[i - 1][1] >= q[1].d[i][1]);
    const g = await anon.call('/ApiLog.query?gres=ac%20action&res=count(*)%20cnt&cond=action%20is%20not%20null&gcond=cnt>1&orderby=cnt%20DESC');
    assert.deepEqual(g[1].h, ['action', 'cnt']);
    assert.ok(g[1].d.length > 0);
    for (const row of g[1].d) assert.ok(row[1] > 1);
    for (const q32 of ['gres=ac 动作&res=count(*) 总数', 'gres=ac "动作"&res=count(*) "总数"']) {
      const params = new URLSearchParams(q32.split('&').map((kv) => kv.split('=') as [string, string]));
      const r = await anon.call(`/ApiLog.query?${params}`);
      assert.deepEqual(r[1].h, ['动作', '总数']);
    }
    const id = (await anon.call('/ApiLog.add', { form: { ac: 'e33', ver: 'web', app: 'mgr,boss' } }))[1];
    const res = 'id 编号, ver 版本=a:安卓;web:PC浏览器, app "权限"=emp:员工;mgr:经理;boss:老板';
    const r = await anon.call(`/ApiLog.query?${new URLSearchParams({ res, cond: `id=${id}` })}`);
    assert.deepEqual(r[1], { h: ['编号', '版本', '权限'], d: [[id, 'PC浏览器', '经理,老板']] });
  });

  it('34-35: exports txt, csv, excelcsv, html, excel', async () => {
    const res = encodeURIComponent('id,ac 接口名,addr 地址,tm "日期 时间"');
    const t = await anon.req(`/ApiLog.query?res=${res}&fmt=txt&pagesz=3`);
    assert.equal(t.headers.get('content-disposition'), 'attachment;filename=ApiLog.txt');
    const lines = t.text.trimEnd().split('\n');
    assert.deepEqual(lines[0].split('\t'), ['id', '接口名', '地址', '日期 时间']);
    assert.equal(lines.length, 4);
    const csv = await anon.req(`/ApiLog.query?res=${res}&fmt=csv&pagesz=3`);
    assert.deepEqual(csv.text.split('\n')[0].split(','), ['id', '接口名', '地址', '日期 时间']);
    assert.match(csv.headers.get('content-disposition') ?? '', /filename=ApiLog\.csv/);
    const ec = await anon.req(`/ApiLog.query?res=${res}&fmt=excelcsv&pagesz=3`);
    assert.deepEqual(iconv.decode(ec.buf, 'gb18030').split('\n')[0].split(','), ['id', '接口名', '地址', '日期 时间']);
    const h = await anon.req(`/ApiLog.query?res=${res}&fmt=html&pagesz=3`);
    assert.ok(h.text.startsWith('<table'));
    assert.match(h.headers.get('content-type') ?? '', /text\/html/);
    const x = await anon.req(`/ApiLog.query?res=${res}&fmt=excel&pagesz=3`);
    assert.equal(x.buf.subarray(0, 2).toString(), 'PK');
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(x.buf as unknown as ArrayBuffer);
    const ws = wb.worksheets[0];
    assert.deepEqual((ws.getRow(1).values as unknown[]).slice(1), ['id', '接口名', '地址', '日期 时间']);
    assert.equal(ws.rowCount, 4);
  });

  it('36-38: refused SQL in cond and res', async () => {
    assert.equal((await anon.call(`/ApiLog.query?cond=${encodeURIComponent('userId in (SELECT id FROM User)')}`))[0], 5);
    assert.equal((await anon.call(`/ApiLog.query?cond=${encodeURIComponent('status AND 3535=IF((ORD(MID((DATABASE()),7,1))>114),BENCHMARK(4000000,MD5(0x6768654c)),3535)')}`))[0], 5);
    assert.equal((await anon.call(`/ApiLog.query?res=${encodeURIComponent('database() dbname')}`))[0], 5);
    assert.equal((await anon.call('/ApiLog.query?res=t0.id'))[0], 1);
    assert.equal((await anon.call('/ApiLog.query?res=id,id123'))[0], 3);
  });

  it('39-41: cond as object (bracket, JSON), URL + body ANDed, value mini-language', async () => {
    const a = await anon.call('/ApiLog.query?res=id,ac&cond[ac]=t1&cond[id]=%3E0&pagesz=-1');
    assert.ok(a[1].d.length >= 2);
    for (const r of a[1].d) assert.equal(r[1], 't1');
    const b = await anon.call('/ApiLog.query?res=id,ac&pagesz=-1', { json: { cond: { ac: 't1' } } });
    assert.deepEqual(b[1].d, a[1].d);
    const arr = await anon.call('/ApiLog.query?res=id,ac&pagesz=-1&cond[]=ac%3D%27t1%27&cond[]=id>0');
    assert.deepEqual(arr[1].d, a[1].d);
    const c40 = await anon.call(`/ApiLog.query?res=id,ac&cond=id>${A}&pagesz=-1`, { form: { cond: "ac='t1'" } });
    assert.ok(c40[1].d.length >= 1);
    for (const r of c40[1].d) {
      assert.equal(r[1], 't1');
      assert.ok(r[0] > A);
    }
    // {"addr":"~a*","ac":"t1 OR t2","id":"IN 1,2,3","userId":"null"}
    const ids: number[] = [];
    for (const [ac, addr] of [['t1', 'ab'], ['t2', 'ax'], ['t1', 'ba'], ['t3', 'ay']]) ids.push((await anon.call('/ApiLog.add', { form: { ac, addr } }))[1]);
    const cond = { addr: '~a*', ac: 't1 OR t2', id: `IN ${ids.join(',')}`, userId: 'null' };
    const r41 = await anon.call('/ApiLog.query?res=id&pagesz=-1', { json: { cond } });
    assert.deepEqual(r41[1].d.map((r: number[]) => r[0]), [ids[0], ids[1]]);
    const r41b = await anon.call(`/ApiLog.query?res=id&pagesz=-1&${new URLSearchParams({ cond: `addr LIKE 'a%' AND (ac='t1' OR ac='t2') AND id IN (${ids.join(',')}) AND userId IS NULL` })}`);
    assert.deepEqual(r41b[1].d, r41[1].d);
  });

  it('42-44: setIf, delIf, no cond, unknown method / object', async () => {
    const id = (await anon.call('/ApiLog.add', { form: { ac: 't42', addr: 'x' } }))[1];
    assert.deepEqual(await anon.call(`/ApiLog.setIf?cond=id%3D${id}`, { form: { addr: 'z' } }), [0, 1]);
    assert.equal((await anon.call(`/ApiLog.get?id=${id}`))[1].addr, 'z');
    assert.deepEqual(await anon.call(`/ApiLog.delIf?cond=id%3D${id}`), [0, 1]);
    assert.equal((await anon.call(`/ApiLog.get?id=${id}`))[0], 1);
    assert.equal((await anon.call('/ApiLog.setIf', { form: { addr: 'z' } }))[0], 1);
    assert.equal((await anon.call('/ApiLog.cancel'))[0], 1);
    assert.equal((await anon.call('/ApiLog123.query'))[0], 2);
  });

  it('45-47: role rules on Ordr (login needed, del forbidden, own rows, orderLog)', async () => {
    assert.equal((await anon.call('/Ordr.query'))[0], 2);
    assert.equal((await c.call(`/Ordr.del?id=${O}`))[0], 5);
    const id = (await c.call('/Ordr.add', { form: { dscr: 'd1', amount: '10' } }))[1];
    const g = await c.call(`/Ordr.get?id=${id}&res=id,userId,status,amount,orderLog`);
    assert.equal(g[0], 0);
    assert.equal(g[1].userId, U);
    assert.equal(g[1].status, 'CR');
    assert.equal(g[1].amount, '10.00');
    assert.equal(g[1].orderLog.length, 1);
    assert.equal(g[1].orderLog[0].action, 'CR');
    // readonly for the user
    assert.equal((await c.call(`/Ordr.set?id=${id}`, { form: { status: 'RE' } }))[0], 5);
    // another user's order is invisible
    const other = await s.ctx.db.kysely.insertInto('bqp_Ordr' as never).values({ userId: U + 1000, status: 'CR', dscr: 'not yours' } as never).returning('id' as never).executeTakeFirstOrThrow();
    assert.equal((await c.call(`/Ordr.get?id=${(other as { id: number }).id}`))[0], 1);
    assert.equal((await c.call(`/Ordr.set?id=${(other as { id: number }).id}`, { form: { dscr: 'mine' } }))[0], 1);
    const q = await c.call('/Ordr.query?res=*,orderLog&pagesz=-1');
    const ui = q[1].h.indexOf('userId');
    const li = q[1].h.indexOf('orderLog');
    assert.ok(q[1].d.length >= 3);
    for (const row of q[1].d) {
      assert.equal(row[ui], U);
      assert.ok(Array.isArray(row[li]));
    }
  });

  it('48-49: employee writes sub-table rows; res_<sub>', async () => {
    const emp = new Client(B);
    const l = await emp.call('/login?_app=emp', { form: { uname: 'emp', pwd: '1234' } });
    assert.equal(l[0], 0);
    assert.ok(emp.cookies.has('empid'));
    const id = (await c.call('/Ordr.add', { form: { dscr: 'd48', amount: '3.5' } }))[1];
    const L1 = (await c.call(`/Ordr.get?id=${id}&res=orderLog`))[1].orderLog[0].id;
    // the user may only read OrderLog
    assert.equal((await c.call(`/Ordr.set?id=${id}`, { json: { orderLog: [{ action: 'PA' }] } }))[0], 5);
    assert.deepEqual(await emp.call(`/Ordr.set?id=${id}&_app=emp`, { json: { orderLog: [{ id: L1, _delete: 1 }, { action: 'PA' }] } }), [0, 'OK']);
    const g = await emp.call(`/Ordr.get?id=${id}&res=id,orderLog&res_orderLog=id,action&_app=emp`);
    assert.equal(g[1].orderLog.length, 1);
    assert.deepEqual(Object.keys(g[1].orderLog[0]), ['id', 'action']);
    assert.equal(g[1].orderLog[0].action, 'PA');
    assert.notEqual(g[1].orderLog[0].id, L1);
    // employee changes status: a log row with empId
    await emp.call(`/Ordr.set?id=${id}&_app=emp`, { form: { status: 'RE' } });
    const g2 = await emp.call(`/Ordr.get?id=${id}&res=orderLog&_app=emp`);
    const last = g2[1].orderLog.at(-1);
    assert.equal(last.action, 'RE');
    assert.equal(last.empId, l[1].id);
  });

  it('50: uniKey modes', async () => {
    await c.call('/Ordr.add', { form: { dscr: 'uni-1', amount: '1' } });
    assert.equal((await c.call('/Ordr.add?uniKey=dscr&uniKeyMode=error', { form: { dscr: 'uni-1', amount: '2' } }))[0], 1);
    assert.deepEqual(await c.call('/Ordr.add?uniKey=dscr!&uniKeyMode=ignore', { form: { dscr: 'uni-unknown', amount: '2' } }), [0, -1]);
    const same = await c.call('/Ordr.add?uniKey=dscr', { form: { dscr: 'uni-1', amount: '7' } });
    assert.equal((await c.call(`/Ordr.get?id=${same[1]}`))[1].amount, '7.00');
  });

  it('51-53: batch with references, useTrans rollback, GET refused', async () => {
    const r = await c.call('/batch', { json: [{ ac: 'whoami' }, { ac: 'ApiLog.add', post: { ac: 'b', addr: '{$-1.id}' }, ref: ['addr'] }] });
    assert.equal(r[0], 0);
    assert.equal(r[1][0][0], 0);
    assert.equal(r[1][0][1].id, U);
    assert.equal(r[1][1][0], 0);
    assert.equal((await c.call(`/ApiLog.get?id=${r[1][1][1]}`))[1].addr, String(U));
    const t = await c.call('/batch?useTrans=1', { json: [{ ac: 'ApiLog.add', post: { ac: 'bt', addr: 'rolled back' } }, { ac: 'ApiLog.get' }, { ac: 'ApiLog.add', post: { ac: 'bt2' } }] });
    assert.equal(t[0], 0);
    assert.equal(t[1][0][0], 0);
    assert.equal(t[1][1][0], 1);
    assert.equal(t[1][2][0], -100);
    // (the id itself may be reused by a later insert: look for the content)
    assert.deepEqual(await c.call(`/ApiLog.query?${new URLSearchParams({ res: 'id', cond: "ac='bt' or ac='bt2'" })}`), [0, { h: [], d: [] }]);
    assert.equal((await c.call('/batch'))[0], 1);
    const noac = await c.call('/batch', { json: [{ get: {} }] });
    assert.deepEqual(noac[1][0][0], 1);
  });

  it('54-56: _raw, retfn, _jsonp, RESTful aliases', async () => {
    const raw = await anon.req(`/ApiLog.get?id=${A}&_raw=1`);
    assert.equal(JSON.parse(raw.text).id, A);
    assert.equal((await anon.req(`/ApiLog.get?id=${A}&_raw=2&res=id,ac`)).text, `${A}\tt1\n`);
    const obj = await anon.req(`/ApiLog.get?id=${A}&retfn=obj`);
    assert.equal(obj.json.code, 0);
    assert.equal(obj.json.data.id, A);
    const jp = await anon.req(`/ApiLog.get?id=${A}&_jsonp=cb`);
    assert.match(jp.text, /^cb\(\[0,\{.*\}\]\);\n$/);
    const e = await anon.req('/ApiLog.get?id=-9&retfn=obj');
    assert.equal(e.json.code, 1);
    assert.equal(e.json.message, '参数不正确');
    assert.ok('debug' in e.json);
    assert.deepEqual(await anon.call(`/ApiLog/${A}`), await anon.call(`/ApiLog.get?id=${A}`));
    const Bid = (await anon.call('/ApiLog', { form: { ac: 'rest', addr: 'r' } }))[1];
    assert.deepEqual(await anon.call(`/ApiLog/${Bid}`, { method: 'PATCH', body: 'addr=p', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), [0, 'OK']);
    assert.equal((await anon.call(`/ApiLog/${Bid}`))[1].addr, 'p');
    assert.deepEqual(await anon.call(`/ApiLog/${Bid}`, { method: 'DELETE' }), [0, 'OK']);
    assert.equal((await anon.call(`/ApiLog/${Bid}`))[0], 1);
    assert.equal((await anon.call('/ApiLog?res=id&pagesz=1'))[1].h[0], 'id');
  });

  it('57: HTTP Basic with an app key, limited to its allowed calls', async () => {
    const basic = { authorization: 'Basic ' + Buffer.from('test:1234').toString('base64') };
    const q = await anon.call('/Ordr.query?res=id,userId', { headers: basic });
    assert.equal(q[0], 0);
    assert.ok(q[1].d.length >= 2); // employee role: all orders
    assert.equal((await anon.call('/Ordr.query', { headers: { authorization: 'Basic ' + Buffer.from('test:bad').toString('base64') } }))[0], 2);
    assert.equal((await anon.call(`/Ordr.del?id=${O}`, { headers: basic }))[0], 2);
  });

  it('58: _sign (seed vector), wrong sign, stale timestamp, ms timestamp; seed Store.set', async () => {
    const sign = 'cfb74e1d9c85910ea9f9b2ff30885d4a';
    assert.equal((await anon.call(`/Store.query?timestamp=${SIGN_TS}&_sign=${sign}&res=id`))[0], 0);
    assert.equal((await anon.call(`/Store.query?timestamp=${SIGN_TS}&_sign=${'0'.repeat(32)}`))[0], -1);
    const old = SIGN_TS - 3 * 3600;
    assert.equal((await anon.call(`/Store.query?timestamp=${old}&_sign=${md5hex(old + 'demo')}`))[0], 5);
    const ms = SIGN_TS * 1000;
    assert.equal((await anon.call(`/Store.query?timestamp=${ms}&_sign=${md5hex(ms + 'demo')}`))[0], 0);
    // the seed's call: POST $BASE_URL/Store.set?id={id}&_sign={sign} with pause={pause}&timestamp={timestamp}
    assert.deepEqual(await anon.call(`/Store.set?id=1&_sign=${sign}`, { form: { pause: '1', timestamp: String(SIGN_TS) } }), [0, 'OK']);
    assert.equal((await anon.call('/Store.get?id=1'))[1].pause, 1);
    assert.equal((await anon.call('/Store.set?id=1', { form: { pause: '0' } }))[0], 2);
    assert.equal((await anon.call(`/Store.set?id=1&_sign=${sign}`, { form: { pause: '7', timestamp: String(SIGN_TS) } }))[0], 1);
  });

  it('59-63: upload, att (ETag, 304, thumb, thumbId, 404), pic', async () => {
    const jpg = await sharp({ create: { width: 800, height: 600, channels: 3, background: { r: 200, g: 30, b: 30 } } }).jpeg().toBuffer();
    const fd = new FormData();
    fd.append('file', new Blob([jpg], { type: 'image/jpeg' }), '1.jpg');
    const up = await c.call('/upload?genThumb=1', { method: 'POST', body: fd });
    assert.equal(up[0], 0);
    assert.equal(up[1].length, 1);
    const { id: I, thumbId: T, orgName, size } = up[1][0];
    assert.equal(orgName, '1.jpg');
    assert.equal(typeof size, 'number');
    assert.equal(typeof T, 'number');
    const fd2 = new FormData();
    fd2.append('file1', new Blob([jpg], { type: 'image/jpeg' }), 'a.jpg');
    fd2.append('file2', new Blob(['hello']), 'b.txt');
    assert.equal((await c.call('/upload', { method: 'POST', body: fd2 }))[1].length, 2);
    assert.equal((await anon.call('/upload', { method: 'POST', body: fd }))[0], 2);
    const rawUp = await c.call('/upload?fmt=raw&f=1.txt', { method: 'POST', body: 'hello', headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(rawUp[0], 0);
    assert.equal(typeof rawUp[1][0].id, 'number');
    assert.equal((await c.call('/upload?fmt=raw&f=1.exe', { method: 'POST', body: 'MZ', headers: { 'content-type': 'application/octet-stream' } }))[0], 1);

    const o = await anon.req(`/att?id=${I}`);
    assert.equal(o.status, 200);
    assert.equal(o.headers.get('content-type'), 'image/jpeg');
    assert.equal(o.headers.get('etag'), `att-${I}`);
    assert.equal(o.buf.length, size);
    const t = await anon.req(`/att?id=${I}&thumb=1`);
    assert.equal(t.headers.get('content-type'), 'image/jpeg');
    const meta = await sharp(t.buf).metadata();
    assert.equal(meta.width, 360);
    const back = await anon.req(`/att?thumbId=${T}`);
    assert.deepEqual(back.buf, o.buf);
    const txt = await anon.req(`/att?id=${rawUp[1][0].id}`);
    assert.equal(txt.text, 'hello');
    for (const q of ['id=9999999', 'id=0', 'id=abc', `thumbId=${I}`]) {
      const r = await anon.req(`/att?${q}`);
      assert.equal(r.status, 404, q);
      assert.equal(r.text, '');
    }
    assert.equal((await anon.req(`/att?id=${I}`, { headers: { 'if-none-match': `att-${I}` } })).status, 304);

    const p = await anon.req(`/pic?id=${I},${T}`);
    assert.match(p.headers.get('content-type') ?? '', /text\/html/);
    assert.equal(p.text, `<img src='./att?id=${I}'><br/>\n<img src='./att?id=${T}'><br/>\n`);
    const pt = await anon.req(`/pic?id=${I}&thumb=1`);
    assert.equal(pt.text, `<a href='./att?id=${I}' target='_blank'><img src='./att?id=${I}&thumb=1'></a><br/>\n`);
  });

  it('64-65: logout; CORS', async () => {
    assert.deepEqual(await c.call('/logout'), [0, 'OK']);
    assert.equal((await c.call('/Ordr.query'))[0], 2);
    const r = await anon.req('/ApiLog.query?res=id&pagesz=1', { headers: { origin: 'http://x' } });
    assert.equal(r.headers.get('access-control-allow-origin'), 'http://x');
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
    const o = await anon.req('/ApiLog.query', { method: 'OPTIONS', headers: { origin: 'http://x', 'access-control-request-method': 'POST' } });
    assert.equal(o.status, 200);
    assert.equal(o.text, '');
    assert.equal(o.headers.get('access-control-allow-origin'), 'http://x');
  });

  it('every call is logged into ApiLog', async () => {
    await objectsOf(s.ctx).flushLog();
    const q = await anon.call(`/ApiLog.query?${new URLSearchParams({ res: 'id,ac,retval,userId', cond: "ac='Ordr.del'", orderby: 'id' })}`);
    assert.ok(q[1].d.length >= 1);
    assert.ok(q[1].d.some((r: unknown[]) => r[2] === 5 && r[3] === U));
    // the login password never reaches the log
    const l = await s.ctx.db.kysely.selectFrom('bqp_ApiLog' as never).select(['req' as never]).where('ac' as never, '=', 'login' as never).execute();
    assert.ok(l.length >= 1);
    for (const r of l as { req: string }[]) {
      assert.match(r.req, /"pwd":"\*\*\*"/);
      assert.equal(r.req.includes('1234'), false);
    }
    // and what calls sent and got back is not readable through the API
    assert.equal((await anon.call('/ApiLog.query?res=req'))[0], 3);
  });
});
