/**
 * Native HMAC request signing end to end against the real server, and the bearer API key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/context.js';
import { rotateSecret } from '../../src/core/credentials/apps.js';
import { bearer, http, signedHeaders, startServer, tenantWithApp, type NativeCreds, type TestServer } from '../helpers.js';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const NOW_S = T0 / 1000;

describe('native HMAC signing', () => {
  let s: TestServer;
  let clock: ManualClock;
  let c: NativeCreds;
  let appId: number;
  let tenantId: number;
  before(async () => {
    clock = new ManualClock(T0);
    s = await startServer({ clock });
    const t = await tenantWithApp(s.ctx, 'acme');
    c = t.creds;
    appId = t.app.id;
    tenantId = t.tenantId;
  });
  after(() => s.close());

  const send = (method: string, path: string, headers: Record<string, string>, body?: string) =>
    http(s.url + path, { method, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, body });
  const sig = (method: string, path: string, body = '', opts: { timestamp?: number | string; nonce?: string } = {}) =>
    signedHeaders(c, method, path, body, { timestamp: NOW_S, ...opts });
  const expect = (r: { status: number; json: any }, status: number, code?: string) => {
    assert.equal(r.status, status, JSON.stringify(r.json));
    if (code) assert.equal(r.json.code, code);
  };

  it('accepts a good signature on GET and on POST with a body', async () => {
    const r = await send('GET', '/rest/v1/me', sig('GET', '/rest/v1/me'));
    expect(r, 200);
    assert.equal(r.json.app.id, appId);
    const body = JSON.stringify({ name: 'signed app', services: ['native'] });
    const p = await send('POST', '/rest/v1/apps', sig('POST', '/rest/v1/apps', body), body);
    expect(p, 201);
    assert.equal(p.json.name, 'signed app');
    // the query is canonical: order and encoding of the sent URL do not matter
    const q = await send('GET', `/rest/v1/quotas?service=a%20b&tenant_id=${tenantId}`, sig('GET', `/rest/v1/quotas?tenant_id=${tenantId}&service=a b`));
    expect(q, 200);
    assert.equal(q.json.service, 'a b');
  });

  it('refuses a wrong signature, an unknown key and malformed headers', async () => {
    const other = signedHeaders({ key: c.key, secret: 'f'.repeat(32) }, 'GET', '/rest/v1/me', '', { timestamp: NOW_S });
    expect(await send('GET', '/rest/v1/me', other), 401, 'SIGN_INVALID');
    const unknown = signedHeaders({ key: 'no-such-key', secret: c.secret }, 'GET', '/rest/v1/me', '', { timestamp: NOW_S });
    expect(await send('GET', '/rest/v1/me', unknown), 401, 'KEY_UNKNOWN');
    const good = sig('GET', '/rest/v1/me');
    expect(await send('GET', '/rest/v1/me', { ...good, 'x-menhu-signature': 'zz' + good['x-menhu-signature'].slice(2) }), 401, 'SIGN_INVALID');
    expect(await send('GET', '/rest/v1/me', { ...good, 'x-menhu-nonce': 'short' }), 401, 'SIGN_INVALID');
    expect(await send('GET', '/rest/v1/me', { ...good, 'x-menhu-timestamp': 'yesterday' }), 401, 'SIGN_INVALID');
    const { 'x-menhu-signature': _drop, ...unsigned } = sig('GET', '/rest/v1/me');
    expect(await send('GET', '/rest/v1/me', unsigned), 401, 'SIGN_INVALID');
    // upper-case hex is the same signature
    const upper = sig('GET', '/rest/v1/me');
    expect(await send('GET', '/rest/v1/me', { ...upper, 'x-menhu-signature': upper['x-menhu-signature'].toUpperCase() }), 200);
  });

  it('accepts timestamps up to the skew away and refuses one second more', async () => {
    const skew = s.config.hmacSkewSeconds;
    assert.equal(skew, 300);
    expect(await send('GET', '/rest/v1/me', sig('GET', '/rest/v1/me', '', { timestamp: NOW_S - skew })), 200);
    expect(await send('GET', '/rest/v1/me', sig('GET', '/rest/v1/me', '', { timestamp: NOW_S + skew })), 200);
    expect(await send('GET', '/rest/v1/me', sig('GET', '/rest/v1/me', '', { timestamp: NOW_S - skew - 1 })), 401, 'TIMESTAMP_STALE');
    expect(await send('GET', '/rest/v1/me', sig('GET', '/rest/v1/me', '', { timestamp: NOW_S + skew + 1 })), 401, 'TIMESTAMP_STALE');
    // milliseconds are not seconds: refused as malformed
    expect(await send('GET', '/rest/v1/me', sig('GET', '/rest/v1/me', '', { timestamp: T0 })), 401, 'SIGN_INVALID');
  });

  it('refuses a replayed nonce; a request that failed verification does not burn its nonce', async () => {
    const h = sig('GET', '/rest/v1/me');
    expect(await send('GET', '/rest/v1/me', h), 200);
    expect(await send('GET', '/rest/v1/me', h), 401, 'NONCE_REPLAYED');
    // same nonce, new timestamp: still a replay
    expect(await send('GET', '/rest/v1/me', sig('GET', '/rest/v1/me', '', { nonce: h['x-menhu-nonce'], timestamp: NOW_S + 1 })), 401, 'NONCE_REPLAYED');
    const n = 'n0nce-that-fails-first';
    const bad = signedHeaders({ key: c.key, secret: 'e'.repeat(32) }, 'GET', '/rest/v1/me', '', { timestamp: NOW_S, nonce: n });
    expect(await send('GET', '/rest/v1/me', bad), 401, 'SIGN_INVALID');
    expect(await send('GET', '/rest/v1/me', sig('GET', '/rest/v1/me', '', { nonce: n })), 200);
  });

  it('refuses tampered bodies, queries, paths and methods', async () => {
    const body = JSON.stringify({ name: 'original', services: ['native'] });
    const tampered = JSON.stringify({ name: 'tampered', services: ['native'] });
    expect(await send('POST', '/rest/v1/apps', sig('POST', '/rest/v1/apps', body), tampered), 401, 'SIGN_INVALID');
    // whitespace is part of the signed bytes
    expect(await send('POST', '/rest/v1/apps', sig('POST', '/rest/v1/apps', body), body + ' '), 401, 'SIGN_INVALID');
    expect(await send('GET', '/rest/v1/apps?tenant_id=2', sig('GET', '/rest/v1/apps?tenant_id=1')), 401, 'SIGN_INVALID');
    expect(await send('GET', '/rest/v1/apps?tenant_id=1&x=1', sig('GET', '/rest/v1/apps?tenant_id=1')), 401, 'SIGN_INVALID');
    expect(await send('GET', '/rest/v1/apps', sig('GET', '/rest/v1/me')), 401, 'SIGN_INVALID');
    expect(await send('DELETE', `/rest/v1/apps/${appId}`, sig('GET', `/rest/v1/apps/${appId}`)), 401, 'SIGN_INVALID');
    const list = await send('GET', '/rest/v1/apps', sig('GET', '/rest/v1/apps'));
    assert.ok(!list.json.some((a: any) => a.name === 'tampered'));
  });

  it('accepts the previous secret during its grace period', async () => {
    const r = await rotateSecret(s.ctx, appId, 10);
    const fresh = { key: c.key, secret: r.secret };
    expect(await send('GET', '/rest/v1/me', sig('GET', '/rest/v1/me')), 200);
    expect(await send('GET', '/rest/v1/me', signedHeaders(fresh, 'GET', '/rest/v1/me', '', { timestamp: NOW_S + 10 })), 200);
    clock.advance(10_000);
    expect(await send('GET', '/rest/v1/me', sig('GET', '/rest/v1/me', '', { timestamp: NOW_S + 10 })), 401, 'SIGN_INVALID');
    c = fresh;
    clock.set(T0);
  });

  it('accepts Authorization: Bearer <key>.<secret>', async () => {
    expect(await send('GET', '/rest/v1/me', bearer(c)), 200);
    expect(await send('GET', '/rest/v1/me', bearer({ key: c.key, secret: c.secret + 'x' })), 401, 'SECRET_INVALID');
    expect(await send('GET', '/rest/v1/me', bearer({ key: c.key, secret: '' })), 401, 'SECRET_INVALID');
    expect(await send('GET', '/rest/v1/me', { authorization: `Bearer .${c.secret}` }), 401, 'KEY_MISSING');
    expect(await send('GET', '/rest/v1/me', bearer({ key: 'unknown', secret: c.secret })), 401, 'KEY_UNKNOWN');
    expect(await send('GET', '/rest/v1/me', { authorization: `Basic ${Buffer.from(`${c.key}:${c.secret}`).toString('base64')}` }), 401, 'NOT_LOGGED_IN');
  });
});

describe('native credentials of other apps', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  it('keeps nonces per app', async () => {
    const a = await tenantWithApp(s.ctx, 'a');
    const b = await tenantWithApp(s.ctx, 'b');
    const nonce = 'shared-nonce-0123456789';
    const ha = signedHeaders(a.creds, 'GET', '/rest/v1/me', '', { nonce });
    const hb = signedHeaders(b.creds, 'GET', '/rest/v1/me', '', { nonce });
    assert.equal((await http(s.url + '/rest/v1/me', { headers: ha })).status, 200);
    assert.equal((await http(s.url + '/rest/v1/me', { headers: hb })).status, 200);
  });
});
