import assert from 'node:assert/strict';
import { getPriority } from 'node:os';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { ManualClock } from '../../src/core/context.js';
import { createApp } from '../../src/core/credentials/apps.js';
import { fangtangToken } from '../../src/core/credentials/schemes.js';
import { addQuota } from '../../src/core/limits/quotas.js';
import { createTenant } from '../../src/services/accounts/index.js';
import { expireStalePhotoJobs, JOB_KIND, photoPool } from '../../src/services/photos/index.js';
import { http, startServer, type TestServer } from '../helpers.js';
import { jpeg, personSvg, png, rawRgb, sceneSvg, runNextPhotoJob, storedCounts } from './fixtures.js';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);

interface Tenant {
  id: number;
  key: string;
  secret: string;
}

describe('Fangtang dialect (seed 001)', () => {
  let s: TestServer;
  const clock = new ManualClock(T0);
  let A: Tenant;
  let B: Tenant;
  let empty: Tenant;

  const mk = async (name: string, uploads: number): Promise<Tenant> => {
    const t = await createTenant(s.ctx, name);
    const app = await createApp(s.ctx, { tenantId: Number(t.id), name: `${name} fangtang`, services: ['fangtang'] });
    if (uploads) await addQuota(s.ctx.db.kysely, Number(t.id), 'fangtang', uploads);
    return { id: Number(t.id), key: app.key, secret: app.secret };
  };

  before(async () => {
    s = await startServer({ clock });
    A = await mk('tenant a', 10);
    B = await mk('tenant b', 5);
    empty = await mk('tenant without uploads', 0);
  });
  after(() => s.close());

  const token = (t: Tenant, at = clock.now()) => fangtangToken(t.secret, Math.floor(at / 1000));

  async function call(path: string, t: Tenant, fields: Record<string, string>, file?: { data: Buffer; name: string; type: string }, tok = token(t)) {
    const form = new FormData();
    form.set('third_code', t.key);
    for (const [k, v] of Object.entries(fields)) form.set(k, v);
    if (file) form.set('file', new Blob([file.data], { type: file.type }), file.name);
    return http(`${s.url}/api/third${path}`, { method: 'POST', headers: { token: tok }, body: form });
  }
  const upload = (t: Tenant, fields: Record<string, string>, data: Buffer, name = 'photo.png', type = 'image/png') => call('/photo/upload', t, fields, { data, name, type });
  const nums = async (t: Tenant) => (await call('/company/nums', t, {})).json.data.nums as number;
  const status = (t: Tenant, mdf: string) => call('/photo/status', t, { mdf });
  const download = (t: Tenant, mdf: string) => call('/photo/download', t, { mdf });
  const counts = () => storedCounts(s.ctx);
  const runNext = () => runNextPhotoJob(s.ctx);

  it('checks the token window at its edges (±300 s) and refuses other tenants’ tokens', async () => {
    assert.deepEqual((await call('/company/nums', A, {})).json, { code: 200, data: { code: A.key, nums: 10 } });
    for (const dt of [-300, 300]) assert.equal((await call('/company/nums', A, {}, undefined, token(A, T0 + dt * 1000))).json.code, 200, `${dt} s`);
    for (const dt of [-301, 301]) assert.deepEqual((await call('/company/nums', A, {}, undefined, token(A, T0 + dt * 1000))).json, { code: 9000, errno: 9999, msg: '请求参数token不合法' });
    // B's secret with A's third_code, and no token at all
    assert.equal((await call('/company/nums', A, {}, undefined, token(B))).json.errno, 9999);
    assert.equal((await call('/company/nums', A, {}, undefined, '')).json.errno, 9999);
    assert.equal((await call('/company/nums', { ...A, key: 'nobody' }, {})).json.errno, 9999);
  });

  it('sr: upload, status with progress, download; the upload is charged when the job succeeds', async () => {
    const src = await png(sceneSvg(48, 40));
    const up = await upload(A, { repair_type: 'sr' }, src);
    assert.equal(up.status, 200);
    assert.equal(up.json.code, 200, up.text);
    const { mdf, img_url } = up.json.data;
    assert.match(mdf, /^[0-9a-f]{32}$/);
    assert.equal(img_url, `${s.url}/api/third/photo/static/${mdf}/in.png`);
    assert.deepEqual((await status(A, mdf)).json, { code: 200, data: { msg: '图片处理中', status: 100, progress: 0 } });
    assert.equal(await nums(A), 9, 'one unit held while the job runs');
    const held = await s.ctx.db.kysely.selectFrom('quotas').select(['remaining', 'held']).where('tenant_id', '=', A.id).executeTakeFirstOrThrow();
    assert.deepEqual([Number(held.remaining), Number(held.held)], [9, 1]);
    // the stored upload is served at img_url
    const stored = await fetch(img_url);
    assert.equal(stored.status, 200);
    assert.deepEqual(Buffer.from(await stored.arrayBuffer()), src);
    // not downloadable before it is done; another tenant cannot see it
    assert.equal((await download(A, mdf)).json.errno, 9002);
    assert.equal((await status(B, mdf)).json.errno, 9002);

    await runNext();
    assert.deepEqual((await status(A, mdf)).json, { code: 200, data: { msg: '图片处理完成', status: 200, progress: 100 } });
    const dl = await download(A, mdf);
    assert.equal(dl.json.code, 200);
    assert.equal(dl.json.data.url, `${s.url}/api/third/photo/static/${mdf}/out.png`);
    const res = await fetch(dl.json.data.url);
    assert.equal(res.headers.get('content-type'), 'image/png');
    const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
    assert.deepEqual([meta.width, meta.height], [96, 80]);
    const q = await s.ctx.db.kysely.selectFrom('quotas').select(['remaining', 'held']).where('tenant_id', '=', A.id).executeTakeFirstOrThrow();
    assert.deepEqual([Number(q.remaining), Number(q.held)], [9, 0], 'spent');
    assert.equal(await nums(A), 9);

    // one hour after the job ended, inputs and results are gone
    clock.advance(3600_000 + 1);
    assert.deepEqual((await download(A, mdf)).json, { code: 9000, errno: 9002, msg: '数据已失效,请重新上传' });
    assert.equal((await status(A, mdf)).json.errno, 9002);
    assert.equal((await fetch(dl.json.data.url)).status, 404);
    assert.equal((await fetch(img_url)).status, 404);
    assert.ok((await s.ctx.blobs.sweep()) >= 2);
    const left = await s.ctx.db.kysely.selectFrom('blobs').select('key').where('key', 'like', `photos/${A.id}/${mdf}/%`).execute();
    assert.deepEqual(left, []);
  });

  it('status progress moves while the model runs, though onnxruntime reports nothing until it ends', async () => {
    const up = await upload(A, { repair_type: 'sr' }, await png(sceneSvg(900, 900)));
    assert.equal(up.json.code, 200, up.text);
    const seen: number[] = [];
    let done = false;
    const run = runNext().finally(() => (done = true));
    const t0 = Date.now();
    while (!done) {
      const st = (await status(A, up.json.data.mdf)).json;
      if (st.data?.status === 100) seen.push(st.data.progress);
      await new Promise((r) => setTimeout(r, 40));
    }
    await run;
    const ms = Date.now() - t0;
    assert.equal((await status(A, up.json.data.mdf)).json.data.progress, 100);
    const between = seen.filter((p) => p > 10 && p < 95);
    // the server moves progress every 500 ms inside a run: a run of 1.5 s or more must show it
    if (ms >= 1500) assert.ok(between.length > 0, `no progress between 10 and 95 % in ${ms} ms: ${seen.join(',')}`);
    assert.deepEqual([...seen].sort((x, y) => x - y), seen, 'progress never goes back');
  });

  it('runs the model in a child process below the server’s priority, kept for the next job', async () => {
    const pool = photoPool(s.ctx);
    const pids: number[] = [];
    const seen = (_id: string, pid: number) => pids.push(pid);
    pool.on('start', seen);
    try {
      for (const size of [24, 32]) {
        const up = await upload(A, { repair_type: 'sr' }, await png(sceneSvg(size, size)));
        await runNext();
        assert.equal((await status(A, up.json.data.mdf)).json.data.status, 200);
      }
    } finally {
      pool.off('start', seen);
    }
    assert.equal(pids.length, 2);
    assert.notEqual(pids[0], process.pid, 'the server process never runs the model');
    assert.equal(pids[1], pids[0], 'the second job reuses the child (its session stays loaded)');
    assert.ok(getPriority(pids[0]) >= getPriority(process.pid), 'the child is not above the server’s priority');
  });

  it('bg: the requested colour behind a person-shaped figure, JPEG out', async () => {
    const up = await upload(A, { repair_type: 'bg', rgb: '0, 0,255' }, await jpeg(personSvg(200, 240)), 'me.jpg', 'image/jpeg');
    assert.equal(up.json.code, 200, up.text);
    await runNext();
    const dl = await download(A, up.json.data.mdf);
    const out = await rawRgb(Buffer.from(await (await fetch(dl.json.data.url)).arrayBuffer()));
    assert.deepEqual([out.width, out.height], [200, 240]);
    const px = (x: number, y: number) => Array.from(out.data.slice((y * 200 + x) * 3, (y * 200 + x) * 3 + 3));
    const [r, g, b] = px(6, 6);
    assert.ok(r < 20 && g < 20 && b > 235, `background ${[r, g, b]}`);
    const face = px(100, 98);
    assert.ok(face[0] > 200 && face[2] < 180, `face ${face}`);
  });

  it('refunds a job whose worker crashes twice (retried once, then failed: 9009)', async () => {
    const before = await nums(A);
    const up = await upload(A, { repair_type: 'repair' }, await png(sceneSvg(64, 64)));
    const { mdf } = up.json.data;
    const pool = photoPool(s.ctx);
    const kill = (id: string, pid: number) => {
      if (id === mdf) process.kill(pid, 'SIGKILL');
    };
    pool.on('start', kill);
    try {
      const first = await runNext();
      assert.equal(first.attempts, 1);
      assert.equal((await status(A, mdf)).json.data.status, 100, 'queued again for its retry');
      assert.equal(await nums(A), before - 1);
      clock.advance(1000); // past the retry backoff
      const second = await runNext();
      assert.equal(second.attempts, 2);
    } finally {
      pool.off('start', kill);
    }
    assert.deepEqual((await status(A, mdf)).json, { code: 9000, errno: 9009, msg: '图片异常,处理失败' });
    assert.equal((await download(A, mdf)).json.errno, 9009);
    assert.equal(await nums(A), before, 'refunded');
    const hold = await s.ctx.db.kysely.selectFrom('quota_holds').select('state').where('id', '=', `photos:${mdf}`).executeTakeFirstOrThrow();
    assert.equal(hold.state, 'refunded');
    // the next job gets a fresh worker and succeeds
    const ok = await upload(A, { repair_type: 'sr' }, await png(sceneSvg(20, 20)));
    await runNext();
    assert.equal((await status(A, ok.json.data.mdf)).json.data.status, 200);
  });

  it('refunds a job that never finished within the job timeout', async () => {
    const before = await nums(B);
    const up = await upload(B, { repair_type: 'sr' }, await png(sceneSvg(20, 20)));
    assert.equal(await nums(B), before - 1);
    clock.advance(3600_000 + 1);
    assert.deepEqual(await expireStalePhotoJobs(s.ctx), [up.json.data.mdf]);
    assert.equal(await nums(B), before);
    assert.equal((await status(B, up.json.data.mdf)).json.errno, 9009);
    assert.equal(await s.ctx.jobs.claim([JOB_KIND]), null);
  });

  it('refuses bad input with the documented errno and charges nothing, stores nothing', async () => {
    const before = { a: await nums(A), e: await nums(empty), ...(await counts()) };
    const good = await png(sceneSvg(32, 32));
    const truncated = (await jpeg(sceneSvg(64, 64))).subarray(0, 900);
    const bomb = await sharp({ create: { width: 4000, height: 4000, channels: 3, background: '#808080' } }).png({ compressionLevel: 9 }).toBuffer();
    assert.ok(bomb.length < 200_000, 'a small file that decodes to 16 megapixels');
    const gif = await sharp(await png(sceneSvg(32, 32))).gif().toBuffer();
    const cases: [string, Promise<Awaited<ReturnType<typeof http>>>, number, RegExp?][] = [
      ['not an image', upload(A, { repair_type: 'sr' }, Buffer.from('hello, this is text'), 'a.txt', 'text/plain'), 9005],
      ['gif', upload(A, { repair_type: 'sr' }, gif, 'a.gif', 'image/gif'), 9005],
      ['svg', upload(A, { repair_type: 'sr' }, personSvg(), 'a.svg', 'image/svg+xml'), 9005],
      ['truncated jpeg', upload(A, { repair_type: 'sr' }, truncated, 'a.jpg', 'image/jpeg'), 9009],
      ['decompression bomb', upload(A, { repair_type: 'sr' }, bomb), 9001, /16000000 pixels/],
      ['empty file', upload(A, { repair_type: 'sr' }, Buffer.alloc(0)), 9001],
      ['no file', call('/photo/upload', A, { repair_type: 'sr' }), 9001, /file is required/],
      ['unknown repair_type', upload(A, { repair_type: 'magic' }, good), 9001, /repair_type/],
      ['missing repair_type', upload(A, {}, good), 9001],
      ['bg without rgb', upload(A, { repair_type: 'bg' }, good), 9001, /rgb/],
      ['bad rgb', upload(A, { repair_type: 'bg', rgb: '256,0,0' }, good), 9001, /rgb/],
      ['bad rgb text', upload(A, { repair_type: 'bg', rgb: 'white' }, good), 9001],
      ['bad rgb count', upload(A, { repair_type: 'bg', rgb: '1,2' }, good), 9001],
      ['bg with sr', upload(A, { repair_type: 'bg,sr', rgb: '1,2,3' }, good), 9001],
      ['colour without a model', upload(A, { repair_type: 'sr,repair,colour' }, good), 9001, /no colourization model/],
      ['zero quota', upload(empty, { repair_type: 'sr' }, good), 9101],
      ['other tenant’s token', call('/photo/upload', A, { repair_type: 'sr' }, { data: good, name: 'a.png', type: 'image/png' }, token(B)), 9999],
      ['stale token', call('/photo/upload', A, { repair_type: 'sr' }, { data: good, name: 'a.png', type: 'image/png' }, token(A, clock.now() - 301_000)), 9999],
    ];
    for (const [name, p, errno, msg] of cases) {
      const r = await p;
      assert.equal(r.status, 200, name);
      assert.equal(r.json?.code, 9000, `${name}: ${r.text}`);
      assert.equal(r.json.errno, errno, `${name}: ${r.text}`);
      if (msg) assert.match(r.json.msg, msg, name);
    }
    assert.deepEqual({ a: await nums(A), e: await nums(empty), ...(await counts()) }, before);
    // status / download of unknown or malformed mdf
    assert.equal((await status(A, '0'.repeat(32))).json.errno, 9002);
    assert.equal((await status(A, '../etc')).json.errno, 9002);
    assert.equal((await download(A, '')).json.errno, 9002);
    // a body that is not a form at all
    const junk = await http(`${s.url}/api/third/photo/status`, { method: 'POST', headers: { token: token(A), 'content-type': 'application/json' }, body: '{"third_code":' });
    assert.equal(junk.json.code, 9000);
    assert.equal(junk.json.errno, 9001);
  });

  it('accepts urlencoded parameters as well as multipart', async () => {
    const r = await http(`${s.url}/api/third/company/nums`, {
      method: 'POST',
      headers: { token: token(B), 'content-type': 'application/x-www-form-urlencoded' },
      body: `third_code=${encodeURIComponent(B.key)}`,
    });
    assert.deepEqual(r.json, { code: 200, data: { code: B.key, nums: await nums(B) } });
  });
});

