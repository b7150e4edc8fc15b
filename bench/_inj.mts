import { mkdtempSync } from 'node:fs'; import { tmpdir } from 'node:os'; import { join } from 'node:path';
import Fastify from 'fastify';
import { loadConfig } from '../src/core/config.js';
import { createApp } from '../src/core/credentials/apps.js';
import { hmacSign } from '../src/core/credentials/schemes.js';
import { createPlatform } from '../src/platform.js';
import { buildServer } from '../src/server.js';
import { createTenant, getTenant } from '../src/services/accounts/index.js';
const config = loadConfig({ MENHU_DATA: mkdtempSync(join(tmpdir(), 'kp-')), LOG_LEVEL: process.env.LOGL ?? 'info' }, { port: 0, jobConcurrency: 0 });
const ctx = await createPlatform(config, { log: (await import('pino')).pino({ level: 'warn' }) });
const app = await buildServer(ctx, process.env.NOLOG ? { logger: false } : { logStream: { write() {} } as any });
const t = await createTenant(ctx, 'b');
const a = await createApp(ctx, { tenantId: Number(t.id), name: 'b', services: ['native'], rateLimit: 100_000_000 });
let body: any;
app.get('/x0', async () => body);
app.get('/x2', async () => { for (let i = 0; i < 10; i++) await Promise.resolve(); return body; });
const { CompiledQuery } = await import('kysely');
const cq = ctx.db.kysely.selectFrom('tenants').selectAll().where('id', '=', Number(t.id)).compile();
app.get('/x3', async () => { await ctx.db.kysely.executeQuery(cq); return body; });
app.get('/x1', async () => { await getTenant(ctx, Number(t.id)); return body; });
body = JSON.parse((await app.inject({ url: '/rest/v1/me', headers: { authorization: `Bearer ${a.key}.${a.secret}` } })).body);
const bare = Fastify({ logger: false }); bare.get('/x0', async () => body); await bare.ready();
let n = 0;
const sign = (path: string) => { const timestamp = String(Math.floor(Date.now() / 1000)); const nonce = `kp-${process.pid}-${(n++).toString(36).padStart(10, '0')}`;
  return { 'x-menhu-key': a.key, 'x-menhu-timestamp': timestamp, 'x-menhu-nonce': nonce, 'x-menhu-signature': hmacSign({ method: 'GET', path, query: '', timestamp, nonce, body: '' }, a.secret) }; };
const N = Number(process.env.N ?? 5000);
const cases: [string, any, string, () => Record<string, string>][] = [
  ['bare /x0', bare, '/x0', () => ({})],
  ['menhu /x0 (root hooks)', app, '/x0', () => ({})],
  ['menhu /x1 (+getTenant)', app, '/x1', () => ({})],
  ['menhu /x2 (10 awaits)', app, '/x2', () => ({})],
  ['menhu /x3 (compiled q)', app, '/x3', () => ({})],
  ['menhu /me bearer', app, '/rest/v1/me', () => ({ authorization: `Bearer ${a.key}.${a.secret}` })],
  ['menhu /me hmac', app, '/rest/v1/me', () => sign('/rest/v1/me')],
];
const res: Record<string, number[]> = {};
for (let r = 0; r < 5; r++) { const c0 = process.cpuUsage(); for (let i = 0; i < N; i++) await getTenant(ctx, Number(t.id)); const c = process.cpuUsage(c0); (res['getTenant loop'] ??= []).push((c.user + c.system) / N); }
for (let round = 0; round < Number(process.env.ROUNDS ?? 5); round++) for (const [name, srv, url, h] of cases) {
  const hs = Array.from({ length: N }, h);
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) { const r = await srv.inject({ method: 'GET', url, headers: hs[i] }); if (r.statusCode !== 200) throw new Error(name + ' ' + r.statusCode + r.body); }
  const c = process.cpuUsage(c0);
  (res[name] ??= []).push((c.user + c.system) / N);
}
if (process.env.PROFCASE) {
  const { Session } = await import('node:inspector/promises'); const { writeFileSync } = await import('node:fs');
  const c = cases.find((x) => x[0].includes(process.env.PROFCASE!))!; const hs = Array.from({ length: 20000 }, c[3]);
  const s = new Session(); s.connect(); await s.post('Profiler.enable'); await s.post('Profiler.setSamplingInterval', { interval: 50 }); await s.post('Profiler.start');
  for (let i = 0; i < 20000; i++) await c[1].inject({ method: 'GET', url: c[2], headers: hs[i] });
  const { profile } = await s.post('Profiler.stop'); writeFileSync('/tmp/inj.cpuprofile', JSON.stringify(profile));
}
for (const [k, v] of Object.entries(res)) console.log(k.padEnd(26), 'min', Math.min(...v).toFixed(1));
process.exit(0);
