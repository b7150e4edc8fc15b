/**
 * Mixed load (issue 9): scans 80 %, short-link creates 8 %, ledger transfers 6 %, BQP queries 6 %,
 * from concurrent clients for a fixed time, against real `menhu serve` processes on loopback:
 *   embedded — one server, SQLite, in-process limits;
 *   scaled   — two servers and a worker on PostgreSQL + Redis, requests alternating between servers.
 * Reports throughput, p50/p99 latency and error rate per request kind, and a baseline measured in
 * the same run on the same servers (GET /healthz only, same clients and time).
 *
 *   node --import tsx bench/mixed.ts [seconds=60] [clients=32] [profiles=embedded,scaled]
 * scaled needs BENCH_DATABASE_URL (or TEST_DATABASE_URL: a PostgreSQL server where a database may
 * be created) and REDIS_URL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { pino } from 'pino';
import { loadConfig } from '../src/core/config.js';
import type { Ctx } from '../src/core/context.js';
import { createApp } from '../src/core/credentials/apps.js';
import { closePlatform, createPlatform } from '../src/platform.js';
import { createTenant, getDeveloper } from '../src/services/accounts/index.js';
import { ensureLink } from '../src/services/links/index.js';
import { developerAccount, fund } from '../src/services/ledger/index.js';
import { menhuEnv, startServe, startWorker, testMasterKey, type Proc } from '../test/procs.js';

const SECONDS = Number(process.argv[2] ?? 60);
const CLIENTS = Number(process.argv[3] ?? 32);
const PROFILES = (process.argv[4] ?? 'embedded,scaled').split(',');
const KINDS = ['scan', 'create', 'transfer', 'query'] as const;
type Kind = (typeof KINDS)[number];
const WEIGHTS: [Kind, number][] = [
  ['scan', 0.8],
  ['create', 0.08],
  ['transfer', 0.06],
  ['query', 0.06],
];

interface Stats {
  lat: number[];
  errors: number;
  statuses: Map<string, number>;
}

function pick(): Kind {
  let r = Math.random();
  for (const [k, w] of WEIGHTS) if ((r -= w) < 0) return k;
  return 'scan';
}

const pct = (s: number[], p: number) => (s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN);

async function setup(ctx: Ctx, url: string) {
  const t = await createTenant(ctx, 'bench');
  const tenantId = Number(t.id);
  const native = await createApp(ctx, { tenantId, name: 'bench native', services: ['native'] });
  const bqp = await createApp(ctx, { tenantId, name: 'bench bqp', services: ['bqp'] });
  const codes: string[] = [];
  for (let i = 0; i < 200; i++) codes.push((await ensureLink(ctx, { tenantId, kind: 'url', targetRef: `bench-${i}`, url: `https://example.com/${i}` })).link.code);
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) =>
    (await (await fetch(`${url}/v1${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })).json()) as any;
  const reg = await post('/users/reg/', { username: 'bencher', password: 'pw-bencher' });
  if (reg.errcode !== 0) throw new Error(`ulord register: ${JSON.stringify(reg)}`);
  const token = (await post('/users/login/', { username: 'bencher', password: 'pw-bencher' })).result.token as string;
  await post('/app/add/', { appname: 'bench', appdes: 'bench' }, { authorization: `Bearer ${token}` });
  const appkey = (await post('/app/list/', {}, { authorization: `Bearer ${token}` })).result[0].appkey as string;
  const wallets = Array.from({ length: 16 }, (_, i) => `w${i}`);
  for (const w of wallets) await post('/transactions/createwallet/', { username: w, pay_password: '123456' }, { appkey });
  await fund(ctx, await developerAccount(ctx, (await getDeveloper(ctx, reg.result.id))!), '10000000');
  return { native, bqp, codes, appkey, wallets };
}

type Fixture = Awaited<ReturnType<typeof setup>>;

function request(kind: Kind | 'health', base: string, f: Fixture, n: number): Promise<Response> {
  const t = { signal: AbortSignal.timeout(10_000) };
  switch (kind) {
    case 'health':
      return fetch(`${base}/healthz`, t);
    case 'scan':
      return fetch(`${base}/s/${f.codes[n % f.codes.length]}`, { ...t, redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148' } });
    case 'create':
      return fetch(`${base}/rest/v1/links`, {
        ...t,
        method: 'POST',
        headers: { authorization: `Bearer ${f.native.key}.${f.native.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: `https://example.com/new/${randomBytes(6).toString('hex')}` }),
      });
    case 'transfer':
      return fetch(`${base}/v1/transactions/paytouser/`, {
        ...t,
        method: 'POST',
        headers: { 'content-type': 'application/json', appkey: f.appkey },
        body: JSON.stringify({ is_developer: true, recv_user: f.wallets[n % f.wallets.length], amount: '1' }),
      });
    case 'query':
      return fetch(`${base}/api/Store.query?res=id,name&pagesz=20`, { ...t, headers: { authorization: `Basic ${Buffer.from(`${f.bqp.key}:${f.bqp.secret}`).toString('base64')}` } });
  }
}

/** Whether an answer is a success of its kind (each dialect says success its own way). */
function good(kind: Kind | 'health', status: number, text: string): boolean {
  switch (kind) {
    case 'health':
      return status === 200;
    case 'scan':
      return status === 302;
    case 'create':
      return status === 201;
    case 'transfer':
      return status === 200 && text.includes('"errcode":0');
    case 'query':
      return status === 200 && text.startsWith('[0,');
  }
}

