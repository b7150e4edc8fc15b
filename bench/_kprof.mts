import { fork } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from 'node:inspector/promises';
import autocannon from 'autocannon';
import { hmacSign } from '../src/core/credentials/schemes.js';
const PATH = process.env.KPATH ?? '/rest/v1/me';
if (process.argv[2] === '--serve') {
  const { loadConfig } = await import('../src/core/config.js');
  const { createApp } = await import('../src/core/credentials/apps.js');
  const { createPlatform } = await import('../src/platform.js');
  const { buildServer } = await import('../src/server.js');
  const { createTenant } = await import('../src/services/accounts/index.js');
  const config = loadConfig({ MENHU_DATA: mkdtempSync(join(tmpdir(), 'kp-')), LOG_LEVEL: process.env.LOGL ?? 'info' }, { port: 0, jobConcurrency: 0 });
  const ctx = await createPlatform(config);
  const app = await buildServer(ctx);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const t = await createTenant(ctx, 'b');
  const a = await createApp(ctx, { tenantId: Number(t.id), name: 'b', services: ['native'], rateLimit: 1_000_000 });
  const { ensureLink } = await import('../src/services/links/index.js');
  const { link } = await ensureLink(ctx, { tenantId: Number(t.id), kind: 'url', targetRef: 'bench', url: 'https://example.com/landing' });
  await app.inject({ url: `/s/${link.code}` });
  const body = JSON.parse((await app.inject({ url: PATH, headers: { authorization: `Bearer ${a.key}.${a.secret}` } })).body);
  const Fastify = (await import('fastify')).default;
  const bare = Fastify({ logger: false }); bare.get(PATH, async () => body); await bare.listen({ host: '127.0.0.1', port: 0 });
  const s = new Session(); s.connect();
  process.on('message', async (m: any) => {
    if (m === 'cpu') process.send!({ cpu: process.cpuUsage() });
    if (m === 'start') { await s.post('Profiler.enable'); await s.post('Profiler.start'); process.send!({ started: 1 }); }
    if (m === 'stop') { const { profile } = await s.post('Profiler.stop'); writeFileSync(process.env.PROF_OUT ?? '/tmp/k.cpuprofile', JSON.stringify(profile)); process.send!({ stopped: 1 }); }
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ scan: `/s/${link.code}`, port: process.env.BARE ? (bare.server.address() as any).port : (app.server.address() as any).port, key: a.key, secret: a.secret });
} else {
  const dur = Number(process.env.DUR ?? 5);
  const child = fork(new URL(import.meta.url).pathname, ['--serve'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const r: any = await new Promise((res) => child.once('message', res));
  const ask = (m: string, k: string) => new Promise<any>((res) => { const on = (x: any) => { if (x[k] !== undefined) { child.off('message', on); res(x[k]); } }; child.on('message', on); child.send(m); });
  let n = 0;
  const sign = () => { const timestamp = String(Math.floor(Date.now() / 1000)); const nonce = `kp-${process.pid}-${(n++).toString(36).padStart(10, '0')}`;
    return { 'x-menhu-key': r.key, 'x-menhu-timestamp': timestamp, 'x-menhu-nonce': nonce, 'x-menhu-signature': hmacSign({ method: 'GET', path: PATH, query: '', timestamp, nonce, body: '' }, r.secret) }; };
  const pool = Array.from({ length: (dur + 2) * 25000 }, sign); let i = 0;
  const shoot = (d: number) => new Promise<any>((ok) => autocannon({ url: `http://127.0.0.1:${r.port}`, connections: 10, duration: d, requests: [{ method: 'GET', path: process.env.KSCAN ? r.scan : PATH, setupRequest: (q: any) => ({ ...q, headers: process.env.KSCAN ? { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X)' } : pool[i++] ?? sign() }) }] }, (e: any, x: any) => ok(x)));
  await shoot(2);
  if (process.env.PROF) await ask('start', 'started');
  const c0 = (await ask('cpu', 'cpu')); const c0v = c0.user + c0.system;
  const res = await shoot(dur);
  const c1 = (await ask('cpu', 'cpu')); const c1v = c1.user + c1.system;
  if (process.env.PROF) await ask('stop', 'stopped');
  console.log('menhu', Math.round(res.requests.average), 'req/s', ((c1v - c0v) / (res.requests.average * dur)).toFixed(0), 'µs CPU/req', 'non2xx', res.non2xx);
  child.disconnect();
}
