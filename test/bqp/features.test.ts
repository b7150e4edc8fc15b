/**
 * BQP operations and query options beyond §5 (research/bqp.md §1.4, §1.5, §1.9): dup, batchSet,
 * batchDel, time buckets, qsearch, distinct, statRes, pivot, hiddenFields, sumFields, fmt=tree —
 * each with the role filters applied (a user sees and changes only its own rows). Real server,
 * SQLite by default, PostgreSQL with --pg.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import iconv from 'iconv-lite';
import type { TestServer } from '../helpers.js';
import { objectsOf } from '../../src/modules/objects.js';
import { Client, startBqp, testSchemaFile } from './client.js';

describe('BQP dup, batchSet, batchDel and query options', () => {
  let s: TestServer;
  let B: string;
  let user: Client; // rtest
  let other: Client; // a second user
  let emp: Client;
  const O: number[] = []; // orders added by the employee in 2020

  before(async () => {
    ({ s, B } = await startBqp({
      config: {
        bqpSchema: testSchemaFile((x) => {
          // declared methods: one for users (under their row filter), one for employees only
          x.objects.Ordr.methods = {
            mine: { params: ['status'], where: { status: 'status' }, set: { res: 'id,status,userId', orderby: 'id' } },
            byStatus: { set: { gres: 'status', res: 'count(*) n', orderby: 'status' } },
            one: { op: 'get', set: { res: 'id,amount' } },
          };
          x.objects.Ordr.acl.user.ops.push('mine', 'one');
          x.objects.Item = { fields: ['id', 'name', 'flags', 'props'], acl: { guest: { ops: '*' } } };
        }),
      },
    }));
    user = new Client(B);
    other = new Client(B);
    emp = new Client(B);
    assert.equal((await user.call('/login', { form: { uname: 'rtest', pwd: '1234' } }))[0], 0);
    assert.equal((await other.call('/reg', { form: { uname: 'other', pwd: 'secret-2', name: '另一个' } }))[0], 0);
    assert.equal((await emp.call('/login?_app=emp', { form: { uname: 'emp', pwd: '1234' } }))[0], 0);
    const rows: [string, string, string, string][] = [
      ['2020-01-05 10:00:00', '10', 'CR', '张三 退款'],
      ['2020-01-06 09:00:00', '20.5', 'RE', '李四 退款'],
      ['2020-03-31 23:00:00', '30', 'CR', '张五 洗车'],
      ['2020-04-01 08:00:00', '40', 'CA', '王六 保养'],
    ];
    for (const [createTm, amount, status, dscr] of rows) {
      const r = await emp.call('/Ordr.add?_app=emp', { form: { createTm, amount, status, dscr, userId: '999' } });
      assert.equal(r[0], 0, JSON.stringify(r));
      O.push(r[1]);
    }
  });
  after(async () => {
    await s?.close();
  });

  it('time buckets y q m w d wd h group and filter by the declared tmField', async () => {
    const r = await emp.call('/Ordr.query?_app=emp&gres=y,q,m&res=count(*) cnt,sum(amount) total&cond=' + encodeURIComponent("createTm>='2020-1-1'") + '&orderby=m');
    assert.equal(r[0], 0, JSON.stringify(r));
    assert.deepEqual(r[1].h, ['y', 'q', 'm', 'cnt', 'total']);
    assert.deepEqual(r[1].d, [
      [2020, 1, 1, 2, '30.50'],
      [2020, 1, 3, 1, '30.00'],
      [2020, 2, 4, 1, '40.00'],
    ]);
    const days = await emp.call(`/Ordr.query?_app=emp&res=id,y,m,d,w,wd,h&cond=${encodeURIComponent(`id in (${O.join(',')})`)}&orderby=id`);
    assert.deepEqual(
      days[1].d.map((x: number[]) => x.slice(1)),
      [
        [2020, 1, 5, 0, 7, 10], // a Sunday before the year's first Monday: week 0
        [2020, 1, 6, 1, 1, 9],
        [2020, 3, 31, 13, 2, 23],
        [2020, 4, 1, 13, 3, 8],
      ],
    );
    // buckets in cond and gcond
    const jan = await emp.call('/Ordr.query?_app=emp&res=id&cond=' + encodeURIComponent('y=2020 and m=1') + '&orderby=id');
    assert.deepEqual(jan[1].d, [[O[0]], [O[1]]]);
    const g = await emp.call('/Ordr.query?_app=emp&gres=y,m&res=count(*) n&gcond=n>1&cond=' + encodeURIComponent("createTm>='2020-1-1'"));
    assert.deepEqual(g[1].d, [[2020, 1, 2]]);
    // tmField= names another date field; a non-date one is refused
    const logs = await emp.call('/OrderLog.query?_app=emp&tmField=tm&gres=y&res=count(*) n');
    assert.equal(logs[0], 0, JSON.stringify(logs));
    assert.equal((await emp.call('/Ordr.query?_app=emp&tmField=dscr&res=y'))[0], 1);
    // without a tmField there are no buckets
    assert.equal((await emp.call('/Store.query?_app=emp&res=y'))[0], 3);
    // the user sees its own orders only, also when grouped
    const mine = await user.call('/Ordr.query?gres=y&res=count(*) n');
    assert.equal(mine[1].d.length, 1);
    assert.equal(mine[1].d[0][1], 2); // the two demo orders of rtest
  });

  it('qsearch: terms AND-ed, fields OR-ed, * wildcard, field* prefix, field! exact', async () => {
    const q = (qs: string, c = emp) => c.call(`/Ordr.query?_app=emp&res=id&orderby=id&qsearch=${encodeURIComponent(qs)}`);
    assert.deepEqual((await q('dscr,cmt:张* 退款'))[1].d, [[O[0]]]);
    assert.deepEqual((await q('dscr:退款'))[1].d, [[O[0]], [O[1]]]);
    assert.deepEqual((await q('dscr*:李四'))[1].d, [[O[1]]]);
    assert.deepEqual((await q('dscr*:退款'))[1].d, []);
    assert.deepEqual((await q('status!:CA'))[1].d, [[O[3]]]);
    assert.deepEqual((await q('dscr:'))[1].d.length > 4, true); // no term: no condition
    // combined with cond (AND)
    const both = await emp.call(`/Ordr.query?_app=emp&res=id&qsearch=${encodeURIComponent('dscr:退款')}&cond=${encodeURIComponent("status='RE'")}`);
    assert.deepEqual(both[1].d, [[O[1]]]);
    // unknown and hidden fields are unknown (3), a bad format is 1, injection is just text
    assert.equal((await q('nope:x'))[0], 3);
    assert.equal((await emp.call('/User.query?_app=emp&qsearch=pwd:a'))[0], 3);
    assert.equal((await q('退款'))[0], 1);
    assert.deepEqual((await q("dscr:' or 1=1 --"))[1].d, []);
    // the user's row filter still applies
    assert.deepEqual((await user.call(`/Ordr.query?res=id&qsearch=${encodeURIComponent('dscr:退款')}`))[1].d, []);
  });

  it('distinct=1: unique rows, offset paging and total over the distinct set, role filter applied', async () => {
    const r = await emp.call(`/Ordr.query?_app=emp&res=status&distinct=1&pagekey=0&cond=${encodeURIComponent(`id in (${O.join(',')})`)}`);
    assert.equal(r[0], 0, JSON.stringify(r));
    assert.deepEqual(r[1].d, [['CA'], ['CR'], ['RE']]);
    assert.equal(r[1].total, 3);
    const p1 = await emp.call(`/Ordr.query?_app=emp&res=status&distinct=1&pagesz=2&orderby=status desc&cond=${encodeURIComponent(`id in (${O.join(',')})`)}`);
    assert.deepEqual(p1[1].d, [['RE'], ['CR']]);
    assert.equal(p1[1].nextkey, 2);
    const p2 = await emp.call(`/Ordr.query?_app=emp&res=status&distinct=1&pagesz=2&pagekey=2&orderby=status desc&cond=${encodeURIComponent(`id in (${O.join(',')})`)}`);
    assert.deepEqual(p2[1].d, [['CA']]);
    // order by something not in the result, sub-tables: refused
    assert.equal((await emp.call('/Ordr.query?_app=emp&res=status&distinct=1&orderby=id'))[0], 1);
    assert.equal((await emp.call('/Ordr.query?_app=emp&res=status,orderLog&distinct=1'))[0], 1);
    // hidden fields do not exist
    assert.equal((await emp.call('/User.query?_app=emp&res=pwd&distinct=1'))[0], 3);
    // a user sees the distinct values of its own rows only
    const mine = await user.call('/Ordr.query?res=userId&distinct=1');
    assert.equal(mine[1].d.length, 1);
  });

  it('statRes: aggregates over the whole filtered set beside one page; list has it, array not', async () => {
    const cond = encodeURIComponent(`id in (${O.join(',')})`);
    const r = await emp.call(`/Ordr.query?_app=emp&res=id,amount&pagesz=1&cond=${cond}&statRes=${encodeURIComponent('count(*) cnt, sum(amount) total, countif(status=\'CR\') cr')}`);
    assert.equal(r[0], 0, JSON.stringify(r));
    assert.equal(r[1].d.length, 1);
    assert.deepEqual(r[1].stat, { cnt: 4, total: '100.50', cr: 2 });
    const l = await emp.call(`/Ordr.query?_app=emp&res=id&fmt=list&cond=${cond}&statRes=count(*) n`);
    assert.deepEqual(l[1].stat, { n: 4 });
    const a = await emp.call(`/Ordr.query?_app=emp&res=id&fmt=array&cond=${cond}&statRes=count(*) n`);
    assert.ok(Array.isArray(a[1]));
    // only aggregates; hidden fields and functions outside the whitelist are refused
    assert.equal((await emp.call('/Ordr.query?_app=emp&statRes=id'))[0], 1);
    assert.equal((await emp.call('/User.query?_app=emp&statRes=count(pwd) n'))[0], 3);
    assert.equal((await emp.call('/Ordr.query?_app=emp&statRes=database() x'))[0], 5);
    // the user's stat counts its own orders only
    const mine = await user.call('/Ordr.query?res=id&statRes=count(*) n');
    assert.deepEqual(mine[1].stat, { n: 2 });
  });

  it('pivot (pivotCnt, pivotSumField), hiddenFields, gresHidden, sumFields', async () => {
    const cond = encodeURIComponent(`id in (${O.join(',')})`);
    const r = await emp.call(`/Ordr.query?_app=emp&gres=m,status&res=sum(amount) total&orderby=m&pivot=status&cond=${cond}`);
    assert.equal(r[0], 0, JSON.stringify(r));
    assert.deepEqual(r[1].h, ['m', 'CR', 'RE', 'CA']);
    assert.deepEqual(r[1].d, [
      [1, '10.00', '20.50', null],
      [3, '30.00', null, null],
      [4, null, null, '40.00'],
    ]);
    const s2 = await emp.call(`/Ordr.query?_app=emp&gres=y,status&res=sum(amount) total,count(*) n&pivot=status&pivotCnt=2&pivotSumField=${encodeURIComponent('合计')}&cond=${cond}&fmt=list`);
    assert.deepEqual(s2[1].list, [{ y: 2020, CR: ['40.00', 2], RE: ['20.50', 1], CA: ['40.00', 1], 合计: ['100.50', 4] }]);
    // group by status but show only the pivoted sums per year; hiddenFields drops y
    const h = await emp.call(`/Ordr.query?_app=emp&gres=y,status&res=count(*) n&hiddenFields=y&cond=${cond}&orderby=status`);
    assert.deepEqual(h[1].h, ['status', 'n']);
    const gh = await emp.call(`/Ordr.query?_app=emp&gres=status&res=count(*) n&gresHidden=1&cond=${cond}&orderby=n`);
    assert.deepEqual(gh[1].h, ['n']);
    // sumFields appends a 合计 row
    const sf = await emp.call(`/Ordr.query?_app=emp&gres=status&res=count(*) n,sum(amount) total&sumFields=n,total&orderby=status&cond=${cond}`);
    assert.deepEqual(sf[1].d.at(-1), ['合计', 4, '100.50']);
    // a pivot column that is not in the result, or is a value column
    assert.deepEqual((await emp.call(`/Ordr.query?_app=emp&gres=status&res=count(*) n&pivot=nope&cond=${cond}`)).slice(0, 2), [1, '分组列不正确: nope']);
    assert.equal((await emp.call(`/Ordr.query?_app=emp&gres=status&res=count(*) n&pivot=n&cond=${cond}`))[0], 1);
    // the user pivots its own rows only
    const mine = await user.call('/Ordr.query?gres=userId,status&res=count(*) n&pivot=status');
    assert.equal(mine[1].d.length, 1);
  });

  it('fmt=tree nests {id, fatherId} rows; treeFields renames; cycles and orphans stay visible', async () => {
    const anon = new Client(B);
    const add = async (name: string, fatherId?: number) => (await anon.call('/Cate.add', { form: { name, ...(fatherId ? { fatherId: String(fatherId) } : {}) } }))[1] as number;
    const root = await add('电器');
    const tv = await add('电视', root);
    const oled = await add('OLED', tv);
    const food = await add('食品');
    const orphan = await add('孤儿', 99999);
    const t = await anon.call('/Cate.query?fmt=tree&res=id,fatherId,name');
    assert.equal(t[0], 0, JSON.stringify(t));
    assert.deepEqual(t[1], [
      { id: root, fatherId: null, name: '电器', children: [{ id: tv, fatherId: root, name: '电视', children: [{ id: oled, fatherId: tv, name: 'OLED' }] }] },
      { id: food, fatherId: null, name: '食品' },
      { id: orphan, fatherId: 99999, name: '孤儿' },
    ]);
    const renamed = await anon.call('/Cate.query?fmt=tree&res=id 编号,fatherId 上级,name&treeFields=编号,上级,下级&cond=' + encodeURIComponent(`id in (${root},${tv})`));
    assert.deepEqual(renamed[1], [{ 编号: root, 上级: null, name: '电器', 下级: [{ 编号: tv, 上级: root, name: '电视' }] }]);
    assert.equal((await anon.call('/Cate.query?fmt=tree&res=id,name'))[0], 1);
    // a cycle: the first row met becomes the root, nothing is lost
    const a = await add('甲');
    const b = await add('乙', a);
    assert.equal((await anon.call(`/Cate.set?id=${a}`, { form: { fatherId: String(b) } }))[0], 0);
    const cyc = await anon.call(`/Cate.query?fmt=tree&res=id,fatherId&cond=${encodeURIComponent(`id in (${a},${b})`)}`);
    assert.deepEqual(cyc[1], [{ id: a, fatherId: b, children: [{ id: b, fatherId: a }] }]);
  });

  it('retfn=xml wraps answers in <ret>; application/xml', async () => {
    const r = await emp.req(`/Ordr.get?_app=emp&id=${O[0]}&res=id,dscr,amount 金额,"a b"&retfn=xml`.replace('"a b"', 'dscr "a b"'));
    assert.equal(r.headers.get('content-type'), 'application/xml; charset=UTF-8');
    assert.equal(r.text, `<ret><code>0</code><data><id>${O[0]}</id><dscr>张三 退款</dscr><金额>10.00</金额><item key="a b">张三 退款</item></data></ret>\n`);
    const q = await emp.req(`/Ordr.query?_app=emp&res=id,status&cond=id=${O[0]}&retfn=xml`);
    assert.equal(q.text, `<ret><code>0</code><data><h><item>id</item><item>status</item></h><d><item><item>${O[0]}</item><item>CR</item></item></d></data></ret>\n`);
    const e = await emp.req('/Ordr.get?_app=emp&id=-9&retfn=xml');
    assert.match(e.text, /^<ret><code>1<\/code><message>参数不正确<\/message><debug>not found `Ordr.id`=`-9`<\/debug><\/ret>\n$/);
    // text is escaped
    const esc = await new Client(B).req(`/Cate.query?res=name&cond=${encodeURIComponent("name='<&>'")}&retfn=xml`);
    assert.match(esc.text, /^<ret><code>0<\/code>/);
    await new Client(B).call('/Cate.add', { form: { name: 'a&b"c' } });
    const esc2 = await new Client(B).req(`/Cate.query?res=name&cond=${encodeURIComponent("name like 'a&b%'")}&fmt=array&retfn=xml`);
    assert.equal(esc2.text, '<ret><code>0</code><data><item><name>a&amp;b&quot;c</name></item></data></ret>\n');
  });

  it('GBK request bodies (charset in Content-Type): form, JSON, batchAdd text and csv file', async () => {
    const anon = new Client(B);
    const gbkForm = (o: Record<string, string>) =>
      Object.entries(o)
        .map(([k, v]) => `${k}=${[...iconv.encode(v, 'gbk')].map((b) => '%' + b.toString(16).toUpperCase().padStart(2, '0')).join('')}`)
        .join('&');
    const f = await anon.call('/Cate.add', { body: gbkForm({ name: '家用电器' }), method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=GBK' } });
    assert.equal(f[0], 0, JSON.stringify(f));
    const j = await anon.call('/Cate.add', { body: iconv.encode(JSON.stringify({ name: '数码产品' }), 'gbk'), method: 'POST', headers: { 'content-type': 'application/json; charset=gbk' } });
    assert.equal(j[0], 0, JSON.stringify(j));
    const t = await anon.call('/Cate.query?res=name&fmt=array&cond=' + encodeURIComponent(`id in (${f[1]},${j[1]})`) + '&orderby=id');
    assert.deepEqual(t[1], [{ name: '家用电器' }, { name: '数码产品' }]);
    // utf-8 forms are unchanged (repeated keys, +, %-escapes)
    const u = await anon.call('/Cate.add', { form: 'name=a+b%E4%B8%AD' });
    assert.deepEqual((await anon.call(`/Cate.query?cond=id=${u[1]}&res=name&fmt=one`))[1], { name: 'a b中' });
    // an unknown charset is a parameter error
    assert.equal((await anon.call('/Cate.add', { body: 'name=x', method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=nope-42' } }))[0], 1);
    // multipart text fields: GBK bytes without a charset (detected), UTF-8 as sent, the form's _charset_
    const multipart = (fields: [string, Buffer][]) => {
      const bnd = 'menhu-gbk-test';
      const parts = fields.map(([k, v]) => Buffer.concat([Buffer.from(`--${bnd}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n`), v, Buffer.from('\r\n')]));
      return { body: Buffer.concat([...parts, Buffer.from(`--${bnd}--\r\n`)]), method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${bnd}` } };
    };
    const m1 = await anon.call('/Cate.add', multipart([['name', iconv.encode('家用电器 gbk', 'gbk')]]));
    const m2 = await anon.call('/Cate.add', multipart([['name', Buffer.from('数码 café', 'utf8')]]));
    const m3 = await anon.call('/Cate.add', multipart([['_charset_', Buffer.from('GBK')], ['name', iconv.encode('手机', 'gbk')]]));
    const m4 = await anon.call('/Cate.add', multipart([['_charset_', Buffer.from('nope-42')], ['name', Buffer.from([0xe9])]]));
    assert.deepEqual([m1[0], m2[0], m3[0], m4[0]], [0, 0, 0, 1], JSON.stringify([m1, m2, m3, m4]));
    const mq = await anon.call('/Cate.query?res=name&fmt=array&cond=' + encodeURIComponent(`id in (${m1[1]},${m2[1]},${m3[1]})`) + '&orderby=id');
    assert.deepEqual(mq[1], [{ name: '家用电器 gbk' }, { name: '数码 café' }, { name: '手机' }]);
    // batchAdd: a GBK text body, and an Excel-style GBK csv file (no charset given: detected)
    const b1 = await emp.call('/Store.batchAdd?_app=emp', { body: iconv.encode('name\taddr\n三号店\t杭州\n', 'gbk'), method: 'POST', headers: { 'content-type': 'text/plain; charset=gbk' } });
    assert.equal(b1[0], 0, JSON.stringify(b1));
    const fd = new FormData();
    fd.append('file', new Blob([iconv.encode('name,addr\n四号店,苏州\n', 'gbk')]), 'stores.csv');
    const b2 = await emp.call('/Store.batchAdd?_app=emp', { body: fd, method: 'POST' });
    assert.equal(b2[0], 0, JSON.stringify(b2));
    const st = await emp.call('/Store.query?_app=emp&res=name,addr&fmt=array&cond=' + encodeURIComponent(`id in (${[...b1[1].idList, ...b2[1].idList].join(',')})`) + '&orderby=id');
    assert.deepEqual(st[1], [
      { name: '三号店', addr: '杭州' },
      { name: '四号店', addr: '苏州' },
    ]);
  });

  it('dup copies rows and list sub-tables, with the role defaults; all or nothing', async () => {
    // employee: an order with attachments and a status log
    const src = O[1];
    const set = await emp.call(`/Ordr.set?_app=emp&id=${src}`, { json: { atts: [{ attId: 7 }, { attId: 8 }] } });
    assert.equal(set[0], 0, JSON.stringify(set));
    const r = await emp.call(`/Ordr.dup?_app=emp&id=${src}`);
    assert.equal(r[0], 0, JSON.stringify(r));
    assert.equal(r[1].length, 1);
    const [copy] = r[1];
    const g = await emp.call(`/Ordr.get?_app=emp&id=${copy}&res=id,amount,status,dscr,atts,orderLog`);
    assert.equal(g[1].amount, '20.50');
    assert.equal(g[1].status, 'RE');
    assert.equal(g[1].dscr, '李四 退款');
    assert.deepEqual(g[1].atts.map((a: any) => a.attId), [7, 8]);
    assert.deepEqual(g[1].orderLog.map((l: any) => l.action), ['RE']); // its own log, not the original's
    // user: own order → a new CR order of the user; someone else's → not found, nothing written
    const mine = (await user.call('/Ordr.query?res=id&pagesz=1'))[1].d[0][0];
    const before = (await emp.call('/Ordr.query?_app=emp&res=count(*) n&fmt=one'))[1].n;
    const d = await user.call(`/Ordr.dup?id=${mine}`);
    assert.equal(d[0], 0, JSON.stringify(d));
    const got = (await user.call(`/Ordr.get?id=${d[1][0]}&res=userId,status`))[1];
    assert.equal(got.status, 'CR');
    assert.equal(got.userId, (await user.call('/whoami'))[1].id);
    assert.equal((await user.call(`/Ordr.dup?id=${mine},${O[0]}`))[0], 1);
    assert.equal((await emp.call('/Ordr.query?_app=emp&res=count(*) n&fmt=one'))[1].n, before + 1);
    // no dup right, no id, bad id
    assert.equal((await new Client(B).call(`/Ordr.dup?id=${mine}`))[0], 2);
    assert.equal((await user.call('/Ordr.dup'))[0], 1);
    assert.equal((await user.call('/Ordr.dup?id=1;drop'))[0], 1);
  });

  it('batchSet runs set per row (status log), batchDel del per row; only rows the role sees', async () => {
    const cond = encodeURIComponent("dscr like '%退款%'");
    const logs0 = (await emp.call('/OrderLog.query?_app=emp&res=count(*) n&fmt=one'))[1].n;
    const r = await emp.call(`/Ordr.batchSet?_app=emp&cond=${cond}`, { form: { status: 'CA' } });
    assert.deepEqual(r, [0, 3]); // O[0], O[1] and the dup of O[1]
    const st = await emp.call(`/Ordr.query?_app=emp&res=status&distinct=1&cond=${cond}`);
    assert.deepEqual(st[1].d, [['CA']]);
    assert.equal((await emp.call('/OrderLog.query?_app=emp&res=count(*) n&fmt=one'))[1].n, logs0 + 3);
    // no cond, no field, no right
    assert.equal((await emp.call('/Ordr.batchSet?_app=emp', { form: { status: 'CA' } }))[0], 1);
    assert.equal((await emp.call(`/Ordr.batchSet?_app=emp&cond=${cond}`, { form: { _x: '1' } }))[0], 1);
    assert.equal((await user.call(`/Ordr.batchSet?cond=${cond}`, { form: { cmt: 'x' } }))[0], 5);
    // a failing row fails the call and undoes what it already wrote (status set before the sub-table write fails)
    const bad = await emp.call(`/Ordr.batchSet?_app=emp&cond=${cond}`, { json: { status: 'RE', orderLog: [{ action: 'X', empId: 'not-a-number' }] } });
    assert.equal(bad[0], 1);
    assert.match(bad[1], /^批量处理失败, id=\d+: /);
    assert.deepEqual((await emp.call(`/Ordr.query?_app=emp&res=status&distinct=1&cond=${cond}`))[1].d, [['CA']]);
    assert.equal((await emp.call('/OrderLog.query?_app=emp&res=count(*) n&fmt=one'))[1].n, logs0 + 3);

    // Note: every user may batchDel, but only its own rows
    for (const c of [user, user, other]) assert.equal((await c.call('/Note.add', { form: { title: 'n' } }))[0], 0);
    const del = await other.call('/Note.batchDel?cond=id>0');
    assert.deepEqual(del, [0, 1]);
    assert.equal((await user.call('/Note.query?res=count(*) n&fmt=one'))[1].n, 2);
    assert.deepEqual(await other.call('/Note.batchSet?cond=id>0', { form: { title: 'mine' } }), [0, 0]);
    assert.deepEqual((await user.call('/Note.query?res=title&distinct=1'))[1].d, [['n']]);
    // batchDel of orders (employee)
    assert.deepEqual(await emp.call(`/Ordr.batchDel?_app=emp&cond=${cond}`), [0, 3]);
    assert.equal((await emp.call(`/Ordr.query?_app=emp&res=count(*) n&fmt=one&cond=${cond}`))[1].n, 0);
    // injection in cond is refused before anything runs
    assert.equal((await emp.call(`/Ordr.batchDel?_app=emp&cond=${encodeURIComponent('id in (select id from User)')}`))[0], 5);
  });

  it('param_<sub>: res, cond (ANDed), orderby, wantOne per sub-table; pagesz only with disableSubobjOptimize', async () => {
    // two orders with status logs: a: CR PA RE CL, b: CR PA
    const add = async () => (await emp.call('/Ordr.add?_app=emp', { form: { amount: '1', dscr: 'sub', userId: '999' } }))[1] as number;
    const [a, b] = [await add(), await add()];
    for (const [id, actions] of [[a, ['PA', 'RE', 'CL']], [b, ['PA']]] as const) {
      const r = await emp.call(`/Ordr.set?_app=emp&id=${id}`, { json: { orderLog: actions.map((action) => ({ action })) } });
      assert.equal(r[0], 0, JSON.stringify(r));
    }
    const ids = `&cond=${encodeURIComponent(`id in (${a},${b})`)}&orderby=id`;
    const logs = async (q: string, init?: Parameters<Client['call']>[1]) => {
      const r = await emp.call(`/Ordr.query?_app=emp&res=id,orderLog&fmt=list${ids}${q}`, init);
      assert.equal(r[0], 0, JSON.stringify(r));
      return r[1].list.map((o: any) => o.orderLog);
    };
    const actions = (x: any[]) => x.map((l) => l.action);
    assert.deepEqual((await logs('')).map(actions), [['CR', 'PA', 'RE', 'CL'], ['CR', 'PA']]);
    // cond ANDed with the link, orderby, res
    const f = await logs(`&param_orderLog[cond]=${encodeURIComponent("action<>'CR'")}&param_orderLog[orderby]=${encodeURIComponent('id desc')}&param_orderLog[res]=action`);
    assert.deepEqual(f, [[{ action: 'CL' }, { action: 'RE' }, { action: 'PA' }], [{ action: 'PA' }]]);
    // wantOne: the first row (or null) instead of a list
    const one = await logs(`&param_orderLog[wantOne]=1&param_orderLog[res]=action&param_orderLog[cond]=${encodeURIComponent("action='RE'")}`);
    assert.deepEqual(one, [{ action: 'RE' }, null]);
    // pagesz pages each parent's rows, and needs disableSubobjOptimize=1
    const no = await emp.call(`/Ordr.query?_app=emp&res=id,orderLog${ids}&param_orderLog[pagesz]=2`);
    assert.equal(no[0], 1);
    assert.match(no[2], /disableSubobjOptimize/);
    const paged = await logs('&param_orderLog[pagesz]=2&param_orderLog[orderby]=id%20desc&disableSubobjOptimize=1');
    assert.deepEqual(paged.map(actions), [['CL', 'RE'], ['PA', 'CR']]);
    // a JSON body (object cond form), and Ordr.get
    const body = await logs('', { json: { param_orderLog: { cond: { action: 'PA' }, res: 'id,action', wantOne: true } } });
    assert.deepEqual(body.map((l: any) => l?.action), ['PA', 'PA']);
    const g = await emp.call(`/Ordr.get?_app=emp&id=${a}&res=id,orderLog&param_orderLog[cond]=${encodeURIComponent("action in ('RE','CL')")}&param_orderLog[res]=action`);
    assert.deepEqual(g[1].orderLog, [{ action: 'RE' }, { action: 'CL' }]);
    // a sub-table cond is parsed like any cond: injection refused, unknown fields named
    const inj = await emp.call(`/Ordr.query?_app=emp&res=id,orderLog${ids}&param_orderLog[cond]=${encodeURIComponent('id in (select id from bqp_User)')}`);
    assert.equal(inj[0], 5);
    assert.equal((await emp.call(`/Ordr.query?_app=emp&res=id,orderLog${ids}&param_orderLog[cond]=nosuch%3D1`))[0], 3);
    assert.equal((await emp.call(`/Ordr.query?_app=emp&res=id,orderLog${ids}&param_orderLog[pagesz]=x&disableSubobjOptimize=1`))[0], 1);
    // the same through the lane (a GET with a session cookie) and through a user's row filter
    assert.deepEqual((await user.call(`/Ordr.query?res=id,orderLog&param_orderLog[res]=action&pagesz=1`))[0], 0);
  });

  it('declared methods: fixed parameters, conditions from the call (bound), their own permission, row filters', async () => {
    // ApiLog.listByAc from the shipped example: the calls of one ac, newest first, as a list
    const g = new Client(B);
    for (const addr of ['m1', 'm2']) assert.equal((await g.call('/ApiLog.add', { form: { ac: 'meth-test', addr } }))[0], 0);
    assert.equal((await g.call('/ApiLog.add', { form: { ac: 'other', addr: 'm3' } }))[0], 0);
    const l = await g.call('/ApiLog.listByAc?ac=meth-test&res=id,ac,addr');
    assert.equal(l[0], 0, JSON.stringify(l));
    assert.deepEqual(l[1].list.map((r: any) => [r.ac, r.addr]), [['meth-test', 'm2'], ['meth-test', 'm1']]);
    // the call's own cond narrows it further; its own parameters cannot undo a fixed one (fmt)
    const n = await g.call(`/ApiLog.listByAc?ac=meth-test&res=addr&fmt=array&cond=${encodeURIComponent("addr='m1'")}`);
    assert.deepEqual(n[1].list, [{ addr: 'm1' }]);
    assert.deepEqual(await g.call('/ApiLog.listByAc'), [1, '缺少参数`ac`', '缺少参数`ac`']);
    // the parameter is a bound value: SQL in it matches nothing and breaks nothing
    assert.deepEqual((await g.call(`/ApiLog.listByAc?ac=${encodeURIComponent("x' or '1'='1")}`))[1].list, []);
    assert.equal((await g.call('/ApiLog.nosuch'))[0], 1);

    // Ordr.mine for users: the user's row filter applies; Ordr.byStatus is the employee's only
    const m = await user.call('/Ordr.mine?status=CR');
    assert.equal(m[0], 0, JSON.stringify(m));
    assert.deepEqual(m[1].h, ['id', 'status', 'userId']);
    const uid = (await user.call('/whoami'))[1].id;
    assert.ok(m[1].d.length > 0 && m[1].d.every((r: any[]) => r[1] === 'CR' && r[2] === uid), JSON.stringify(m[1].d));
    assert.equal((await user.call('/Ordr.byStatus'))[0], 5);
    assert.equal((await other.call('/Ordr.byStatus'))[0], 5);
    const b = await emp.call('/Ordr.byStatus?_app=emp');
    assert.equal(b[0], 0, JSON.stringify(b));
    assert.deepEqual(b[1].h, ['status', 'n']);
    assert.equal((await new Client(B).call('/Ordr.mine?status=CR'))[0], 2);
    // a get method: the id from the call, the fixed res, the user's own rows only
    const mine = m[1].d[0][0];
    assert.deepEqual((await user.call(`/Ordr.one?id=${mine}`))[1], { id: mine, amount: (await user.call(`/Ordr.get?id=${mine}&res=amount`))[1].amount });
    const theirs = (await emp.call('/Ordr.query?_app=emp&res=id&cond=userId%3D999&pagesz=1'))[1].d[0]?.[0];
    if (theirs !== undefined) assert.equal((await user.call(`/Ordr.one?id=${theirs}`))[0], 1, 'not found for this user');
    // the native API lists the methods beside the standard operations
    const desc = objectsOf(s.ctx).describe(objectsOf(s.ctx).schema.objects.get('Ordr')!);
    assert.ok(desc.operations.user!.includes('mine') && !desc.operations.user!.includes('byStatus'));
    assert.ok(desc.operations.employee!.includes('byStatus'));
  });

  it('legacy spellings: rows and _pagesz, _pagekey, _fmt, easyui sort + order', async () => {
    const g = new Client(B);
    const want = (await g.call('/ApiLog.query?res=id,ac&orderby=ac%20desc,id%20asc&pagesz=3'))[1];
    assert.equal(want.d.length, 3);
    assert.deepEqual((await g.call('/ApiLog.query?res=id,ac&sort=ac,id&order=desc,asc&rows=3'))[1], want);
    assert.deepEqual((await g.call('/ApiLog.query?res=id,ac&sort=ac,id&order=desc&_pagesz=3'))[1].d, want.d);
    const list = await g.call('/ApiLog.query?res=id&_fmt=list&_pagesz=2&orderby=id');
    assert.equal(list[1].list.length, 2);
    const next = await g.call(`/ApiLog.query?res=id&_fmt=list&_pagesz=2&orderby=id&_pagekey=${list[1].nextkey}`);
    assert.ok(next[1].list[0].id > list[1].list[1].id);
    const csv = await g.req('/ApiLog.query?res=id,ac&_fmt=csv&_pagesz=2');
    assert.match(csv.headers.get('content-type') ?? '', /^application\/csv/);
    assert.equal(csv.text.split('\n')[0], 'id,ac');
    // sort is checked like any orderby
    assert.equal((await g.call(`/ApiLog.query?sort=${encodeURIComponent('id; drop table x')}`))[0], 1);
  });

  it('flags and props: flag_x / prop_x in add, set, cond, res and orderby; object rows show them', async () => {
    const g = new Client(B);
    const a = (await g.call('/Item.add', { form: { name: 'a', flag_a: '1', flag_b: '1', prop_vip: '1' } }))[1];
    const b = (await g.call('/Item.add', { form: { name: 'b', flags: 'c', prop_new_user: '1', prop_vip: '0' } }))[1];
    assert.deepEqual((await g.call(`/Item.get?id=${a}`))[1], { id: a, name: 'a', flags: 'ab', props: 'vip', flag_a: 1, flag_b: 1, prop_vip: 1 });
    assert.deepEqual((await g.call(`/Item.get?id=${b}`))[1], { id: b, name: 'b', flags: 'c', props: 'new_user', flag_c: 1, prop_new_user: 1 });
    // set changes the stored value bit by bit
    assert.equal((await g.call(`/Item.set?id=${a}`, { form: { flag_a: '0', flag_c: '1', prop_vip: '1', prop_gold: '1' } }))[0], 0);
    assert.deepEqual((await g.call(`/Item.get?id=${a}&res=flags,props`))[1], { flags: 'bc', props: 'vip gold', flag_b: 1, flag_c: 1, prop_vip: 1, prop_gold: 1 });
    const ids = (q: string) => g.call(`/Item.query?res=id&fmt=array&orderby=id&cond=${encodeURIComponent(q)}`).then((r) => r[1]?.map((x: any) => x.id) ?? r);
    assert.deepEqual(await ids('flag_c=1'), [a, b]);
    assert.deepEqual(await ids('flag_b=1 and flag_a=0'), [a]);
    assert.deepEqual(await ids('flag_C=1'), [], 'flags are case-sensitive');
    assert.deepEqual(await ids('prop_new_user=1'), [b]);
    assert.deepEqual(await ids('prop_new=1'), [], 'a prop is a whole word');
    assert.deepEqual(await ids('prop_vip=1'), [a]);
    // as columns of a table, and in orderby
    const t = await g.call(`/Item.query?res=id,flag_b,prop_gold&orderby=flag_b%20desc,id&cond=${encodeURIComponent(`id in (${a},${b})`)}`);
    assert.deepEqual(t[1].h, ['id', 'flag_b', 'prop_gold']);
    assert.deepEqual(t[1].d, [[a, 1, 1], [b, 0, 0]]);
    // a table with the flags field gets the rows' flag_x as extra columns (1 or null), like the reference
    const tf = await g.call(`/Item.query?res=id,flags&orderby=id&cond=${encodeURIComponent(`id in (${a},${b})`)}`);
    assert.deepEqual(tf[1].h, ['id', 'flags', 'flag_b', 'flag_c']);
    assert.deepEqual(tf[1].d, [[a, 'bc', 1, 1], [b, 'c', null, 1]]);
    const csv = await g.req(`/Item.query?res=id,props&fmt=csv&orderby=id&cond=${encodeURIComponent(`id in (${a},${b})`)}`);
    assert.equal(csv.text, `id,props,prop_vip,prop_gold,prop_new_user\n${a},vip gold,1,1,\n${b},new_user,,,1\n`);
    // bad values, names, and objects without the field
    assert.equal((await g.call(`/Item.set?id=${a}`, { form: { flag_a: '2' } }))[0], 1);
    assert.equal((await g.call(`/Item.set?id=${a}`, { form: { flag_ab: '1' } }))[0], 3);
    assert.equal((await g.call(`/Item.set?id=${a}`, { form: { prop_x: '1', prop_y: '1', prop_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz: '1', prop_wwwwwwwwwwwwwwwwwww: '1' } }))[0], 1, 'longer than the field');
    assert.equal((await g.call('/ApiLog.query?cond=flag_a%3D1'))[0], 3);
    assert.equal((await g.call(`/Item.set?id=999999`, { form: { flag_a: '1' } }))[0], 1);
  });
});