async function drive(bases: string[], f: Fixture, seconds: number, mix: boolean) {
  const stats = new Map<string, Stats>();
  const st = (k: string) => {
    let s = stats.get(k);
    if (!s) stats.set(k, (s = { lat: [], errors: 0, statuses: new Map() }));
    return s;
  };
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < end) {
        const i = n++;
        const kind = mix ? pick() : 'health';
        const s = st(kind);
        const a = performance.now();
        let label: string;
        try {
          const r = await request(kind, bases[i % bases.length], f, i);
          const text = await r.text();
          label = String(r.status);
          if (!good(kind, r.status, text)) {
            s.errors++;
            label += ` ${text.slice(0, 60)}`;
          }
        } catch (e) {
          s.errors++;
          label = (e as Error).name;
        }
        s.lat.push(performance.now() - a);
        s.statuses.set(label, (s.statuses.get(label) ?? 0) + 1);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const rows = [...stats].map(([k, s]) => {
    s.lat.sort((x, y) => x - y);
    return { kind: k, n: s.lat.length, rps: s.lat.length / secs, p50: pct(s.lat, 50), p99: pct(s.lat, 99), errRate: s.errors / Math.max(1, s.lat.length), errors: [...s.statuses].filter(([l]) => !/^(200|201|302)$/.test(l)) };
  });
  const total = rows.reduce((x, r) => x + r.n, 0);
  return { rows, rps: total / secs };
}

async function freshPg(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL;
  if (!base) throw new Error('the scaled profile needs BENCH_DATABASE_URL or TEST_DATABASE_URL');
  const name = `menhu_bench_mixed_${randomBytes(4).toString('hex')}`;
  const c = new pg.Client({ connectionString: base });
  await c.connect();
  await c.query(`create database ${name}`);
  await c.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const d = new pg.Client({ connectionString: base });
      await d.connect();
      await d.query(`drop database if exists ${name} with (force)`);
      await d.end();
    },
  };
}

async function profile(name: string) {
  const dir = mkdtempSync(join(tmpdir(), `menhu-bench-mixed-${name}-`));
  const procs: Proc[] = [];
  const db = name === 'scaled' ? await freshPg() : null;
  if (name === 'scaled' && !process.env.REDIS_URL) throw new Error('the scaled profile needs REDIS_URL');
  const env = menhuEnv({
    MENHU_DATA: dir,
    MENHU_MASTER_KEY: testMasterKey(),
    DATABASE_URL: db?.url ?? '',
    REDIS_URL: name === 'scaled' ? process.env.REDIS_URL! : '',
    MENHU_REDIS_PREFIX: `bench-${randomBytes(4).toString('hex')}:`,
    LOG_LEVEL: 'error',
  });
  let ctx: Ctx | null = null;
  try {
    const servers = [await startServe(env)];
    procs.push(servers[0]);
    if (name === 'scaled') {
      const s2 = await startServe(env);
      procs.push(s2, await startWorker(env));
      servers.push(s2);
    }
    ctx = await createPlatform(loadConfig(env, { port: 0, jobConcurrency: 0 }), { log: pino({ level: 'silent' }) });
    const f = await setup(ctx, servers[0].url);
    const bases = servers.map((s) => s.url);
    await drive(bases, f, 3, true); // warm-up
    const baseline = await drive(bases, f, Math.min(10, SECONDS), false);
    const mixed = await drive(bases, f, SECONDS, true);
    return { name, servers: servers.length, baseline, mixed };
  } finally {
    if (ctx) await closePlatform(ctx);
    for (const p of procs) await p.stop();
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const f1 = (x: number) => x.toFixed(1);
console.log(`mixed load: ${SECONDS} s, ${CLIENTS} clients, ${cpus().length} cores, Node ${process.versions.node}, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}, ${new Date().toISOString()}`);
for (const p of PROFILES) {
  const r = await profile(p);
  const h = r.baseline.rows[0];
  console.log(`\n## ${r.name} (${r.servers} server${r.servers > 1 ? 's' : ''})`);
  console.log(`baseline GET /healthz: ${f1(r.baseline.rps)} req/s, p50 ${f1(h.p50)} ms, p99 ${f1(h.p99)} ms`);
  console.log(`mixed: ${f1(r.mixed.rps)} req/s (${(r.mixed.rps / r.baseline.rps).toFixed(2)}x the baseline)`);
  console.log('| kind | requests | req/s | p50 ms | p99 ms | error rate | errors |');
  console.log('|---|---|---|---|---|---|---|');
  for (const k of KINDS) {
    const x = r.mixed.rows.find((y) => y.kind === k);
    if (!x) continue;
    console.log(`| ${k} | ${x.n} | ${f1(x.rps)} | ${f1(x.p50)} | ${f1(x.p99)} | ${(x.errRate * 100).toFixed(2)} % | ${x.errors.map(([l, c]) => `${l}×${c}`).join('; ') || '—'} |`);
  }
}
