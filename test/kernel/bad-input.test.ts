/**
 * Bad input against the native API: every refusal is RFC 9457 problem+json with a stable `code`,
 * never a 500; nothing is half-stored; no secret ever reaches a log line.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { registerDeveloper } from '../../src/services/accounts/index.js';
import { ACCESS_FLUSH_MS } from '../../src/server.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { bearer, captureLogs, http, signedHeaders, startServer, tenantWithApp, type NativeCreds, type TestServer } from '../helpers.js';

const LIMIT = 2048;

describe('bad input on /rest/v1', () => {
  let s: TestServer;
  let c: NativeCreds;
  const logs = captureLogs();
  before(async () => {
    s = await startServer({ env: { MENHU_BODY_LIMIT: String(LIMIT) }, logStream: logs.stream });
    c = (await tenantWithApp(s.ctx, 'acme')).creds;
  });
  after(() => s.close());

  const post = (path: string, body: RequestInit['body'], headers: Record<string, string> = {}) =>
    http(s.url + '/rest/v1' + path, { method: 'POST', headers: { ...bearer(c), ...headers }, body });
  const json = { 'content-type': 'application/json' };

  function problem(r: { status: number; headers: Headers; json: any; text: string }, status: number, code: string) {
    assert.equal(r.status, status, r.text);
    assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
    assert.equal(r.json.code, code, r.text);
    assert.equal(r.json.status, status);
    for (const k of ['type', 'title', 'detail']) assert.equal(typeof r.json[k], 'string', `${k} in ${r.text}`);
    assert.ok(!/\bat .*\.ts:\d+/.test(r.text), 'no stack traces');
  }

  async function appCount() {
    return Number((await s.ctx.db.kysely.selectFrom('apps').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  }

  it('malformed JSON → 400 BAD_REQUEST', async () => {
    const n = await appCount();
    problem(await post('/apps', '{"name": "x", ', json), 400, 'BAD_REQUEST');
    problem(await post('/apps', '{"name": "x"}}', json), 400, 'BAD_REQUEST');
    problem(await post('/apps', '\u0000', json), 400, 'BAD_REQUEST');
    problem(await http(s.url + '/rest/v1/sessions', { method: 'POST', headers: json, body: '{username' }), 400, 'BAD_REQUEST');
    assert.equal(await appCount(), n);
  });

  it('wrong or missing content type → 415 UNSUPPORTED_MEDIA', async () => {
    problem(await post('/apps', JSON.stringify({ name: 'x' }), { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA');
    problem(await post('/apps', '<app/>', { 'content-type': 'application/xml' }), 415, 'UNSUPPORTED_MEDIA');
    problem(await post('/apps', 'name=x', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'UNSUPPORTED_MEDIA');
    // JSON with a charset is JSON
    assert.equal((await post('/apps', JSON.stringify({ name: 'x' }), { 'content-type': 'application/json; charset=utf-8' })).status, 201);
    problem(await post('/apps', new Uint8Array(Buffer.from('{"name":"x"}'))), 415, 'UNSUPPORTED_MEDIA');
  });

  it('empty body where one is required → 400 VALIDATION', async () => {
    problem(await post('/apps', '', json), 400, 'VALIDATION');
    problem(await post('/apps', undefined), 400, 'VALIDATION');
    problem(await post('/apps', undefined, { 'content-type': 'application/json' }), 400, 'VALIDATION');
    problem(await post('/apps', 'null', json), 400, 'VALIDATION');
    problem(await post('/apps', '[]', json), 400, 'VALIDATION');
    problem(await post('/apps', '"name"', json), 400, 'VALIDATION');
    problem(await http(s.url + '/rest/v1/sessions', { method: 'POST', headers: json, body: '{}' }), 400, 'VALIDATION');
  });

  it('oversized body → 413 PAYLOAD_TOO_LARGE (MENHU_BODY_LIMIT)', async () => {
    const n = await appCount();
    const big = JSON.stringify({ name: 'x', description: 'y'.repeat(LIMIT) });
    problem(await post('/apps', big, json), 413, 'PAYLOAD_TOO_LARGE');
    problem(await http(s.url + '/rest/v1/sessions', { method: 'POST', headers: json, body: big }), 413, 'PAYLOAD_TOO_LARGE');
    // just under the limit is fine (and then fails on its own merits)
    const fits = JSON.stringify({ name: 'x', description: 'y'.repeat(1500) });
    assert.equal((await post('/apps', fits, json)).status, 201);
    assert.equal(await appCount(), n + 1);
  });

  it('unknown keys and wrong types → 400 VALIDATION, nothing stored', async () => {
    const n = await appCount();
    const bad: unknown[] = [
      { name: 'x', colour: 'red' },
      { name: 5 },
      { name: '' },
      { name: 'x'.repeat(201) },
      { name: 'x', rate_limit: 'many' },
      { name: 'x', rate_limit: -1 },
      { name: 'x', rate_limit: 1.5 },
      { name: 'x', services: 'native' },
      { name: 'x', services: ['native', 7] },
      { name: 'x', ip_allow: '127.0.0.1' },
      { name: 'x', expires_at: '2026-01-01' },
      { name: 'x', type_id: 0 },
      { name: 'x', tenant_id: 'one' },
      { name: { first: 'x' } },
    ];
    for (const b of bad) problem(await post('/apps', JSON.stringify(b), json), 400, 'VALIDATION');
    assert.equal(await appCount(), n);
    const a = (await post('/apps', JSON.stringify({ name: 'typed', services: ['native'] }), json)).json;
    for (const b of [{ blocked: 'true' }, { blocked: 1 }, { nope: 1 }, { expires_at: -5 }]) {
      problem(await http(s.url + `/rest/v1/apps/${a.id}`, { method: 'PATCH', headers: { ...bearer(c), ...json }, body: JSON.stringify(b) }), 400, 'VALIDATION');
    }
    problem(await http(s.url + `/rest/v1/apps/${a.id}/rotate`, { method: 'POST', headers: { ...bearer(c), ...json }, body: '{"grace_seconds": "1"}' }), 400, 'VALIDATION');
    problem(await http(s.url + '/rest/v1/apps?tenant_id=x', { headers: bearer(c) }), 400, 'VALIDATION');
    problem(await http(s.url + '/rest/v1/apps?bogus=1', { headers: bearer(c) }), 400, 'VALIDATION');
    problem(await http(s.url + '/rest/v1/apps/-1', { headers: bearer(c) }), 400, 'VALIDATION');
    problem(await http(s.url + '/rest/v1/apps/1.5', { headers: bearer(c) }), 400, 'VALIDATION');
  });

  it('authentication comes before validation', async () => {
    problem(await http(s.url + '/rest/v1/apps', { method: 'POST', headers: json, body: '{"colour": 1}' }), 401, 'NOT_LOGGED_IN');
    problem(await http(s.url + '/rest/v1/apps?bogus=1'), 401, 'NOT_LOGGED_IN');
  });

  it('unknown routes and methods → 404 NOT_FOUND', async () => {
    problem(await http(s.url + '/rest/v1/nothing-here', { headers: bearer(c) }), 404, 'NOT_FOUND');
    problem(await http(s.url + '/rest/v1/tenants/1', { method: 'DELETE', headers: bearer(c) }), 404, 'NOT_FOUND');
  });

  it('never writes a secret, password, token or signature to the log, also for failed attempts', async () => {
    const t = await tenantWithApp(s.ctx, 'logged');
    const secret = t.creds.secret;
    await registerDeveloper(s.ctx, { username: 'dora', password: 'dora-very-secret-pw', tenantId: t.tenantId });
    const guessed = 'guessed-secret-' + 'q'.repeat(17);
    // successful and failed bearer calls, signed calls, logins
    await http(s.url + '/rest/v1/me', { headers: bearer(t.creds) });
    await http(s.url + '/rest/v1/me', { headers: bearer({ key: t.creds.key, secret: guessed }) });
    await http(s.url + '/rest/v1/me?x=1', { headers: bearer({ key: t.creds.key, secret: guessed }) });
    const signed = signedHeaders(t.creds, 'GET', '/rest/v1/me');
    await http(s.url + '/rest/v1/me', { headers: signed });
    await http(s.url + '/rest/v1/me', { headers: signed }); // replay
    const body = JSON.stringify({ name: 'logged app', secret_note: secret });
    await http(s.url + '/rest/v1/apps', { method: 'POST', headers: { ...signedHeaders(t.creds, 'POST', '/rest/v1/apps', body), ...json }, body });
    const login = await http(s.url + '/rest/v1/sessions', { method: 'POST', headers: json, body: JSON.stringify({ username: 'dora', password: 'dora-very-secret-pw' }) });
    assert.equal(login.status, 201);
    await http(s.url + '/rest/v1/sessions', { method: 'POST', headers: json, body: JSON.stringify({ username: 'dora', password: 'dora-wrong-pw-xyz' }) });
    await http(s.url + '/rest/v1/me', { headers: { authorization: `Bearer ${login.json.token}`, cookie: `menhu_session=${login.json.token}` } });
    const created = await http(s.url + '/rest/v1/apps', { method: 'POST', headers: { ...bearer(t.creds), ...json }, body: JSON.stringify({ name: 'fresh', services: ['native'] }) });
    assert.equal(created.status, 201);

    // access lines leave in chunks, at the latest ACCESS_FLUSH_MS after the first line of one
    // a last request on a path no other test uses: once its line is out, every line before it is
    // (earlier tests' lines, such as their created apps, cannot stand in for this test's own)
    const end = '/end-of-the-logged-requests';
    assert.equal((await http(s.url + end)).status, 404);
    for (let i = 0; i < 50 && !logs.lines().some((l) => l.msg === 'request' && l.path === end); i++) await sleep(ACCESS_FLUSH_MS / 5);
    const text = logs.text();
    const lines = logs.lines();
    assert.ok(lines.some((l) => l.msg === 'request refused' && l.code === 'SECRET_INVALID'), 'failed attempts are logged');
    assert.ok(lines.some((l) => l.msg === 'request refused' && l.code === 'NONCE_REPLAYED'));
    const access = lines.filter((l) => l.msg === 'request');
    assert.ok(access.some((l) => l.path === '/rest/v1/me' && l.status === 200 && l.route === '/rest/v1/me'), 'one access line per request');
    assert.ok(access.some((l) => l.path === '/rest/v1/me' && l.status === 401), 'refused requests are in the access log');
    assert.ok(!access.some((l) => String(l.path).includes('?')), 'access lines carry no query string');
    for (const leak of [secret, guessed, 'dora-very-secret-pw', 'dora-wrong-pw-xyz', login.json.token, signed['x-menhu-signature'], created.json.secret]) {
      assert.ok(!text.includes(leak), `log contains ${leak.slice(0, 6)}…`);
    }
    // nothing was answered with a 500
    assert.ok(!access.some((l) => l.status === 500), 'a 500 was logged');
    assert.ok(!lines.some((l) => l.level === 50), 'an error was logged');
  });
});
