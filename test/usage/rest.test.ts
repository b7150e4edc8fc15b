/**
 * The request log and usage over real HTTP: requests through the dialects (MiningLamp passcode,
 * cli.im sign, BQP _sign in the query string, Ulord appkey with a pay password, native bearer and
 * HMAC) land in the log with their app, tenant, service, route pattern and error code, and no
 * secret lands anywhere in the tables; the REST endpoints filter, page, keep tenants apart and
 * answer bad input with problem+json.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bqpSign, cliSign } from '../../src/core/credentials/schemes.js';
import { DEMO, seedDemo, type DemoInfo } from '../../src/demo.js';
import { FLUSH_MS, flushRequests } from '../../src/services/usage/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { bearer, http, jsonBody, operatorCreds, signedHeaders, startServer, tenantWithApp, type NativeCreds, type TestServer } from '../helpers.js';

describe('request log over HTTP', () => {
  let s: TestServer;
  let demo: DemoInfo;
  let op: NativeCreds;
  let other: Awaited<ReturnType<typeof tenantWithApp>>;
  let nativeSecret: string;
  const get = (path: string, creds: NativeCreds = op) => http(`${s.url}/rest/v1${path}`, { headers: bearer(creds) });
  const secrets: string[] = [];
  const logSince = async (t: number) => {
    await flushRequests(s.ctx);
    return s.ctx.db.kysely.selectFrom('request_log').selectAll().where('at', '>=', t).orderBy('id').execute();
  };

  before(async () => {
    s = await startServer();
    demo = await seedDemo(s.ctx);
    op = await operatorCreds(s.ctx);
    other = await tenantWithApp(s.ctx, 'other');
    nativeSecret = demo.native.secret;
    secrets.push(op.secret, other.creds.secret, nativeSecret, DEMO.cli.secret, DEMO.bqpSign.secret, 'wrong-passcode-xyz', 'pay-pw-secret-123');
  });
  after(() => s?.close());

  it('records requests through five surfaces with app, tenant, service, route pattern, status and error code', async () => {
    const t0 = Date.now();
    // native, bearer and HMAC (the signed request carries a query string)
    const nat = { key: demo.native.key, secret: nativeSecret };
    assert.equal((await http(`${s.url}/rest/v1/me`, { headers: bearer(nat) })).status, 200);
    const pq = `/rest/v1/apps/${demo.native.id}?x=1`;
    assert.equal((await http(s.url + pq, { headers: signedHeaders(nat, 'GET', pq) })).status, 200);
    assert.equal((await http(`${s.url}/rest/v1/me`, { headers: { authorization: `Bearer ${demo.native.key}.nope` } })).status, 401);
    // MiningLamp: a wrong passcode, then a good call
    let r = await fetch(`${s.url}/api/v1/getqrlink/R-1`, { method: 'POST', body: new URLSearchParams({ user: DEMO.mininglamp.key, passcode: 'wrong-passcode-xyz' }) });
    assert.equal(r.status, 400);
    // cli.im, signed
    const params = { template_num: 'M8', api_key: DEMO.cli.key, values: ['a', 'b', 'c', 'd', 'e', 'f', '', ''] };
    const cli = await http(`${s.url}/cli-open-platform-service/v1/dynamicQrcode/dynamicSingleCreate`, jsonBody({ ...params, sign: cliSign(params, DEMO.cli.secret) }));
    assert.equal(cli.json.code, 0, cli.text);
    // BQP: _sign in the query string
    const ts = String(Math.floor(Date.now() / 1000));
    const sign = bqpSign(ts, DEMO.bqpSign.secret);
    r = await fetch(`${s.url}/api/Store.query?timestamp=${ts}&_sign=${sign}&res=id`);
    assert.equal(r.status, 200);
    // Ulord: a transfer with a pay password (refused: no such wallet)
    const ul = await http(`${s.url}/v1/transactions/paytouser/`, jsonBody({ send_user: 'nobody', pay_password: 'pay-pw-secret-123', recv_user: 'x', amount: '1' }, { appkey: demo.ulord.key }));
    assert.notEqual(ul.json.errcode, 0);
    // Fangtang: a bad token is answered 200 with an error body, and counts as failed
    const ft = await http(`${s.url}/api/third/company/nums`, { method: 'POST', headers: { token: 'not-a-token' }, body: new URLSearchParams({ third_code: DEMO.fangtang.key }) });
    assert.equal(ft.status, 200);
    // a path under the native API that no route takes
    assert.equal((await http(`${s.url}/rest/v1/no/such/thing?secret=abc`, { headers: bearer(nat) })).status, 404);
    // not API surfaces: health, metrics, console
    await fetch(`${s.url}/healthz`);
    await fetch(`${s.url}/metrics`);
    await fetch(`${s.url}/console/`);

    // 9 requests on API surfaces (in cluster mode the other server's buffer lands within FLUSH_MS)
    let rows = await logSince(t0 - 1000);
    for (let i = 0; i < 40 && rows.length < 9; i++) rows = (await sleep(100), await logSince(t0 - 1000));
    assert.equal(rows.length, 9);
    rows.sort((x, y) => Number(x.at) - Number(y.at) || Number(x.id) - Number(y.id));
    const by = (service: string) => rows.filter((x) => x.service === service);
    assert.deepEqual([...new Set(rows.map((x) => x.service))].sort(), ['bqp', 'cli', 'fangtang', 'mininglamp', 'native', 'ulord']);
    assert.ok(!rows.some((x) => /healthz|metrics|console/.test(x.route)), 'health, metrics and console are not logged');

    const nat1 = by('native');
    assert.deepEqual(
      nat1.map((x) => [x.method, x.route, x.status, x.app_id === null ? null : Number(x.app_id), x.error_code]),
      [
        ['GET', '/rest/v1/me', 200, demo.native.id, null],
        ['GET', '/rest/v1/apps/:id', 200, demo.native.id, null],
        ['GET', '/rest/v1/me', 401, null, 'SECRET_INVALID'],
        ['GET', '(unmatched)', 404, demo.native.id, 'NOT_FOUND'],
      ],
    );
    assert.equal(Number(nat1[0].tenant_id), demo.tenantId);
    assert.equal(nat1[2].tenant_id, null, 'a caller that did not prove its secret is nobody');
    const ml = by('mininglamp')[0];
    assert.deepEqual([ml.route, ml.status, ml.error_code, ml.app_id], ['/api/v1/getqrlink/*', 400, 'SECRET_INVALID', null]);
    const f = by('fangtang')[0];
    assert.deepEqual([f.route, f.status, f.error_code], ['/api/third/company/nums', 200, 'SIGN_INVALID']);
    const c = by('cli')[0];
    assert.deepEqual([c.status, c.error_code, Number(c.tenant_id)], [200, null, demo.tenantId]);
    const b = by('bqp')[0];
    assert.deepEqual([b.route, b.status, Number(b.tenant_id)], ['/api/:call', 200, demo.tenantId]);
    const u = by('ulord')[0];
    assert.equal(u.route, '/v1/transactions/paytouser/');
    assert.equal(Number(u.app_id), demo.ulord.id);
    assert.ok(u.error_code, 'the refused transfer carries its error code');
    for (const x of rows) {
      assert.match(x.ip_prefix, /^127\.0\.0\.0\/24$/);
      assert.ok(Number(x.duration_us) >= 0 && Number(x.at) >= t0 - 1000 && Number(x.at) <= Date.now());
    }
  });

  it('keeps no secret, signature or query string in the log or the aggregates', async () => {
    await sleep(FLUSH_MS + 200);
    const dump = JSON.stringify([await s.ctx.db.kysely.selectFrom('request_log').selectAll().execute(), await s.ctx.db.kysely.selectFrom('usage_hourly').selectAll().execute()]);
    for (const secret of secrets) assert.ok(!dump.includes(secret), `secret ${secret.slice(0, 4)}… found in the log`);
    assert.ok(!/_sign|timestamp=|\?|Bearer|x-menhu|passcode|pay_password/i.test(dump));
  });

  it('serves the log newest first with filters and a cursor, tenant-scoped', async () => {
    // 7 failing native calls from the other tenant's app
    for (let i = 0; i < 7; i++) assert.equal((await get('/apps/999999', other.creds)).status, 404);
    await sleep(FLUSH_MS + 200); // every server's buffer written (cluster mode)
    let r = await get(`/requests?app_id=${other.app.id}&limit=3`);
    assert.equal(r.status, 200, r.text);
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      r = await get(`/requests?app_id=${other.app.id}&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(r.status, 200, r.text);
      seen.push(...r.json.items.map((x: { id: number }) => x.id));
      cursor = r.json.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    assert.equal(seen.length, 7);
    assert.equal(new Set(seen).size, 7);
    assert.equal(pages, 3);

    r = await get(`/requests?status=404&route=${encodeURIComponent('/rest/v1/apps/:id')}&error_code=NOT_FOUND&service=native&method=GET`);
    assert.equal(r.json.items.length, 7);
    const times = r.json.items.map((x: { at: number }) => x.at);
    assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
    assert.equal((await get('/requests?status_class=4xx&app_id=' + other.app.id)).json.items.length, 7);
    assert.equal((await get('/requests?status_class=2xx&app_id=' + other.app.id)).json.items.length, 0);
    assert.ok((await get('/requests?errors=true&service=mininglamp')).json.items.length >= 1);
    assert.equal((await get(`/requests?from=${Date.now() + 60_000}`)).json.items.length, 0);

    // the other tenant sees only its own requests; asking for another tenant is refused
    r = await get('/requests?limit=500', other.creds);
    assert.ok(r.json.items.length >= 7);
    assert.ok(r.json.items.every((x: { tenant_id: number }) => x.tenant_id === other.tenantId));
    assert.equal((await get(`/requests?tenant_id=${demo.tenantId}`, other.creds)).status, 403);
    assert.equal((await get(`/requests?app_id=${demo.native.id}`, other.creds)).json.items.length, 0);
    // operators see every tenant, or one
    r = await get(`/requests?tenant_id=${demo.tenantId}&limit=500`);
    assert.ok(r.json.items.length > 0 && r.json.items.every((x: { tenant_id: number }) => x.tenant_id === demo.tenantId));

    const f = await get('/requests/facets', other.creds);
    assert.deepEqual(f.json.services, ['native']);
    assert.ok(f.json.error_codes.includes('NOT_FOUND'));
  });

  it('reports usage per service and per app from the aggregates, tenant-scoped', async () => {
    let r = await get(`/usage?group=service&tenant_id=${demo.tenantId}`);
    assert.equal(r.status, 200, r.text);
    const services = Object.fromEntries(r.json.series.map((x: { key: string; requests: number }) => [x.key, x.requests]));
    for (const sv of ['native', 'cli', 'bqp', 'ulord']) assert.ok(services[sv] >= 1, `${sv} in ${JSON.stringify(services)}`);
    assert.equal(r.json.buckets.length, r.json.series[0].points.length);
    r = await get('/usage?group=app&bucket=day', other.creds);
    assert.equal(r.status, 200, r.text);
    const mine = r.json.series.find((x: { app_id: number }) => x.app_id === other.app.id);
    assert.ok(mine.requests >= 7 && mine.errors >= 7, JSON.stringify(mine));
    assert.equal(mine.app_name, other.app.name);
    assert.ok(r.json.series.every((x: { app_id: number | null }) => x.app_id === other.app.id || x.app_id === null), 'only its own apps');
    assert.equal((await get(`/usage?tenant_id=${demo.tenantId}`, other.creds)).status, 403);
  });

  it('answers bad input with problem+json', async () => {
    for (const q of [
      '/requests?limit=0',
      '/requests?limit=abc',
      '/requests?status=99',
      '/requests?status_class=6xx',
      '/requests?cursor=xyz',
      '/requests?from=10&to=5',
      '/requests?error_code=bad%20code',
      '/requests?nope=1',
      '/usage?bucket=week',
      '/usage?group=route',
      '/usage?from=5&to=5',
      `/usage?bucket=hour&from=0&to=${Date.now()}`,
    ]) {
      const r = await get(q);
      assert.equal(r.status, 400, `${q} → ${r.status} ${r.text}`);
      assert.match(r.headers.get('content-type') ?? '', /application\/problem\+json/);
      assert.equal(r.json.code, 'VALIDATION', q);
    }
    assert.equal((await http(`${s.url}/rest/v1/requests`)).status, 401);
  });
});
