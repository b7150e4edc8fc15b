/**
 * Fault: the blob folder's disk is full (issue 9). A small tmpfs is mounted as the blob folder
 * (<data>/blobs) of a real embedded-profile (SQLite) `menhu serve` and filled. Uploads answer each
 * dialect's documented storage error (MiningLamp `503 SERVICE_UNAVAILABLE`, Fangtang errno 9006,
 * BQP code 4) and leave nothing behind (no report row or log entry, no job, no quota held or spent,
 * no file row, no blob row); reads keep being served; once space is freed, uploads work again.
 * Mounting needs root (CI runs as root): if the mount fails the test fails and says why.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { createApp } from '../../src/core/credentials/apps.js';
import { fangtangToken } from '../../src/core/credentials/schemes.js';
import { addQuota } from '../../src/core/limits/quotas.js';
import { createTenant } from '../../src/services/accounts/index.js';
import { png, sceneSvg } from '../photos/fixtures.js';
import { startServe, type ServeProc } from '../procs.js';
import { faultEnv, skipInCluster, type FaultEnv } from './env.js';

let server: ServeProc | undefined;
let fe: FaultEnv | undefined;
let mounted = '';
after(async () => {
  await server?.kill9();
  if (mounted) execFileSync('umount', [mounted]);
  await fe?.cleanup();
});

it('disk full on the blob folder: uploads get a clear error and store nothing; reads keep working', { skip: skipInCluster, timeout: 180_000 }, async () => {
  fe = await faultEnv({ pg: false });
  const blobs = join(fe.dataDir, 'blobs');
  mkdirSync(blobs, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', blobs], { stdio: 'pipe' });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`cannot mount a tmpfs on ${blobs} (this test needs root, as in CI): ${err.stderr?.toString().trim() || err.message}`);
  }
  mounted = blobs;

  const setup = await fe.open();
  const db = setup.db.kysely;
  const t = await createTenant(setup, 'disk full');
  const tenantId = Number(t.id);
  const ml = await createApp(setup, { tenantId, name: 'ml', services: ['mininglamp'] });
  const ft = await createApp(setup, { tenantId, name: 'ft', services: ['fangtang'] });
  const bqp = await createApp(setup, { tenantId, name: 'bqp', services: ['bqp'] });
  await addQuota(db, tenantId, 'fangtang', 5);
  server = await startServe(fe.env);
  const url = server.url;

  const commit = async (id: string) => {
    const form = new FormData();
    for (const [k, v] of Object.entries({ user: ml.key, passcode: ml.secret, title: 't', type: 'q', period: 'p', geom: 'g' })) form.set(k, v);
    form.set('file', new Blob([Buffer.from(`%PDF-1.4 ${id} ${'x'.repeat(20_000)}`)], { type: 'application/pdf' }), `${id}.pdf`);
    const r = await fetch(`${url}/api/v1/commitreport/${id}`, { method: 'POST', body: form });
    return { status: r.status, reason: r.statusText, text: await r.text() };
  };
  const image = await png(sceneSvg(64, 48));
  const ftCall = async (path: string, fields: Record<string, string>, file?: Buffer) => {
    const form = new FormData();
    form.set('third_code', ft.key);
    for (const [k, v] of Object.entries(fields)) form.set(k, v);
    if (file) form.set('file', new Blob([file], { type: 'image/png' }), 'photo.png');
    const r = await fetch(`${url}/api/third${path}`, { method: 'POST', headers: { token: fangtangToken(ft.secret, Math.floor(Date.now() / 1000)) }, body: form });
    return (await r.json()) as { code: number; errno?: number; msg?: string; data?: any };
  };
  const bqpUpload = async () => {
    const form = new FormData();
    form.set('file', new Blob([Buffer.from('a,b\n1,2\n'.repeat(2000))], { type: 'text/plain' }), 'table.txt');
    const r = await fetch(`${url}/api/upload`, { method: 'POST', headers: { authorization: `Basic ${Buffer.from(`${bqp.key}:${bqp.secret}`).toString('base64')}` }, body: form });
    return JSON.parse(await r.text()) as [number, ...unknown[]];
  };
  const counts = async () => {
    const n = async (table: 'reports' | 'report_versions' | 'tlog_entries' | 'photo_jobs' | 'jobs' | 'quota_holds' | 'bqp_files' | 'blobs') =>
      Number((await db.selectFrom(table).select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const q = await db.selectFrom('quotas').select(['remaining', 'held']).where('tenant_id', '=', tenantId).where('service', '=', 'fangtang').executeTakeFirstOrThrow();
    return {
      reports: await n('reports'),
      versions: await n('report_versions'),
      log: await n('tlog_entries'),
      photoJobs: await n('photo_jobs'),
      jobs: await n('jobs'),
      holds: await n('quota_holds'),
      bqpFiles: await n('bqp_files'),
      blobs: await n('blobs'),
      quota: [Number(q.remaining), Number(q.held)],
    };
  };

  // before: each upload works, giving something to read later
  assert.equal((await commit('before')).text, '200 DATA_UPDATED');
  const up = await ftCall('/photo/upload', { repair_type: 'sr' }, image);
  assert.equal(up.code, 200, JSON.stringify(up));
  const before = await bqpUpload();
  assert.equal(before[0], 0, JSON.stringify(before));
  const fileId = (before[1] as { id: number }[])[0].id;

  // fill the disk
  try {
    writeFileSync(join(blobs, 'filler'), Buffer.alloc(4 * 1024 * 1024, 1));
    assert.fail('the 2 MiB tmpfs took 4 MiB');
  } catch (e) {
    assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
  }
  assert.ok(statfsSync(blobs).bavail === 0, 'the blob folder is full');
  const stored = await counts();

  // uploads: each dialect's documented error, nothing stored
  const c = await commit('during');
  assert.deepEqual([c.status, c.reason, c.text], [503, 'SERVICE_UNAVAILABLE', '503 SERVICE_UNAVAILABLE']);
  assert.deepEqual(await ftCall('/photo/upload', { repair_type: 'sr' }, image), { code: 9000, errno: 9006, msg: '上传失败' });
  const b = await bqpUpload();
  assert.equal(b[0], 4, JSON.stringify(b));
  assert.deepEqual(await counts(), stored, 'no partial records');
  assert.equal((await ftCall('/company/nums', {})).data.nums, 4, 'the failed upload was not charged');

  // reads keep being served
  assert.equal((await commit('before')).text, '501 DATA_ALREADY_EXIST');
  assert.equal((await ftCall('/photo/status', { mdf: up.data.mdf })).code, 200);
  const img = await fetch(up.data.img_url);
  assert.equal(img.status, 200);
  assert.deepEqual(Buffer.from(await img.arrayBuffer()), image);
  const att = await fetch(`${url}/api/att?id=${fileId}`, { headers: { authorization: `Basic ${Buffer.from(`${bqp.key}:${bqp.secret}`).toString('base64')}` } });
  assert.equal(att.status, 200);
  assert.equal((await att.text()).length, 16_000);
  assert.equal((await fetch(`${url}/healthz`)).status, 200);

  // space again: uploads work again, without a restart
  rmSync(join(blobs, 'filler'));
  assert.equal((await commit('after')).text, '200 DATA_UPDATED');
  assert.equal((await ftCall('/photo/upload', { repair_type: 'sr' }, image)).code, 200);
  assert.equal((await bqpUpload())[0], 0);
  assert.equal(server.child.exitCode, null);
});
