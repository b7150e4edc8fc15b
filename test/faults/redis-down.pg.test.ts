/**
 * Fault: Redis stopped under a running server (issue 9). A private `redis-server` on a random port
 * backs a real `menhu serve`; it is killed: native and dialect requests keep being served, rate
 * limits fall back to the process (still enforced), the fallback is logged once; Redis starts again
 * on the same port and the server returns to shared limits by itself (/healthz `limits`).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, it } from 'node:test';
import { createApp } from '../../src/core/credentials/apps.js';
import { fangtangToken } from '../../src/core/credentials/schemes.js';
import { createTenant } from '../../src/services/accounts/index.js';
import { freePort, startServe, type ServeProc } from '../procs.js';
import { faultEnv, skipInCluster, sleep, type FaultEnv } from './env.js';

const FALLBACK = 'redis unreachable: rate limits and nonces fall back to this process';
const BACK = 'redis is reachable again';
const RATE = 5;

let redis: ChildProcess | null = null;
let server: ServeProc | undefined;
let fe: FaultEnv | undefined;

async function startRedis(port: number): Promise<ChildProcess> {
  const r = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  r.stdout!.on('data', (b: Buffer) => (out += b));
  r.stderr!.on('data', (b: Buffer) => (out += b));
  const t0 = Date.now();
  while (!/Ready to accept connections/.test(out)) {
    if (r.exitCode !== null) throw new Error(`redis-server exited: ${out}`);
    if (Date.now() - t0 > 15_000) throw new Error(`redis-server did not start: ${out}`);
    await sleep(20);
  }
  return r;
}

async function stopRedis(): Promise<void> {
  const r = redis;
  redis = null;
  if (!r || r.exitCode !== null) return;
  const gone = new Promise((res) => r.once('exit', res));
  r.kill('SIGKILL');
  await gone;
}

after(async () => {
  await server?.kill9();
  await stopRedis();
  await fe?.cleanup();
});

const count = (text: string, needle: string) => text.split(needle).length - 1;

it('Redis stopped: requests are served, rate limits fall back to the process (logged once), and return to Redis when it is back', { skip: skipInCluster, timeout: 180_000 }, async () => {
  const port = await freePort();
  redis = await startRedis(port);
  fe = await faultEnv({ pg: true, extra: { REDIS_URL: `redis://127.0.0.1:${port}`, MENHU_REDIS_PREFIX: 'fault:' } });
  const setup = await fe.open();
  const t = await createTenant(setup, 'redis outage');
  const native = await createApp(setup, { tenantId: Number(t.id), name: 'native', services: ['native'], rateLimit: RATE });
  const ft = await createApp(setup, { tenantId: Number(t.id), name: 'fangtang', services: ['fangtang'] });
  server = await startServe(fe.env);
  const url = server.url;

  const health = async () => (await (await fetch(`${url}/healthz`)).json()) as { limits: string };
  const nativeGet = () => fetch(`${url}/rest/v1/links`, { headers: { authorization: `Bearer ${native.key}.${native.secret}` }, signal: AbortSignal.timeout(5000) });
  const dialect = async () => {
    const form = new FormData();
    form.set('third_code', ft.key);
    const r = await fetch(`${url}/api/third/company/nums`, { method: 'POST', headers: { token: fangtangToken(ft.secret, Math.floor(Date.now() / 1000)) }, body: form, signal: AbortSignal.timeout(5000) });
    return (await r.json()) as { code: number; data?: { nums: number } };
  };
  /** 3×RATE requests at once: the limit lets RATE through per one-second window and refuses the rest with 429. */
  const burst = async () => {
    const st = await Promise.all(Array.from({ length: 3 * RATE }, async () => (await nativeGet()).status));
    const ok = st.filter((s) => s === 200).length;
    assert.deepEqual([...new Set(st)].sort(), [200, 429], `statuses ${st}: some let through, the rest refused`);
    assert.ok(ok >= RATE, `${ok} let through`);
  };

  assert.equal((await health()).limits, 'redis');
  await burst();
  assert.equal((await dialect()).code, 200);

  await stopRedis();
  const t0 = Date.now();
  // served all along: native and a dialect, many times (the outage is logged once, not per request)
  for (let i = 0; i < 10; i++) {
    assert.equal((await dialect()).code, 200);
    const r = await nativeGet();
    assert.ok(r.status === 200 || r.status === 429, `native answered ${r.status}`);
    await r.arrayBuffer();
  }
  await sleep(1100);
  await burst(); // limits still hold, in this process
  assert.ok(Date.now() - t0 < 15_000, 'requests were not slowed down by the outage');
  assert.equal((await health()).limits, 'redis-fallback');
  assert.equal(count(server.output(), FALLBACK), 1, `fallback logged once:\n${server.output()}`);

  redis = await startRedis(port);
  const t1 = Date.now();
  while ((await health()).limits !== 'redis') {
    assert.ok(Date.now() - t1 < 15_000, 'limits did not return to redis');
    await sleep(100);
  }
  await sleep(1100);
  await burst();
  assert.equal((await dialect()).code, 200);
  assert.equal(count(server.output(), FALLBACK), 1);
  assert.equal(count(server.output(), BACK), 1, 'the end of the outage is logged once');
  assert.ok(server.child.exitCode === null, 'the server was never restarted');
});
