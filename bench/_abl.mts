import { fork } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { hmacSign } from '../src/core/credentials/schemes.js';
if (process.argv[2] === '--serve') {
  const Fastify = (await import('fastify')).default;
  const { loadConfig } = await import('../src/core/config.js');
  const { createApp } = await import('../src/core/credentials/apps.js');
  const { createPlatform } = await import('../src/platform.js');
  const { buildServer } = await import('../src/server.js');
  const { createTenant, getTenant } = await import('../src/services/accounts/index.js');
  const config = loadConfig({ MENHU_DATA: mkdtempSync(join(tmpdir(), 'kp-')), LOG_LEVEL: process.env.LOGL ?? 'info' }, { port: 0, jobConcurrency: 0 });
  const ctx = await createPlatform(config);
  const app = await buildServer(ctx);
  const t = await createTenant(ctx, 'b');
  const a = await createApp(ctx, { tenantId: Number(t.id), name: 'b', services: ['native'], rateLimit: 1_000_000 });
  let body: any;
  app.get('/x0', async () => body);
  app.get('/x1', async () => { await getTenant(ctx, Number(t.id)); return body; });
  body = JSON.parse((await app.inject({ url: '/rest/v1/me', headers: { authorization: `Bearer ${a.key}.${a.secret}` } })).body);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const bare = Fastify({ logger: false }); bare.get('/x0', async () => body); await bare.listen({ host: '127.0.0.1', port: 0 });
  process.on('message', (m: any) => { if (m === 'cpu') process.send!({ cpu: process.cpuUsage() }); });
  process.on('disconnect', () => process.exit(0));
  process.send!({ port: (app.server.address() as any).port, bare: (bare.server.address() as any).port, key: a.key, secret: a.secret });
} else {
  const dur = Number(process.env.DUR ?? 3);
  const child = fork(new URL(import.meta.url).pathname, ['--serve'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const r: any = await new Promise((res) => child.once('message', res));
  const cpu = () => new Promise<number>((res) => { const on = (x: any) => { if (x.cpu) { child.off('message', on); res(x.cpu.user + x.cpu.system); } }; child.on('message', on); child.send('cpu'); });
  let n = 0;
  const sign = (path: string) => { const timestamp = String(Math.floor(Date.now() / 1000)); const nonce = `kp-${process.pid}-${(n++).toString(36).padStart(10, '0')}`;
    return { 'x-menhu-key': r.key, 'x-menhu-timestamp': timestamp, 'x-menhu-nonce': nonce, 'x-menhu-signature': hmacSign({ method: 'GET', path, query: '', timestamp, nonce, body: '' }, r.secret) }; };
  const pool = Array.from({ length: 6 * dur * 12000 }, () => sign('/rest/v1/me')); let i = 0;
  const cases: [string, number, string, () => Record<string, string>][] = [
    ['bare /x0', r.bare, '/x0', () => ({})],
    ['menhu /x0 (root hooks)', r.port, '/x0', () => ({})],
    ['menhu /x1 (+getTenant)', r.port, '/x1', () => ({})],
    ['menhu /me bearer', r.port, '/rest/v1/me', () => ({ authorization: `Bearer ${r.key}.${r.secret}` })],
    ['menhu /me hmac', r.port, '/rest/v1/me', () => pool[i++] ?? sign('/rest/v1/me')],
  ];
  const res: Record<string, number[]> = {};
  for (let round = 0; round < Number(process.env.ROUNDS ?? 3); round++) for (const [name, port, path, h] of cases) {
    const c0 = await cpu();
    const x: any = await new Promise((ok) => autocannon({ url: `http://127.0.0.1:${port}`, connections: 10, duration: dur, requests: [{ method: 'GET', path, setupRequest: (q: any) => ({ ...q, headers: h() }) }] }, (e: any, v: any) => ok(v)));
    const c1 = await cpu();
    if (x.non2xx) console.log(name, 'non2xx', x.non2xx);
    (res[name] ??= []).push((c1 - c0) / (x.requests.average * dur));
  }
  for (const [k, v] of Object.entries(res)) console.log(k.padEnd(26), v.map((z) => z.toFixed(0)).join(' '), 'µs CPU/req; median', [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)].toFixed(0));
  child.disconnect();
}
