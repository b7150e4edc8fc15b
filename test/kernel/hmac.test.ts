/**
 * Native HMAC request signing end to end against the real server, and the bearer API key.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/context.js';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { rotateSecret } from '../../src/core/credentials/apps.js';
import { hmacSign } from '../../src/core/credentials/schemes.js';
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

describe('the worked example of docs/native-api.md', () => {
  it('gives the documented signature', () => {
    const r = { method: 'GET', path: '/rest/v1/apps', query: 'tenant_id=2', timestamp: '1795435200', nonce: 'c0ffee00c0ffee00c0ffee00', body: '' };
    assert.equal(hmacSign(r, '8f14e45fceea167a5a36dedd4bea2543'), '04310ebe21571b72b70b97c82197474bb34ed490a53a1aeb4b414eda25aac4b2');
  });

  it('the documented Node client, written from the document alone, is accepted', async () => {
    const s = await startServer();
    try {
      const t = await tenantWithApp(s.ctx, 'docs');
      // --- as in docs/native-api.md ---
      const rfc3986 = (x: string) => encodeURIComponent(x).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
      const canonicalQuery = (search: string) => {
        const pairs = [...new URLSearchParams(search)].map(([k, v]) => [rfc3986(k), rfc3986(v)]);
        pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
        return pairs.map(([k, v]) => `${k}=${v}`).join('&');
      };
      const menhu = async (base: string, key: string, secret: string, method: string, pathAndQuery: string, body?: unknown) => {
        const url = new URL(pathAndQuery, base);
        const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
        const timestamp = String(Math.floor(Date.now() / 1000));
        const nonce = randomBytes(16).toString('hex');
        const canonical = [method.toUpperCase(), url.pathname, canonicalQuery(url.search), timestamp, nonce, createHash('sha256').update(bytes).digest('hex')].join('\n');
        const signature = createHmac('sha256', secret).update(canonical).digest('hex');
        const res = await fetch(url, {
          method,
          headers: { 'x-menhu-key': key, 'x-menhu-timestamp': timestamp, 'x-menhu-nonce': nonce, 'x-menhu-signature': signature, ...(bytes.length ? { 'content-type': 'application/json' } : {}) },
          body: bytes.length ? bytes : undefined,
        });
        return { status: res.status, body: (await res.json()) as any };
      };
      // ---
      const created = await menhu(s.url, t.creds.key, t.creds.secret, 'POST', '/rest/v1/apps', { name: 'from the docs', services: ['native'] });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const listed = await menhu(s.url, t.creds.key, t.creds.secret, 'GET', `/rest/v1/apps?tenant_id=${t.tenantId}`);
      assert.equal(listed.status, 200, JSON.stringify(listed.body));
      assert.ok(listed.body.some((a: any) => a.name === 'from the docs'));
      const quoted = await menhu(s.url, t.creds.key, t.creds.secret, 'GET', `/rest/v1/quotas?service=${encodeURIComponent("it's (x)*")}`);
      assert.equal(quoted.status, 200, JSON.stringify(quoted.body));
      assert.equal(quoted.body.service, "it's (x)*");
    } finally {
      await s.close();
    }
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