describe('Fangtang limits from configuration', () => {
  let s: TestServer;
  let t: Tenant;
  before(async () => {
    s = await startServer({ env: { MENHU_PHOTOS_MAX_BYTES: '4000', MENHU_PHOTOS_MAX_PIXELS: '2500' } });
    const tenant = await createTenant(s.ctx, 'small');
    const app = await createApp(s.ctx, { tenantId: Number(tenant.id), name: 'small', services: ['fangtang'] });
    await addQuota(s.ctx.db.kysely, Number(tenant.id), 'fangtang', 3);
    t = { id: Number(tenant.id), key: app.key, secret: app.secret };
  });
  after(() => s.close());

  const up = async (repairType: string, data: Buffer) => {
    const form = new FormData();
    form.set('third_code', t.key);
    form.set('repair_type', repairType);
    form.set('file', new Blob([data], { type: 'image/png' }), 'x.png');
    return http(`${s.url}/api/third/photo/upload`, { method: 'POST', headers: { token: fangtangToken(t.secret, Math.floor(Date.now() / 1000)) }, body: form });
  };

  it('refuses files over the byte cap and images over the pixel cap (9001), charging nothing', async () => {
    let seed = 1;
    const random = Buffer.from(Array.from({ length: 48 * 48 * 3 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) >> 23));
    const noisy = await sharp(random, { raw: { width: 48, height: 48, channels: 3 } }).png().toBuffer(); // 2304 pixels, incompressible
    assert.ok(noisy.length > 4000);
    const big = await up('sr', noisy);
    assert.equal(big.json.errno, 9001, big.text);
    const wide = await up('sr', await sharp({ create: { width: 60, height: 50, channels: 3, background: '#468' } }).png().toBuffer()); // 3000 pixels > 2500
    assert.equal(wide.json.errno, 9001, wide.text);
    assert.match(wide.json.msg, /3000 pixels/);
    const rows = await s.ctx.db.kysely.selectFrom('photo_jobs').selectAll().execute();
    assert.deepEqual(rows, []);
  });

  it('runs a repair job (clean-up + sr) to the end within the caps', async () => {
    const r = await up('repair', await png(sceneSvg(40, 30)));
    assert.equal(r.json.code, 200, r.text);
    const job = await s.ctx.jobs.claim([JOB_KIND]);
    await s.ctx.jobs.runOne(job!);
    const done = await s.ctx.jobs.get(r.json.data.mdf);
    assert.equal(done?.state, 'done');
    const res = JSON.parse(done!.result!);
    assert.deepEqual([res.width, res.height, res.contentType], [80, 60, 'image/png']);
    assert.ok(res.timings.model > 0);
  });
});
