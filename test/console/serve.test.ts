/**
 * How /console is served: the built assets with the right caching, the SPA fallback, no escape from
 * the build folder, and a clear 503 when the console was never built.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Fastify from 'fastify';
import { CONSOLE_DIR, mountConsole } from '../../src/modules/console.js';
import { http, startServer, type TestServer } from '../helpers.js';

let s: TestServer;
before(async () => {
  assert.ok(existsSync(join(CONSOLE_DIR, 'index.html')), 'dist/console is built by scripts/run-tests.mjs before the console tests');
  s = await startServer();
});
after(() => s.close());

test('/console redirects to /console/, which serves index.html uncached with a CSP', async () => {
  const r = await fetch(`${s.url}/console`, { redirect: 'manual' });
  assert.equal(r.status, 301);
  assert.equal(r.headers.get('location'), '/console/');
  const page = await http(`${s.url}/console/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  assert.equal(page.headers.get('cache-control'), 'no-cache');
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  assert.match(page.text, /<div id="app"><\/div>/);
  assert.match(page.text, /src="\/console\/assets\/index-[\w-]+\.js"/);
});

test('client-side routes fall back to index.html; hashed assets are cached for a year', async () => {
  const deep = await http(`${s.url}/console/apps/12?x=1`);
  assert.equal(deep.status, 200);
  assert.equal(deep.headers.get('cache-control'), 'no-cache');
  assert.match(deep.text, /<div id="app">/);
  const js = /src="\/console\/(assets\/index-[\w-]+\.js)"/.exec(deep.text)![1];
  const asset = await http(`${s.url}/console/${js}`);
  assert.equal(asset.status, 200);
  assert.match(asset.headers.get('content-type') ?? '', /javascript/);
  assert.match(asset.headers.get('cache-control') ?? '', /max-age=31536000/);
  assert.match(asset.headers.get('cache-control') ?? '', /immutable/);
  const css = readdirSync(join(CONSOLE_DIR, 'assets')).find((f) => f.endsWith('.css'))!;
  const sheet = await http(`${s.url}/console/assets/${css}`);
  assert.equal(sheet.status, 200);
  assert.match(sheet.headers.get('content-type') ?? '', /text\/css/);
});

test('a missing asset is a 404, not index.html; nothing outside the build folder is served', async () => {
  const missing = await http(`${s.url}/console/assets/index-00000000.js`);
  assert.equal(missing.status, 404);
  assert.doesNotMatch(missing.text, /<div id="app">/);
  for (const p of ['/console/../package.json', '/console/%2e%2e/package.json', '/console/..%2fpackage.json', '/console/assets/..%2f..%2f..%2fpackage.json']) {
    const r = await http(`${s.url}${p}`);
    assert.doesNotMatch(r.text, /"name": "menhu"/, p);
    assert.ok(r.status < 500, `${p} answered ${r.status}`);
  }
});

test('without a build, /console answers 503 with a page saying to run npm run build', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'menhu-no-console-'));
  const app = Fastify();
  try {
    await mountConsole(app, join(empty, 'console'));
    for (const url of ['/console/', '/console/apps']) {
      const r = await app.inject({ url });
      assert.equal(r.statusCode, 503);
      assert.match(String(r.headers['content-type']), /text\/html/);
      assert.match(r.body, /npm run build/);
    }
  } finally {
    await app.close();
    rmSync(empty, { recursive: true, force: true });
  }
});

test('the console needs no API of its own: roles are part of the native REST API', async () => {
  const { seedDemo } = await import('../../src/demo.js');
  const demo = await seedDemo(s.ctx);
  const op = { authorization: `Bearer ${demo.operator.key}.${demo.operator.secret}` };
  const roles = await http(`${s.url}/rest/v1/roles`, { headers: op });
  assert.equal(roles.status, 200);
  assert.deepEqual(
    roles.json.map((r: { name: string }) => r.name),
    ['admin', 'normal', 'blocked'],
  );
  const add = await http(`${s.url}/rest/v1/roles`, { method: 'POST', headers: { ...op, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'auditor', des: 'reads' }) });
  assert.equal(add.status, 201);
  const dup = await http(`${s.url}/rest/v1/roles`, { method: 'POST', headers: { ...op, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'auditor' }) });
  assert.equal(dup.status, 409);
  const dev = { authorization: `Bearer ${demo.native.key}.${demo.native.secret}` };
  const refused = await http(`${s.url}/rest/v1/roles`, { method: 'POST', headers: { ...dev, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x' }) });
  assert.equal(refused.status, 403);
});

test('the native API clears an app field with null (the settings form sends null for empty fields)', async () => {
  const { seedDemo } = await import('../../src/demo.js');
  const demo = await seedDemo(s.ctx);
  const h = { authorization: `Bearer ${demo.operator.key}.${demo.operator.secret}`, 'content-type': 'application/json' };
  const set = await http(`${s.url}/rest/v1/apps/${demo.native.id}`, { method: 'PATCH', headers: h, body: JSON.stringify({ expires_at: 4102444800000, rate_limit: 9, description: 'x' }) });
  assert.equal(set.json.expires_at, 4102444800000);
  const cleared = await http(`${s.url}/rest/v1/apps/${demo.native.id}`, { method: 'PATCH', headers: h, body: JSON.stringify({ expires_at: null, rate_limit: null, description: null, type_id: null }) });
  assert.equal(cleared.status, 200);
  assert.equal(cleared.json.expires_at, null, 'null must not be coerced to 0 (expired at the epoch)');
  assert.equal(cleared.json.rate_limit, null);
  assert.equal(cleared.json.description, null);
  const me = await http(`${s.url}/rest/v1/me`, { headers: { authorization: `Bearer ${demo.native.key}.${demo.native.secret}` } });
  assert.equal(me.status, 200);
});
