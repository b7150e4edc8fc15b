/**
 * The native API's fast lane (src/dialects/rest/lane.ts): plain reads called with an API key are
 * answered before Fastify with the bytes the Fastify route sends — successes and every refusal —
 * and are recorded alike (request log, metrics); sessions, HEAD and anything else go to Fastify.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { updateApp } from '../../src/core/credentials/apps.js';
import { flushRequests } from '../../src/services/usage/index.js';
import { bearer, lanePair, operatorCreds, signedHeaders, startServer, tenantWithApp, type NativeCreds, type TestServer } from '../helpers.js';

const R = '/rest/v1';

describe('native fast lane', () => {
  let s: TestServer;
  let direct: string;
  let viaLane: ReturnType<typeof lanePair>['viaLane'];
  let viaFastify: ReturnType<typeof lanePair>['viaFastify'];
  let same: ReturnType<typeof lanePair>['same'];
  let creds: NativeCreds;
  let tenantId: number;
  let appId: number;

  before(async () => {
    s = await startServer();
    ({ direct, viaLane, viaFastify, same } = lanePair(s, () => s.app.nativeLane.answered));
    const t = await tenantWithApp(s.ctx, 'lane');
    creds = t.creds;
    tenantId = t.tenantId;
    appId = t.app.id;
  });
  after(() => s.close());

  it('answers /me, /tenants and /roles with the bytes Fastify sends, bearer and HMAC', async () => {
    const me = await same(`${R}/me`, () => bearer(creds));
    assert.equal(me.status, 200);
    const body = JSON.parse(me.body);
    assert.equal(body.kind, 'app');
    assert.equal(body.tenant.id, tenantId);
    assert.equal(body.app.id, appId);
    assert.equal(body.app.description, null);
    assert.equal(body.app.secret, undefined, 'the secret is never in /me');
    // every request signed anew (a nonce is good once), with and without a query string
    for (const path of [`${R}/me`, `${R}/me?x=1&y=%E4%BD%A0`, `${R}/tenants`, `${R}/roles`]) {
      const a = await same(path, () => signedHeaders(creds, 'GET', path));
      assert.equal(a.status, 200, a.body);
    }
    const tenants = JSON.parse((await viaLane(`${R}/tenants`, bearer(creds))).body);
    assert.deepEqual(tenants.map((t: { id: number }) => t.id), [tenantId], 'a tenant app sees its own tenant only');
    const op = await operatorCreds(s.ctx);
    const all = JSON.parse((await viaLane(`${R}/tenants`, bearer(op))).body);
    assert.ok(all.length >= 2, 'an operator sees every tenant');
  });

  it('refuses alike: wrong secret, bad signature, stale timestamp, replayed nonce, blocked, IP, rate limit', async () => {
    const path = `${R}/me`;
    const cases: [string, () => Record<string, string>, number, string][] = [
      ['wrong secret', () => bearer({ ...creds, secret: 'nope' }), 401, 'SECRET_INVALID'],
      ['unknown key', () => bearer({ key: 'k'.repeat(32), secret: 's' }), 401, 'KEY_UNKNOWN'],
      ['bad signature', () => ({ ...signedHeaders(creds, 'GET', path), 'x-menhu-signature': '0'.repeat(64) }), 401, 'SIGN_INVALID'],
      ['malformed nonce', () => ({ ...signedHeaders(creds, 'GET', path), 'x-menhu-nonce': 'short' }), 401, 'SIGN_INVALID'],
      ['stale timestamp', () => signedHeaders(creds, 'GET', path, '', { timestamp: Math.floor(Date.now() / 1000) - 3600 }), 401, 'TIMESTAMP_STALE'],
      ['signed for another path', () => signedHeaders(creds, 'GET', `${R}/tenants`), 401, 'SIGN_INVALID'],
    ];
    for (const [what, headers, status, code] of cases) {
      const a = await same(path, headers);
      assert.equal(a.status, status, what);
      assert.equal(JSON.parse(a.body).code, code, what);
      assert.equal(a.headers['content-type'], 'application/problem+json; charset=utf-8', what);
    }
    // a replay: the lane consumed the nonce, so the same headers are refused the second time
    const h = signedHeaders(creds, 'GET', path);
    assert.equal((await viaLane(path, h)).status, 200);
    const replay = await viaLane(path, h);
    assert.equal(replay.lane, 1);
    assert.equal(JSON.parse(replay.body).code, 'NONCE_REPLAYED');

    const blocked = await tenantWithApp(s.ctx, 'lane-blocked');
    await updateApp(s.ctx, blocked.app.id, { blocked: true });
    assert.equal(JSON.parse((await same(path, () => bearer(blocked.creds))).body).code, 'APP_BLOCKED');
    const expired = await tenantWithApp(s.ctx, 'lane-expired', { expiresAt: Date.now() - 1000 });
    assert.equal(JSON.parse((await same(path, () => bearer(expired.creds))).body).code, 'APP_EXPIRED');
    const walled = await tenantWithApp(s.ctx, 'lane-ip', { ipAllow: ['10.9.9.0/24'] });
    assert.equal(JSON.parse((await same(path, () => bearer(walled.creds))).body).code, 'IP_FORBIDDEN');

    // rate limit 1/s: each path gets its own app, so each sees one allowed call then a refusal
    const limited = [await tenantWithApp(s.ctx, 'lane-rl1', { rateLimit: 1 }), await tenantWithApp(s.ctx, 'lane-rl2', { rateLimit: 1 })];
    // each pair starts early in a second, so that both calls fall in one window (Redis windows are aligned to the clock)
    const earlyInSecond = async () => {
      const ms = Date.now() % 1000;
      if (ms > 300) await new Promise((r) => setTimeout(r, 1020 - ms));
    };
    await earlyInSecond();
    assert.equal((await viaLane(path, bearer(limited[0].creds))).status, 200);
    const a = await viaLane(path, bearer(limited[0].creds));
    await earlyInSecond();
    assert.equal((await viaFastify(path, bearer(limited[1].creds))).status, 200);
    const b = await viaFastify(path, bearer(limited[1].creds));
    assert.equal(a.status, 429);
    assert.equal(a.headers['retry-after'], '1');
    const { lane: _n, ...rest } = a;
    assert.deepEqual(rest, b);
  });

  it('leaves sessions, HEAD, bodies, other spellings and other routes to Fastify', async () => {
    const login = await s.app.inject({ method: 'POST', url: `${R}/sessions`, payload: { username: 'nobody', password: 'x' } });
    assert.notEqual(login.statusCode, 500);
    const left: [string, RequestInit][] = [
      [`${R}/me`, { headers: { authorization: 'Bearer not-a-key-but-a-session' } }],
      [`${R}/me`, { headers: { ...bearer(creds), cookie: 'menhu_session=abc' } }],
      [`${R}/me`, { method: 'HEAD', headers: bearer(creds) }],
      [`${R}/me/`, { headers: bearer(creds) }],
      [`${R}//me`, { headers: bearer(creds) }],
      [`${R}/apps`, { headers: bearer(creds) }],
      [`${R}/me`, {}],
    ];
    for (const [path, init] of left) {
      const before = s.app.nativeLane.answered;
      const r = await fetch(direct + path, init);
      await r.arrayBuffer();
      assert.ok(r.status < 500, `${path}: ${r.status}`);
      assert.equal(s.app.nativeLane.answered, before, `${init.method ?? 'GET'} ${path} ${JSON.stringify(init.headers)} went to Fastify`);
    }
    // a GET with a body but no content type: Fastify's 415, not the lane
    const r = await new Promise<number>((resolve, reject) => {
      const u = new URL(direct + `${R}/me`);
      import('node:http').then(({ request }) => {
        const q = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'GET', headers: { ...bearer(creds), 'content-length': '2' } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        q.on('error', reject);
        q.end('{}');
      }, reject);
    });
    assert.equal(r, 415);
  });

  it('records lane requests in the request log and in /metrics', async () => {
    const t = await tenantWithApp(s.ctx, 'lane-log');
    await flushRequests(s.ctx);
    const last = await s.ctx.db.kysely.selectFrom('request_log').select((eb) => eb.fn.max('id').as('id')).executeTakeFirst();
    assert.equal((await viaLane(`${R}/me`, bearer(t.creds))).status, 200);
    assert.equal((await viaLane(`${R}/me`, bearer({ ...t.creds, secret: 'wrong' }))).status, 401);
    await flushRequests(s.ctx);
    const rows = await s.ctx.db.kysely.selectFrom('request_log').selectAll().where('id', '>', Number(last?.id ?? 0)).orderBy('id').execute();
    assert.deepEqual(
      rows.map((r) => [r.service, r.method, r.route, Number(r.status), r.app_id === null ? null : Number(r.app_id), r.error_code]),
      [
        ['native', 'GET', `${R}/me`, 200, t.app.id, null],
        ['native', 'GET', `${R}/me`, 401, null, 'SECRET_INVALID'],
      ],
    );
    const metrics = await (await fetch(`${direct}/metrics`)).text();
    assert.ok(Number(/menhu_http_requests_total\{method="GET",route="\/rest\/v1\/me",status="200"\} (\d+)/.exec(metrics)?.[1]) >= 2);
    assert.ok(Number(/menhu_http_requests_total\{method="GET",route="\/rest\/v1\/me",status="401"\} (\d+)/.exec(metrics)?.[1]) >= 1);
  });
});
