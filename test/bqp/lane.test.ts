/**
 * The BQP dialect's lane (src/dialects/bqp/index.ts): `GET /api/Obj.query|get` with a session
 * cookie or no credentials is answered before Fastify with the bytes the route sends — results,
 * every output variant and every refusal — and is logged alike (ApiLog call log, request log,
 * metrics). Everything else goes to the route.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bqpLaneOf, objectsOf } from '../../src/modules/objects.js';
import { flushRequests } from '../../src/services/usage/index.js';
import { lanePair, type Answer, type TestServer } from '../helpers.js';
import { Client, startBqp } from './client.js';

describe('BQP lane', () => {
  let s: TestServer;
  let prefix: string;
  let direct: string;
  let viaLane: ReturnType<typeof lanePair>['viaLane'];
  let viaFastify: ReturnType<typeof lanePair>['viaFastify'];
  let same: ReturnType<typeof lanePair>['same'];
  let user: string; // cookie header of a logged-in user
  let emp: string; // … and of an employee
  let order: number;
  const answered = () => bqpLaneOf(s.ctx)!.answered;

  before(async () => {
    ({ s } = await startBqp());
    prefix = s.config.bqpPrefix;
    ({ direct, viaLane, viaFastify, same } = lanePair(s, answered, prefix));
    const u = new Client(direct);
    assert.equal((await u.call('/login', { form: { uname: 'rtest', pwd: '1234' } }))[0], 0);
    user = `userid=${u.cookies.get('userid')}`;
    const e = new Client(direct);
    assert.equal((await e.call('/login?_app=emp', { form: { uname: 'emp', pwd: '1234' } }))[0], 0);
    emp = `empid=${e.cookies.get('empid')}`;
    order = (await u.call('/Ordr.add', { form: { amount: '12.5', dscr: 'lane' } }))[1];
  });
  after(() => s.close());

  const json = (a: Answer) => JSON.parse(a.body);

  it('answers queries and gets with the bytes the route sends, in every output form', async () => {
    const q = json(await same('/Ordr.query', { cookie: user }));
    assert.equal(q[0], 0);
    assert.ok(q[1].d.some((row: unknown[]) => row[0] === order), 'the user sees the new order');
    const cases = [
      '/Ordr.query?res=id,amount&pagesz=1',
      '/Ordr.query?res=id,amount&pagekey=0',
      '/Ordr.query?fmt=list&res=id,dscr',
      '/Ordr.query?fmt=array&res=id',
      '/Ordr.query?fmt=one&orderby=id%20desc',
      '/Ordr.query?fmt=one%3F&res=id&cond=id%3D-1',
      '/Ordr.query?fmt=hash:id,amount',
      '/Ordr.query?fmt=tree',
      `/Ordr.query?cond=${encodeURIComponent(`amount>10 and dscr like 'la%'`)}`,
      `/Ordr.get?id=${order}`,
      `/Ordr.get?id=${order}&res=id,amount&_raw=1`,
      `/Ordr.get?id=${order}&_raw=2`,
      `/Ordr.get?id=${order}&_jsonp=cb`,
      `/Ordr.get?id=${order}&retfn=obj`,
      `/Ordr.get?id=${order}&retfn=xml`,
      '/Ordr.query?a[b][]=1&a[b][]=2',
      '/Ordr.query?x=1?y=2',
    ];
    for (const path of cases) {
      const a = await same(path, { cookie: user });
      assert.equal(a.status, 200, path);
    }
    assert.match((await same(`/Ordr.get?id=${order}&retfn=xml`, { cookie: user })).headers['content-type'], /^application\/xml/);
    // an employee session, with other cookies beside it
    const e = json(await same('/Ordr.query?_app=emp&res=id&pagesz=3', { cookie: `theme=dark; ${emp}; x="1"` }));
    assert.equal(e[0], 0);
    // a guest object without credentials
    assert.equal(json(await same('/ApiLog.query?res=id,ac&pagesz=2'))[0], 0);
  });

  it('refuses alike: not logged in, unknown rows, forbidden and unknown fields, bad cond and fmt', async () => {
    const refusals: [string, Record<string, string>, number][] = [
      ['/Ordr.query', {}, 2],
      ['/Ordr.query', { cookie: 'userid=not-a-session' }, 2],
      ['/Ordr.query', { cookie: emp }, 2], // an employee cookie, but the call says it is the user app
      ['/Ordr.get?id=999999', { cookie: user }, 1],
      ['/Ordr.get', { cookie: user }, 1],
      [`/Ordr.query?cond=${encodeURIComponent('id in (select id from bqp_User)')}`, { cookie: user }, 5],
      [`/Ordr.query?cond=${encodeURIComponent("1=1 union select 1")}`, { cookie: user }, 5],
      ['/Ordr.query?cond=nosuch%3D1', { cookie: user }, 3],
      ['/Ordr.query?res=nosuch', { cookie: user }, 3],
      ['/Ordr.query?fmt=bogus', { cookie: user }, 1],
      ['/Ordr.query?fmt=one&cond=id%3D-1', { cookie: user }, 1],
      ['/Ordr.query?pagesz=abc', { cookie: user }, 1],
      ['/Nosuch.query', { cookie: user }, 5],
    ];
    for (const [path, headers, code] of refusals) {
      const a = json(await same(path, headers));
      assert.equal(a[0], code, `${path}: ${JSON.stringify(a)}`);
    }
  });

  it('leaves everything else to the route', async () => {
    const others: [string, RequestInit][] = [
      ['/Ordr.query', { method: 'POST', headers: { cookie: user } }],
      ['/Ordr.query?fmt=csv', { headers: { cookie: user } }],
      ['/Ordr.query?fmt=excel', { headers: { cookie: user } }],
      ['/Ordr.query?_fmt=csv', { headers: { cookie: user } }],
      ['/Ordr.query/', { headers: { cookie: user } }],
      ['/%4Frdr.query', { headers: { cookie: user } }],
      ['//Ordr.query', { headers: { cookie: user } }],
      ['/Ordr', { headers: { cookie: user } }],
      [`/Ordr/${order}`, { headers: { cookie: user } }],
      ['/Ordr.add?amount=1', { headers: { cookie: user } }],
      ['/whoami', { headers: { cookie: user } }],
      ['?ac=Ordr.query', { headers: { cookie: user } }],
      ['/Ordr.query?_ac=Ordr.get', { headers: { cookie: user } }],
      ['/Ordr.query', { headers: { cookie: user, origin: 'http://app.example' } }],
      ['/Store.query?_sign=x', {}],
      ['/Ordr.query', { headers: { authorization: 'Basic ' + Buffer.from('a:b').toString('base64') } }],
      ['/Ordr.query', { method: 'HEAD', headers: { cookie: user } }],
    ];
    for (const [path, init] of others) {
      const n = answered();
      const r = await fetch(direct + path, init);
      await r.arrayBuffer();
      assert.equal(r.status, 200, path);
      assert.equal(answered() - n, 0, `${path} goes to the route`);
    }
    // CORS answers still come from the route, with their headers
    const cors = await fetch(`${direct}/Ordr.query`, { headers: { cookie: user, origin: 'http://app.example' } });
    assert.equal(cors.headers.get('access-control-allow-origin'), 'http://app.example');
  });

  it('logs lane calls in ApiLog and the request log like the route does', async () => {
    const svc = objectsOf(s.ctx);
    const log = svc.schema.objects.get(svc.schema.apiLog!)!.table;
    await svc.flushLog();
    await flushRequests(s.ctx);
    const lastLog = Number(((await s.ctx.db.kysely.selectFrom(log as any).select((eb: any) => eb.fn.max('id').as('id')).executeTakeFirst()) as { id?: number } | undefined)?.id ?? 0);
    const lastReq = Number((await s.ctx.db.kysely.selectFrom('request_log').select((eb) => eb.fn.max('id').as('id')).executeTakeFirst())?.id ?? 0);
    const headers = { cookie: user, 'user-agent': 'lane-test/1' };
    for (const path of [`/Ordr.get?id=${order}&pwd=secret`, '/Ordr.query?cond=nosuch%3D1']) {
      assert.equal((await viaLane(path, headers)).lane, 1);
      await viaFastify(path, headers);
    }
    await svc.flushLog();
    await flushRequests(s.ctx);
    const calls = await s.ctx.db.kysely.selectFrom(log as any).selectAll().where('id', '>', lastLog).orderBy('id').execute();
    const strip = ({ id: _i, tm: _tm, t: _t, addr: _a, ...rest }: any) => rest;
    assert.equal(calls.length, 4);
    assert.deepEqual(strip(calls[0]), strip(calls[1]), 'a lane call and a route call make the same ApiLog row');
    assert.deepEqual(strip(calls[2]), strip(calls[3]));
    assert.equal(calls[0].ua, 'lane-test/1');
    assert.equal(Number(calls[0].retval), 0);
    assert.equal(Number(calls[2].retval), 3);
    assert.match(String(calls[0].req), /"pwd":"\*\*\*"/, 'secrets are masked in the stored request');
    assert.ok(Number(calls[0].userId) > 0, 'the user is recorded');
    const reqs = await s.ctx.db.kysely.selectFrom('request_log').selectAll().where('id', '>', lastReq).where('service', '=', 'bqp').orderBy('id').execute();
    // the lane's requests (over HTTP) are recorded like the route's (inject goes through the same hook)
    assert.deepEqual(
      reqs.map((r) => [r.method, r.route, Number(r.status), r.error_code]),
      [
        ['GET', `${prefix}/:call`, 200, null],
        ['GET', `${prefix}/:call`, 200, null],
        ['GET', `${prefix}/:call`, 200, 'UNKNOWN_FIELD'],
        ['GET', `${prefix}/:call`, 200, 'UNKNOWN_FIELD'],
      ],
    );
    const metrics = await (await fetch(`${direct.slice(0, -prefix.length)}/metrics`)).text();
    const re = new RegExp(`menhu_http_requests_total\\{method="GET",route="${prefix.replace(/\//g, '\\/')}\\/:call",status="200"\\} (\\d+)`);
    assert.ok(Number(re.exec(metrics)?.[1]) >= 2, 'lane calls are counted in /metrics');
  });

  it('refuses a session at once after logout and after a password change, though sessions are cached', async () => {
    const c = new Client(s.url + prefix);
    assert.equal((await c.call('/login', { form: { uname: 'rtest', pwd: '1234' } }))[0], 0);
    const cookie = `userid=${c.cookies.get('userid')}`;
    assert.equal(json(await same('/Ordr.query?res=id', { cookie }))[0], 0);
    assert.equal((await c.call('/logout'))[0], 0);
    assert.equal(json(await same('/Ordr.query?res=id', { cookie }))[0], 2, 'logged out');

    const d = new Client(s.url + prefix);
    assert.equal((await d.call('/login', { form: { uname: 'rtest', pwd: '1234' } }))[0], 0);
    const other = `userid=${d.cookies.get('userid')}`;
    assert.equal(json(await same('/Ordr.query?res=id', { cookie: other }))[0], 0);
    assert.equal((await d.call('/chpwd', { form: { oldpwd: '1234', pwd: '5678' } }))[0], 0);
    // the old session is gone (chpwd hands this client a new one)
    assert.equal(json(await same('/Ordr.query?res=id', { cookie: other }))[0], 2, 'sessions end with a password change');
    assert.equal((await d.call('/chpwd', { form: { oldpwd: '5678', pwd: '1234' } }))[0], 0);
  });

  it('a lane that fails after taking a request still answers: 500 problem, no stack, the server goes on', async () => {
    const lane = bqpLaneOf(s.ctx)!;
    const real = lane.handler;
    lane.handler = () => Promise.reject(new Error('a bug in a lane'));
    try {
      const r = await fetch(`${direct}/ApiLog.query`, { signal: AbortSignal.timeout(5000) });
      assert.equal(r.status, 500);
      const body = (await r.json()) as { code: string; request_id: string };
      assert.equal(body.code, 'INTERNAL');
      assert.match(body.request_id, /^req-/);
      assert.doesNotMatch(JSON.stringify(body), /a bug in a lane|at /);
    } finally {
      lane.handler = real;
    }
    assert.equal(json(await same('/ApiLog.query?res=id&pagesz=1'))[0], 0);
  });
});
