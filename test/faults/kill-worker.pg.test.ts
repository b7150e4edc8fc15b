/**
 * Fault: `kill -9` of a `menhu worker` mid-job (issue 9). A Fangtang `sr` upload on a real server
 * (no in-process runner) is claimed by worker A, which is killed with SIGKILL while the job runs;
 * worker B takes the job again once A's lease (MENHU_PHOTOS_LEASE_S) expires, completes it, and the
 * upload is charged exactly once.
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { after, it } from 'node:test';
import sharp from 'sharp';
import { createApp } from '../../src/core/credentials/apps.js';
import { fangtangToken } from '../../src/core/credentials/schemes.js';
import { addQuota } from '../../src/core/limits/quotas.js';
import { createTenant } from '../../src/services/accounts/index.js';
import { http } from '../helpers.js';
import { png, sceneSvg } from '../photos/fixtures.js';
import { startServe, startWorker, type Proc } from '../procs.js';
import { faultEnv, skipInCluster, sleep, type FaultEnv } from './env.js';

const LEASE_S = 3;
const procs: Proc[] = [];
let fe: FaultEnv | undefined;
after(async () => {
  for (const p of procs) await p.kill9();
  await fe?.cleanup();
});

it('kill -9 of a worker mid-job: the job is taken again after its lease, completes, and is charged once', { skip: skipInCluster, timeout: 240_000 }, async () => {
  fe = await faultEnv({ pg: true, extra: { MENHU_PHOTOS_LEASE_S: String(LEASE_S), MENHU_PHOTOS_THREADS: '1' } });
  const setup = await fe.open();
  const db = setup.db.kysely;
  const t = await createTenant(setup, 'photos under fire');
  const tenantId = Number(t.id);
  const app = await createApp(setup, { tenantId, name: 'ft', services: ['fangtang'] });
  await addQuota(db, tenantId, 'fangtang', 5);

  const server = await startServe(fe.env);
  procs.push(server);
  const a = await startWorker(fe.env);
  procs.push(a);

  const call = async (path: string, fields: Record<string, string>, file?: Buffer) => {
    const form = new FormData();
    form.set('third_code', app.key);
    for (const [k, v] of Object.entries(fields)) form.set(k, v);
    if (file) form.set('file', new Blob([file], { type: 'image/png' }), 'photo.png');
    return http(`${server.url}/api/third${path}`, { method: 'POST', headers: { token: fangtangToken(app.secret, Math.floor(Date.now() / 1000)) }, body: form });
  };
  const up = await call('/photo/upload', { repair_type: 'sr' }, await png(sceneSvg(64, 48)));
  assert.equal(up.json.code, 200, up.text);
  const mdf: string = up.json.data.mdf;

  // wait until worker A holds the job, then kill it
  const aWorker = `${hostname()}:${a.pid}:`;
  const t0 = Date.now();
  for (;;) {
    const j = await db.selectFrom('jobs').select(['state', 'worker']).where('id', '=', mdf).executeTakeFirstOrThrow();
    if (j.state === 'running' && j.worker?.startsWith(aWorker)) break;
    assert.notEqual(j.state, 'done', 'worker A finished the job before it could be killed');
    assert.ok(Date.now() - t0 < 60_000, `worker A did not take the job:\n${a.output()}`);
    await sleep(10);
  }
  await a.kill9();
  const killedAt = Date.now();
  const held = await db.selectFrom('jobs').selectAll().where('id', '=', mdf).executeTakeFirstOrThrow();
  assert.equal(held.state, 'running', 'the job was still running when its worker died');
  assert.equal(Number(held.attempts), 1);
  assert.equal((await call('/company/nums', {})).json.data.nums, 4, 'one unit held while the job is pending');

  const b = await startWorker(fe.env);
  procs.push(b);
  for (;;) {
    const st = await call('/photo/status', { mdf });
    if (st.json.data?.status === 200) break;
    assert.equal(st.json.code, 200, `status while retried: ${st.text}`);
    assert.ok(Date.now() - killedAt < 120_000, `job not completed by worker B:\n${b.output()}`);
    await sleep(200);
  }
  const job = await db.selectFrom('jobs').selectAll().where('id', '=', mdf).executeTakeFirstOrThrow();
  assert.equal(job.state, 'done');
  assert.equal(Number(job.attempts), 2, 'taken again once');
  assert.ok(job.worker?.startsWith(`${hostname()}:${b.pid}:`), 'completed by worker B');
  assert.ok(Number(job.finished_at) >= Number(held.lease_until), 'not taken again before the lease expired');

  // charged exactly once: one unit spent, nothing held, one committed hold
  const q = await db.selectFrom('quotas').select(['remaining', 'held']).where('tenant_id', '=', tenantId).where('service', '=', 'fangtang').executeTakeFirstOrThrow();
  assert.deepEqual([Number(q.remaining), Number(q.held)], [4, 0]);
  const holds = await db.selectFrom('quota_holds').select(['state', 'amount']).where('tenant_id', '=', tenantId).execute();
  assert.deepEqual(holds.map((h) => [h.state, Number(h.amount)]), [['committed', 1]]);
  assert.equal((await call('/company/nums', {})).json.data.nums, 4);

  const dl = await call('/photo/download', { mdf });
  assert.equal(dl.json.code, 200, dl.text);
  const out = await fetch(dl.json.data.url);
  const meta = await sharp(Buffer.from(await out.arrayBuffer())).metadata();
  assert.deepEqual([meta.width, meta.height], [128, 96], 'super-resolved ×2');
});
