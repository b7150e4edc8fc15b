/**
 * Durable ledger transfers per second, end to end over HTTP: autocannon against the real server
 * (`menhu serve` as a child process) on loopback, through the Ulord dialect's paytouser with an
 * idempotency key per request and the pay password checked. A transfer counts when its answer says
 * errcode 0; it is then committed (SQLite WAL synchronous=FULL, or PostgreSQL synchronous_commit=on).
 *
 * Runs, each for DURATION seconds with CONNECTIONS connections:
 *   baseline read   POST /v1/transactions/balance/ (same parsing, auth and pay-password check, no write)
 *   baseline serial transfers over 1 connection: one durable commit per transfer, nothing to group
 *   uniform         random payer and payee among WALLETS wallets
 *   hot             every transfer from one wallet
 * and finally checks the invariants with `menhu ledger audit`.
 *
 *   node --import tsx bench/ledger.ts                      # SQLite
 *   BENCH_PG_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres node --import tsx bench/ledger.ts   # PostgreSQL (a fresh database)
 *   env: DURATION (s, default 10), CONNECTIONS (default 50), WALLETS (default 200),
 *        BENCH_NODE_ARGS (extra node flags for the server, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`)
 *
 * CPU per operation is measured for the server process and, on PostgreSQL, for the backends of the
 * bench database (utime + stime from /proc, so Linux only): on a shared machine throughput swings
 * with the load, CPU per transfer much less.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import pg from 'pg';
import { cpuOf } from './lib.js';

// autocannon ships no types
const autocannon = createRequire(import.meta.url)('autocannon') as (o: object) => Promise<{ latency: { p50: number; p99: number } }>;

const DURATION = Number(process.env.DURATION ?? 10);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 50);
const WALLETS = Number(process.env.WALLETS ?? 200);
const root = new URL('..', import.meta.url).pathname;
const CLI = ['--import', 'tsx', join(root, 'src/cli/main.ts')];

const port = await new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port;
    s.close(() => resolve(p));
  });
});
const url = `http://127.0.0.1:${port}`;
const dataDir = mkdtempSync(join(tmpdir(), 'menhu-bench-ledger-'));
let dbName = '';
let databaseUrl = '';
if (process.env.BENCH_PG_URL) {
  dbName = `menhu_bench_ledger_${randomBytes(4).toString('hex')}`;
  const c = new pg.Client({ connectionString: process.env.BENCH_PG_URL });
  await c.connect();
  await c.query(`create database ${dbName}`);
  await c.end();
  const u = new URL(process.env.BENCH_PG_URL);
  u.pathname = `/${dbName}`;
  databaseUrl = u.toString();
}
const env = { ...process.env, MENHU_DATA: dataDir, MENHU_MASTER_KEY: randomBytes(32).toString('hex'), DATABASE_URL: databaseUrl, LOG_LEVEL: 'error', MENHU_JOB_CONCURRENCY: '0', PORT: String(port) };
let child: ChildProcess | null = null;

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const r = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return (await r.json()) as { errcode: number; result?: any };
}
function cli(...args: string[]): any {
  const r = spawnSync(process.execPath, [...CLI, ...args], { cwd: root, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout);
}

let pgAdmin: pg.Client | null = null;
/** CPU seconds so far of each backend of the bench database (a backend the pool closes drops out). */
async function pgCpu(): Promise<Map<number, number>> {
  if (!pgAdmin) return new Map();
  const r = await pgAdmin.query('select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [dbName]);
  return new Map(r.rows.map((row: { pid: number }) => [row.pid, cpuOf(row.pid)]));
}
/** CPU seconds the backends alive at the end used since `before` (a backend that ended meanwhile is not counted). */
const pgCpuSince = (before: Map<number, number>, after: Map<number, number>): number => [...after].reduce((s, [pid, t]) => s + t - (before.get(pid) ?? 0), 0);

interface Run {
  name: string;
  /** CPU ms per answered request: server, PostgreSQL backends */
  serverMs: number;
  pgMs: number;
  ok: number;
  refused: number;
  rps: number;
  p50: number;
  p99: number;
}

async function load(name: string, connections: number, make: (i: number) => { path: string; body: unknown; key?: string }, appkey: string): Promise<Run> {
  let i = 0;
  let ok = 0;
  let refused = 0;
  const cpu0 = cpuOf(child!.pid!);
  const pg0 = await pgCpu();
  const r = await autocannon({
    url,
    connections,
    duration: DURATION,
    requests: [
      {
        method: 'POST',
        setupRequest: (req: any) => {
          const m = make(i++);
          return { ...req, path: m.path, body: JSON.stringify(m.body), headers: { 'content-type': 'application/json', appkey, ...(m.key ? { 'idempotency-key': m.key } : {}) } };
        },
        onResponse: (_status: number, body: string) => {
          if (body.startsWith('{"errcode":0')) ok++;
          else refused++;
        },
      },
    ],
  });
  const n = Math.max(1, ok + refused);
  const serverMs = ((cpuOf(child!.pid!) - cpu0) * 1000) / n;
  const pgMs = (pgCpuSince(pg0, await pgCpu()) * 1000) / n;
  return { name, ok, refused, rps: ok / DURATION, p50: r.latency.p50, p99: r.latency.p99, serverMs, pgMs };
}

try {
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  child = spawn(process.execPath, [...nodeArgs, ...CLI, 'serve'], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
  for (let k = 0; ; k++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      /* starting */
    }
    if (k > 300) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  await post('/v1/users/reg/', { username: 'bench', password: 'benchpw' });
  const token = (await post('/v1/users/login/', { username: 'bench', password: 'benchpw' })).result.token;
  await post('/v1/app/add/', { appname: 'bench' }, { authorization: `Bearer ${token}` });
  const appkey: string = (await post('/v1/app/list/', {}, { authorization: `Bearer ${token}` })).result[0].appkey;
  cli('ledger', 'fund', 'bench', String(WALLETS * 1000 + 100000));
  const wallets = Array.from({ length: WALLETS }, (_, k) => `w${k}`);
  for (const w of wallets) {
    await post('/v1/transactions/createwallet/', { username: w, pay_password: `pw-${w}` }, { appkey });
    await post('/v1/transactions/paytouser/', { is_developer: true, recv_user: w, amount: '1000' }, { appkey });
    await post('/v1/transactions/balance/', { username: w, pay_password: `pw-${w}` }, { appkey }); // first scrypt check
  }
  await post('/v1/transactions/createwallet/', { username: 'hot', pay_password: 'pw-hot' }, { appkey });
  await post('/v1/transactions/paytouser/', { is_developer: true, recv_user: 'hot', amount: '100000' }, { appkey });

  if (databaseUrl) {
    pgAdmin = new pg.Client({ connectionString: process.env.BENCH_PG_URL });
    await pgAdmin.connect();
  }
  const load0 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  const run = Date.now().toString(36);
  const pick = () => Math.floor(Math.random() * WALLETS);
  const pay = (from: string, i: number, tag: string) => {
    let to = wallets[pick()];
    if (to === from) to = wallets[(wallets.indexOf(to) + 1) % WALLETS];
    return { path: '/v1/transactions/paytouser/', body: { send_user: from, pay_password: `pw-${from}`, recv_user: to, amount: '0.00000001' }, key: `${run}-${tag}-${i}` };
  };
  const results: Run[] = [];
  results.push(await load('baseline: balance read', CONNECTIONS, () => {
    const w = wallets[pick()];
    return { path: '/v1/transactions/balance/', body: { username: w, pay_password: `pw-${w}` } };
  }, appkey));
  results.push(await load('baseline: serial transfers (1 connection)', 1, (i) => pay(wallets[pick()], i, 's'), appkey));
  results.push(await load(`uniform transfers (${WALLETS} wallets)`, CONNECTIONS, (i) => pay(wallets[pick()], i, 'u'), appkey));
  results.push(await load('hot wallet (all from one)', CONNECTIONS, (i) => pay('hot', i, 'h'), appkey));

  const load1 = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  await pgAdmin?.end();
  pgAdmin = null;
  child.kill('SIGTERM');
  await new Promise((r) => child!.once('exit', r));
  child = null;
  const audit = cli('ledger', 'audit');

  const serial = results[1].rps;
  console.log(`\nmenhu ledger benchmark — ${databaseUrl ? 'PostgreSQL' : 'SQLite (WAL, synchronous=FULL)'}, ${CONNECTIONS} connections, ${DURATION} s per run, Node ${process.versions.node}`);
  console.log(`load average before ${load0}, after ${load1}`);
  const read = results[0].rps;
  console.log('| run | durable transfers/s (errcode 0) | refused | p50 ms | p99 ms | vs serial | vs read | server CPU ms/req | PostgreSQL CPU ms/req |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of results) console.log(`| ${r.name} | ${r.rps.toFixed(0)} | ${r.refused} | ${r.p50} | ${r.p99} | ${(r.rps / serial).toFixed(1)}x | ${(r.rps / read).toFixed(2)} | ${r.serverMs.toFixed(3)} | ${databaseUrl ? r.pgMs.toFixed(3) : '-'} |`);
  console.log(`\ngoals: uniform >= 2500/s ${results[2].rps >= 2500 ? 'met' : 'NOT met'}; hot >= 500/s ${results[3].rps >= 500 ? 'met' : 'NOT met'}`);
  console.log(`audit after the runs: ok=${audit.ok} transfers=${audit.transfers} issued=${audit.issued} held=${audit.held}`);
} finally {
  await pgAdmin?.end();
  child?.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
  if (dbName) {
    const c = new pg.Client({ connectionString: process.env.BENCH_PG_URL });
    await c.connect();
    await c.query(`drop database if exists ${dbName} with (force)`);
    await c.end();
  }
}
