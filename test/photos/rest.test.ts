/**
 * Native REST for photo jobs (/rest/v1/photo-jobs) against a real server: uploads as the request
 * body (bearer, HMAC-signed, developer session), jobs run by the real processors, the same quota
 * holds as the Fangtang dialect, filters and paging, cancel with refund, retention, tenant
 * isolation, and bad input refused with problem+json while nothing is charged or stored.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { ManualClock } from '../../src/core/context.js';
import { createApp } from '../../src/core/credentials/apps.js';
import { fangtangToken } from '../../src/core/credentials/schemes.js';
import { addQuota } from '../../src/core/limits/quotas.js';
import { registerDeveloper } from '../../src/services/accounts/index.js';
import { JOB_KIND } from '../../src/services/photos/index.js';
import { bearer, http, operatorCreds, signedHeaders, startServer, tenantWithApp, type NativeCreds, type TestServer } from '../helpers.js';
import { jpeg, png, sceneSvg, runNextPhotoJob, storedCounts } from './fixtures.js';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const BASE = '/rest/v1/photo-jobs';

describe('native REST: photo jobs', () => {
  let s: TestServer;
  const clock = new ManualClock(T0);
  let A: { tenantId: number; creds: NativeCreds; appId: number };
  let B: { tenantId: number; creds: NativeCreds; appId: number };
  let op: NativeCreds;
  let broke: NativeCreds;

  before(async () => {
    s = await startServer({ clock });
    const a = await tenantWithApp(s.ctx, 'photos a');
    const b = await tenantWithApp(s.ctx, 'photos b');
    A = { tenantId: a.tenantId, creds: a.creds, appId: a.app.id };
    B = { tenantId: b.tenantId, creds: b.creds, appId: b.app.id };
    await addQuota(s.ctx.db.kysely, A.tenantId, 'fangtang', 20);
    await addQuota(s.ctx.db.kysely, B.tenantId, 'fangtang', 5);
    broke = (await tenantWithApp(s.ctx, 'no uploads left')).creds;
    op = await operatorCreds(s.ctx);
  });
  after(() => s.close());

  const upload = (c: NativeCreds, query: string, body: Buffer | string, type = 'image/png') =>
    http(`${s.url}${BASE}?${query}`, { method: 'POST', headers: { ...bearer(c), 'content-type': type }, body });
  const get = (c: NativeCreds, path: string) => http(`${s.url}${BASE}${path}`, { headers: bearer(c) });
  const remaining = async (c: NativeCreds) => (await http(`${s.url}/rest/v1/quotas?service=fangtang`, { headers: bearer(c) })).json.remaining as number;
  const counts = () => storedCounts(s.ctx);
  const runNext = () => runNextPhotoJob(s.ctx);
  const bytes = async (r: Response) => Buffer.from(await r.arrayBuffer());

  it('uploads an image as the body, runs it, shows status and charge, serves input and result', async () => {
    const src = await png(sceneSvg(48, 40));
    const before = await remaining(A.creds);
    const up = await upload(A.creds, 'repair_type=sr', src);
    assert.equal(up.status, 201, up.text);
    const job = up.json;
    assert.match(job.id, /^[0-9a-f]{32}$/);
    assert.equal(up.headers.get('location'), `${BASE}/${job.id}`);
    assert.deepEqual(
      { tenant: job.tenant_id, app: job.app_id, kind: job.repair_type, status: job.status, progress: job.progress, charge: job.charge, type: job.input_type, result: job.result, kept: job.files_kept },
      { tenant: A.tenantId, app: A.appId, kind: 'sr', status: 'queued', progress: 0, charge: 'held', type: 'image/png', result: null, kept: true },
    );
    assert.equal(job.created_at, T0);
    assert.equal(await remaining(A.creds), before - 1, 'one unit held');

    const input = await fetch(`${s.url}${BASE}/${job.id}/input`, { headers: bearer(A.creds) });
    assert.equal(input.status, 200);
    assert.equal(input.headers.get('content-type'), 'image/png');
    assert.deepEqual(await bytes(input), src);
    const early = await get(A.creds, `/${job.id}/result`);
    assert.equal(early.status, 409);
    assert.equal(early.json.code, 'CONFLICT');

    await runNext();
    const done = (await get(A.creds, `/${job.id}`)).json;
    assert.equal(done.status, 'done');
    assert.equal(done.progress, 1);
    assert.equal(done.charge, 'committed');
    assert.equal(done.error, null);
    assert.deepEqual(done.result, { content_type: 'image/png', width: 96, height: 80, bytes: done.result.bytes });
    assert.equal(done.expires_at, T0 + 3600_000);
    const result = await fetch(`${s.url}${BASE}/${job.id}/result`, { headers: bearer(A.creds) });
    assert.equal(result.status, 200);
    assert.equal(result.headers.get('x-content-type-options'), 'nosniff');
    const out = await bytes(result);
    assert.equal(out.length, done.result.bytes);
    const meta = await sharp(out).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 96, 80]);
    assert.equal(await remaining(A.creds), before - 1, 'spent');

    // the same job through the Fangtang dialect: one job system
    const ft = await createApp(s.ctx, { tenantId: A.tenantId, name: 'a fangtang', services: ['fangtang'] });
    const form = new FormData();
    form.set('third_code', ft.key);
    form.set('mdf', job.id);
    const st = await http(`${s.url}/api/third/photo/status`, { method: 'POST', headers: { token: fangtangToken(ft.secret, Math.floor(clock.now() / 1000)) }, body: form });
    assert.deepEqual(st.json, { code: 200, data: { msg: '图片处理完成', status: 200, progress: 100 } });

    // after the retention the job stays listed, its files are gone
    clock.advance(3600_000 + 1);
    const gone = (await get(A.creds, `/${job.id}`)).json;
    assert.equal(gone.files_kept, false);
    for (const f of ['input', 'result']) {
      const r = await get(A.creds, `/${job.id}/${f}`);
      assert.equal(r.status, 410, f);
      assert.equal(r.json.code, 'GONE');
    }
  });

  it('accepts HMAC-signed octet-stream uploads (the signature covers the image bytes) and developer sessions', async () => {
    const src = await jpeg(sceneSvg(32, 32));
    const path = `${BASE}?repair_type=${encodeURIComponent('repair, SR')}`;
    const signed = await http(s.url + path, { method: 'POST', headers: { ...signedHeaders(A.creds, 'POST', path, src, { timestamp: Math.floor(clock.now() / 1000) }), 'content-type': 'application/octet-stream' }, body: src });
    assert.equal(signed.status, 201, signed.text);
    assert.equal(signed.json.repair_type, 'repair,sr');
    assert.equal(signed.json.input_type, 'image/jpeg', 'the bytes decide the format');
    // the same signature over other bytes does not verify
    const tampered = Buffer.from(src);
    tampered[tampered.length - 3] ^= 1;
    const bad = await http(s.url + path, { method: 'POST', headers: { ...signedHeaders(A.creds, 'POST', path, src, { timestamp: Math.floor(clock.now() / 1000) }), 'content-type': 'application/octet-stream' }, body: tampered });
    assert.equal(bad.status, 401);

    await registerDeveloper(s.ctx, { username: 'photo-dev', password: 'photo-pass', tenantId: A.tenantId });
    const login = await http(`${s.url}/rest/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'photo-dev', password: 'photo-pass' }) });
    const cookie = { cookie: (login.headers.get('set-cookie') ?? '').split(';')[0] };
    const dev = await http(`${s.url}${BASE}?repair_type=bg&rgb=255,255,255`, { method: 'POST', headers: { ...cookie, 'content-type': 'image/jpeg' }, body: src });
    assert.equal(dev.status, 201, dev.text);
    assert.equal(dev.json.app_id, null, 'uploaded in a session, not by an app');
    assert.deepEqual(dev.json.rgb, [255, 255, 255]);
    const mine = (await http(`${s.url}${BASE}?app_id=0`, { headers: cookie })).json.items.map((j: { id: string }) => j.id);
    assert.deepEqual(mine, [dev.json.id]);
  });

  it('lists newest first with filters and cursor paging', async () => {
    for (const k of ['sr', 'repair', 'sr', 'sr,repair']) assert.equal((await upload(A.creds, `repair_type=${k}`, await png(sceneSvg(16, 16)))).status, 201);
    clock.advance(1000);
    const all: { id: string; created_at: number }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await get(A.creds, `?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(r.status, 200, r.text);
      assert.ok(r.json.items.length <= 2);
      all.push(...r.json.items);
      cursor = r.json.next_cursor;
      pages++;
    } while (cursor && pages < 20);
    const whole = (await get(A.creds, '?limit=500')).json.items as { id: string; created_at: number; tenant_id: number }[];
    assert.deepEqual(
      all.map((j) => j.id),
      whole.map((j) => j.id),
      'pages join up to the whole list, without repeats',
    );
    assert.equal(new Set(whole.map((j) => j.id)).size, whole.length);
    assert.ok(whole.length >= 7);
    assert.ok(whole.every((j, i) => i === 0 || whole[i - 1].created_at >= j.created_at), 'newest first');
    assert.ok(whole.every((j) => j.tenant_id === A.tenantId));

    const repair = (await get(A.creds, '?repair_type=repair')).json.items as { repair_type: string }[];
    assert.ok(repair.length >= 3 && repair.every((j) => j.repair_type === 'repair,sr'), JSON.stringify(repair.map((j) => j.repair_type)));
    const done = (await get(A.creds, '?status=done')).json.items as { status: string }[];
    assert.ok(done.length >= 1 && done.every((j) => j.status === 'done'));
    const queued = (await get(A.creds, `?status=queued&app_id=${A.appId}`)).json.items as { status: string; app_id: number }[];
    assert.ok(queued.length >= 4 && queued.every((j) => j.status === 'queued' && j.app_id === A.appId));

    for (const q of ['?status=cooking', '?cursor=bm90LWEtY3Vyc29y', '?limit=0', '?repair_type=magic', '?colour=1']) {
      const r = await get(A.creds, q);
      assert.equal(r.status, 400, `${q}: ${r.text}`);
      assert.equal(r.json.code, 'VALIDATION', q);
    }
    // leave the queue empty for the next tests
    while (await s.ctx.jobs.claim([JOB_KIND]).then(async (j) => (j ? (await s.ctx.jobs.cancel(j.id, 'cancelled'), true) : false)));
  });

  it('cancels a queued or running job and refunds it; an ended job cannot be cancelled', async () => {
    const before = await remaining(A.creds);
    const queued = (await upload(A.creds, 'repair_type=sr', await png(sceneSvg(20, 20)))).json;
    clock.advance(10);
    const running = (await upload(A.creds, 'repair_type=repair', await png(sceneSvg(64, 64)))).json;
    assert.equal(await remaining(A.creds), before - 2);
    const claimed = await s.ctx.jobs.claim([JOB_KIND]);
    assert.equal(claimed?.id, queued.id, 'the older job is taken first');
    const claimed2 = await s.ctx.jobs.claim([JOB_KIND]);
    assert.equal(claimed2?.id, running.id);
    assert.equal((await get(A.creds, `/${running.id}`)).json.status, 'running');

    for (const j of [queued, running]) {
      const c = await http(`${s.url}${BASE}/${j.id}/cancel`, { method: 'POST', headers: bearer(A.creds) });
      assert.equal(c.status, 200, c.text);
      assert.deepEqual([c.json.status, c.json.error, c.json.charge], ['failed', 'cancelled', 'refunded']);
    }
    assert.equal(await remaining(A.creds), before, 'both refunded');
    // the worker that holds the cancelled job does not bring it back to life
    await s.ctx.jobs.runOne(claimed2!);
    const after = (await get(A.creds, `/${running.id}`)).json;
    assert.deepEqual([after.status, after.charge, after.result], ['failed', 'refunded', null]);
    assert.equal(await remaining(A.creds), before);
    const res = await get(A.creds, `/${running.id}/result`);
    assert.equal(res.status, 422);
    assert.equal(res.json.code, 'PROCESSING_FAILED');
    assert.equal((await fetch(`${s.url}${BASE}/${running.id}/input`, { headers: bearer(A.creds) })).status, 200, 'the upload is kept for the retention');

    const again = await http(`${s.url}${BASE}/${queued.id}/cancel`, { method: 'POST', headers: bearer(A.creds) });
    assert.equal(again.status, 409);
    assert.equal(again.json.code, 'CONFLICT');
    const ok = (await upload(A.creds, 'repair_type=sr', await png(sceneSvg(12, 12)))).json;
    await runNext();
    const late = await http(`${s.url}${BASE}/${ok.id}/cancel`, { method: 'POST', headers: bearer(A.creds) });
    assert.equal(late.status, 409);
    assert.equal((await get(A.creds, `/${ok.id}`)).json.charge, 'committed');
  });

  it("keeps tenants apart: another tenant's job is 404 everywhere; operators see every tenant", async () => {
    const a = (await upload(A.creds, 'repair_type=sr', await png(sceneSvg(16, 16)))).json;
    const b = (await upload(B.creds, 'repair_type=sr', await png(sceneSvg(16, 16)))).json;
    for (const path of [`/${a.id}`, `/${a.id}/input`, `/${a.id}/result`, `/${a.id.toUpperCase()}`]) {
      const r = await get(B.creds, path);
      assert.equal(r.status, 404, path);
      assert.equal(r.json.code, 'NOT_FOUND');
    }
    const c = await http(`${s.url}${BASE}/${a.id}/cancel`, { method: 'POST', headers: bearer(B.creds) });
    assert.equal(c.status, 404);
    assert.equal((await get(A.creds, `/${a.id}`)).json.status, 'queued', 'untouched');
    const listB = (await get(B.creds, '?limit=500')).json.items as { id: string; tenant_id: number }[];
    assert.deepEqual(
      listB.map((j) => j.id),
      [b.id],
    );
    const asked = await get(B.creds, `?tenant_id=${A.tenantId}`);
    assert.equal(asked.status, 403);
    assert.equal(asked.json.code, 'FORBIDDEN');
    assert.equal((await upload(B.creds, `repair_type=sr&tenant_id=${A.tenantId}`, await png(sceneSvg(16, 16)))).status, 403);

    const opAll = (await get(op, '?limit=500')).json.items as { tenant_id: number }[];
    assert.ok(opAll.some((j) => j.tenant_id === A.tenantId) && opAll.some((j) => j.tenant_id === B.tenantId));
    const opB = (await get(op, `?tenant_id=${B.tenantId}`)).json.items as { id: string }[];
    assert.deepEqual(
      opB.map((j) => j.id),
      [b.id],
    );
    assert.equal((await get(op, `/${a.id}`)).json.tenant_id, A.tenantId);
    assert.equal((await get(op, `/${a.id}?tenant_id=${B.tenantId}`)).status, 404);
    // an operator uploads for a tenant, charged to that tenant
    const beforeB = await remaining(B.creds);
    const forB = await upload(op, `repair_type=sr&tenant_id=${B.tenantId}`, await png(sceneSvg(16, 16)));
    assert.equal(forB.status, 201, forB.text);
    assert.equal(forB.json.tenant_id, B.tenantId);
    assert.equal(await remaining(B.creds), beforeB - 1);

    for (const path of ['', `/${a.id}`, `/${a.id}/input`]) assert.equal((await http(`${s.url}${BASE}${path}`)).status, 401, path);
    assert.equal((await get(A.creds, '/not-a-job-id')).status, 400);
    assert.equal((await get(A.creds, `/${'0'.repeat(32)}`)).status, 404);
  });

  it('refuses bad uploads with problem+json and charges and stores nothing', async () => {
    const before = { a: await remaining(A.creds), ...(await counts()) };
    const good = await png(sceneSvg(32, 32));
    const truncated = (await jpeg(sceneSvg(64, 64))).subarray(0, 900);
    const bomb = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#808080' } }).png({ compressionLevel: 9 }).toBuffer();
    const gif = await sharp(good).gif().toBuffer();
    const cases: [string, Promise<Awaited<ReturnType<typeof http>>>, number, string, RegExp?][] = [
      ['text body', upload(A.creds, 'repair_type=sr', 'hello', 'text/plain'), 415, 'UNSUPPORTED_MEDIA'],
      ['json body', upload(A.creds, 'repair_type=sr', '{"file":"x"}', 'application/json'), 415, 'UNSUPPORTED_MEDIA'],
      ['gif labelled png', upload(A.creds, 'repair_type=sr', gif), 415, 'UNSUPPORTED_MEDIA'],
      ['gif as gif', upload(A.creds, 'repair_type=sr', gif, 'image/gif'), 415, 'UNSUPPORTED_MEDIA'],
      ['text as octet-stream', upload(A.creds, 'repair_type=sr', 'not an image at all', 'application/octet-stream'), 415, 'UNSUPPORTED_MEDIA'],
      ['truncated jpeg', upload(A.creds, 'repair_type=sr', truncated, 'image/jpeg'), 422, 'PROCESSING_FAILED'],
      ['decompression bomb', upload(A.creds, 'repair_type=sr', bomb), 400, 'VALIDATION', /16000000 pixels/],
      ['empty body', upload(A.creds, 'repair_type=sr', Buffer.alloc(0)), 400, 'VALIDATION'],
      ['unknown repair_type', upload(A.creds, 'repair_type=magic', good), 400, 'VALIDATION', /repair_type/],
      ['missing repair_type', upload(A.creds, '', good), 400, 'VALIDATION'],
      ['bg without rgb', upload(A.creds, 'repair_type=bg', good), 400, 'VALIDATION', /rgb/],
      ['bad rgb', upload(A.creds, 'repair_type=bg&rgb=256,0,0', good), 400, 'VALIDATION', /rgb/],
      ['colour without a model', upload(A.creds, 'repair_type=colour', good), 400, 'VALIDATION', /no colourization model/],
      ['unknown option', upload(A.creds, 'repair_type=sr&scale=4', good), 400, 'VALIDATION'],
      ['no quota', upload(broke, 'repair_type=sr', good), 402, 'QUOTA_EXHAUSTED'],
    ];
    for (const [name, p, status, code, detail] of cases) {
      const r = await p;
      assert.equal(r.status, status, `${name}: ${r.text}`);
      assert.match(r.headers.get('content-type') ?? '', /application\/problem\+json/, name);
      assert.equal(r.json.code, code, name);
      if (detail) assert.match(r.json.detail, detail, name);
    }
    assert.deepEqual({ a: await remaining(A.creds), ...(await counts()) }, before, 'nothing charged, nothing stored');
  });
});

describe('native REST: photo upload caps from configuration', () => {
  let s: TestServer;
  let c: NativeCreds;
  before(async () => {
    s = await startServer({ env: { MENHU_PHOTOS_MAX_BYTES: '4000', MENHU_PHOTOS_MAX_PIXELS: '2500' } });
    const t = await tenantWithApp(s.ctx, 'small');
    await addQuota(s.ctx.db.kysely, t.tenantId, 'fangtang', 3);
    c = t.creds;
  });
  after(() => s.close());

  it('answers 413 over the byte cap (before reading the body) and 400 over the pixel cap; the OpenAPI document says so', async () => {
    let seed = 1;
    const random = Buffer.from(Array.from({ length: 48 * 48 * 3 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) >> 23));
    const noisy = await sharp(random, { raw: { width: 48, height: 48, channels: 3 } }).png().toBuffer();
    assert.ok(noisy.length > 4000);
    const big = await http(`${s.url}${BASE}?repair_type=sr`, { method: 'POST', headers: { ...bearer(c), 'content-type': 'image/png' }, body: noisy });
    assert.equal(big.status, 413, big.text);
    assert.equal(big.json.code, 'PAYLOAD_TOO_LARGE');
    const wide = await http(`${s.url}${BASE}?repair_type=sr`, { method: 'POST', headers: { ...bearer(c), 'content-type': 'image/png' }, body: await sharp({ create: { width: 60, height: 50, channels: 3, background: '#468' } }).png().toBuffer() });
    assert.equal(wide.status, 400, wide.text);
    assert.match(wide.json.detail, /3000 pixels/);
    assert.deepEqual(await s.ctx.db.kysely.selectFrom('photo_jobs').selectAll().execute(), []);
    assert.equal((await http(`${s.url}/rest/v1/quotas?service=fangtang`, { headers: bearer(c) })).json.remaining, 3);

    const doc = (await http(`${s.url}/rest/v1/openapi.json`)).json;
    const post = doc.paths['/rest/v1/photo-jobs'].post;
    assert.deepEqual(Object.keys(post.requestBody.content).sort(), ['application/octet-stream', 'image/jpeg', 'image/png', 'image/webp']);
    assert.match(post.description, /At most 4000 bytes and 2500 pixels/);
    for (const p of ['/rest/v1/photo-jobs/{id}', '/rest/v1/photo-jobs/{id}/input', '/rest/v1/photo-jobs/{id}/result']) assert.ok(doc.paths[p].get, p);
    assert.ok(doc.paths['/rest/v1/photo-jobs/{id}/cancel'].post);
  });
});
