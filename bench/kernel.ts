/**
 * Kernel benchmark: a signed native request (HMAC-SHA256 verification + nonce + per-app rate limit
 * + one database read: GET /rest/v1/me) against bare Fastify returning the same JSON, in the same
 * run, with autocannon on loopback. Both targets get the same signed requests, so the client does
 * the same work for each. Goal: menhu >= 0.7 x bare Fastify.
 *
 *   npm run bench -- kernel [--duration 5] [--connections 10] [--rounds 5] [--log-level info]
 *                           [--pg] [--redis] [--bearer] [--only menhu|bare]
 * --pg uses DATABASE_URL (PostgreSQL), --redis uses REDIS_URL for limits and nonces,
 * --bearer authenticates with Authorization: Bearer <key>.<secret> instead of HMAC; --only loads one
 * target alone (for profiling with BENCH_PROF; no ratio).
 *
 * The servers run in a child process (this file with --serve), autocannon in this one. On a 2-core
 * machine, `BENCH_SERVER_CPUS=1 taskset -c 0 npm run bench -- kernel` keeps them on separate cores.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { pino } from 'pino';
import { hmacSign } from '../src/core/credentials/schemes.js';
import { ensureBuilt, server } from './lib.js';

const PATH = '/rest/v1/me';

interface Ready {
  menhu: number;
  bare: number;
  key: string;
  secret: string;
  dialect: string;
  limits: string;
}

/** Child: menhu and bare Fastify on two loopback ports. */
async function serve(opts: { pg: boolean; redis: boolean; logLevel: string }): Promise<void> {
  // menhu as `menhu serve` runs it: from dist/ (BENCH_SRC=1: the sources through tsx)
  const { loadConfig } = await server<typeof import('../src/core/config.js')>('core/config.js');
  const { createApp } = await server<typeof import('../src/core/credentials/apps.js')>('core/credentials/apps.js');
  const { closePlatform, createPlatform } = await server<typeof import('../src/platform.js')>('platform.js');
  const { buildServer } = await server<typeof import('../src/server.js')>('server.js');
  const { createTenant } = await server<typeof import('../src/services/accounts/index.js')>('services/accounts/index.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'menhu-bench-'));
  const config = loadConfig(
    {
      MENHU_DATA: dataDir,
      DATABASE_URL: opts.pg ? (process.env.DATABASE_URL ?? '') : '',
      REDIS_URL: opts.redis ? (process.env.REDIS_URL ?? '') : '',
      LOG_LEVEL: opts.logLevel,
    },
    { port: 0, jobConcurrency: 0 },
  );
  if (opts.pg && !config.databaseUrl) throw new Error('--pg needs DATABASE_URL');
  if (opts.redis && !config.redisUrl) throw new Error('--redis needs REDIS_URL');
  // the platform logs to stdout like `menhu serve` does; stdout of this child is /dev/null
  const ctx = await createPlatform(config);
  const app = await buildServer(ctx);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const tenant = await createTenant(ctx, 'bench');
  // a rate limit that is checked on every request but never reached
  const a = await createApp(ctx, { tenantId: Number(tenant.id), name: 'bench', services: ['native'], rateLimit: 1_000_000 });

  // bare Fastify answers the same JSON that menhu answers
  const sample = await app.inject({ method: 'GET', url: PATH, headers: { authorization: `Bearer ${a.key}.${a.secret}` } });
  if (sample.statusCode !== 200) throw new Error(`menhu answered ${sample.statusCode}: ${sample.body}`);
  const body = JSON.parse(sample.body) as unknown;
  const bare = Fastify({ logger: false });
  bare.get(PATH, async () => body);
  await bare.listen({ host: '127.0.0.1', port: 0 });

  const port = (s: typeof app.server) => (s.address() as { port: number }).port;
  const ready: Ready = { menhu: port(app.server), bare: port(bare.server), key: a.key, secret: a.secret, dialect: ctx.db.dialect, limits: ctx.limits.mode() };
  process.send!(ready);
  // the parent asks for this process' CPU time around each run
  process.on('message', (m) => {
    if (m === 'cpu') process.send!({ cpu: process.cpuUsage() });
  });
  process.on('disconnect', () => {
    void (async () => {
      await bare.close();
      await app.close();
      await closePlatform(ctx);
      rmSync(dataDir, { recursive: true, force: true });
      process.exit(0);
    })();
  });
}

interface Figures {
  rps: number;
  /** server CPU microseconds per request */
  cpuUs: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}

// BENCH_RATE: a fixed request rate for both (CPU per request compared at equal load), else as fast as they go
const RATE = Number(process.env.BENCH_RATE ?? 0);

let n = 0; // nonces are unique across all runs (the server remembers them)

function sign(r: Ready): Record<string, string> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const nonce = `bench-${process.pid}-${(n++).toString(36).padStart(10, '0')}`;
  const signature = hmacSign({ method: 'GET', path: PATH, query: '', timestamp, nonce, body: '' }, r.secret);
  return { 'x-menhu-key': r.key, 'x-menhu-timestamp': timestamp, 'x-menhu-nonce': nonce, 'x-menhu-signature': signature };
}

function shoot(port: number, r: Ready, o: { duration: number; connections: number; bearer: boolean }): Promise<Figures> {
  // Requests are signed before the run, so the client's HMAC work does not compete with the
  // servers for the CPU (signing goes on, on the fly, should the pool run out).
  const pool = o.bearer ? [] : Array.from({ length: Math.min(o.duration * 40_000, 800_000) }, () => sign(r));
  let next = 0;
  const setupRequest = (req: autocannon.Request): autocannon.Request => {
    if (o.bearer) return { ...req, headers: { authorization: `Bearer ${r.key}.${r.secret}` } };
    return { ...req, headers: next < pool.length ? pool[next++] : sign(r) };
  };
  return new Promise((resolve, reject) => {
    autocannon(
      { url: `http://127.0.0.1:${port}`, connections: o.connections, duration: o.duration, requests: [{ method: 'GET', path: PATH, setupRequest }], ...(RATE ? { overallRate: RATE } : {}) },
      (err: Error | null, res: autocannon.Result) => {
        if (err) return reject(err);
        resolve({ rps: res.requests.average, cpuUs: 0, p50: res.latency.p50, p99: res.latency.p99, non2xx: res.non2xx, errors: res.errors + res.timeouts });
      },
    );
  });
}

function serverCpu(child: ReturnType<typeof fork>): Promise<number> {
  return new Promise((res) => {
    const on = (m: unknown) => {
      const c = (m as { cpu?: NodeJS.CpuUsage }).cpu;
      if (!c) return;
      child.off('message', on);
      res(c.user + c.system);
    };
    child.on('message', on);
    child.send('cpu');
  });
}

async function measure(child: ReturnType<typeof fork>, port: number, r: Ready, o: { duration: number; connections: number; bearer: boolean }): Promise<Figures> {
  const c0 = await serverCpu(child);
  const f = await shoot(port, r, o);
  const c1 = await serverCpu(child);
  const total = f.rps * o.duration;
  return { ...f, cpuUs: total > 0 ? (c1 - c0) / total : 0 };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export default async function run(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string', default: '5' },
      connections: { type: 'string', default: '10' },
      rounds: { type: 'string', default: '5' },
      'log-level': { type: 'string', default: 'info' },
      pg: { type: 'boolean', default: false },
      redis: { type: 'boolean', default: false },
      bearer: { type: 'boolean', default: false },
      // profiling aid: load only this target (no ratio is computed)
      only: { type: 'string' },
    },
  });
  if (v.only && v.only !== 'menhu' && v.only !== 'bare') throw new Error('--only takes menhu or bare');
  const o = { duration: Number(v.duration), connections: Number(v.connections), bearer: !!v.bearer };
  ensureBuilt();
  const nodeArgs = ['--import', 'tsx', ...(process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROF] : []), ...(process.env.BENCH_PERF ? ['--perf-basic-prof'] : [])];
  // BENCH_SERVER_CPUS pins the servers (taskset execs node in place, which keeps the IPC channel)
  const pin = process.env.BENCH_SERVER_CPUS;
  const child = fork(fileURLToPath(import.meta.url), ['--serve', JSON.stringify({ pg: v.pg, redis: v.redis, logLevel: v['log-level'] })], {
    ...(pin ? { execPath: 'taskset', execArgv: ['-c', pin, process.execPath, ...nodeArgs] } : { execArgv: nodeArgs }),
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const ready = await new Promise<Ready>((res, rej) => {
    child.once('message', (m) => res(m as Ready));
    child.once('exit', (c) => rej(new Error(`server process exited (${c})`)));
  });
  try {
    console.log(`kernel bench: GET ${PATH}, ${o.bearer ? 'bearer key' : 'HMAC-signed'}, database ${ready.dialect}, limits ${ready.limits}, log level ${v['log-level']}`);
    console.log(`${cpus().length} cpus (${cpus()[0]?.model ?? '?'}), node ${process.version}, ${o.connections} connections, ${o.duration} s per run`);
    // warm both up (JIT tiers, V8's young generation growing, caches, connection pools): a fresh
    // process needs ~10 s under load to settle (BENCH_WARMUP seconds, default 10)
    const warm = Number(process.env.BENCH_WARMUP ?? 10);
    if (v.only) {
      const port = v.only === 'menhu' ? ready.menhu : ready.bare;
      if (warm > 0) await shoot(port, ready, { ...o, duration: warm });
      for (let round = 1; round <= Number(v.rounds); round++) {
        const f = await measure(child, port, ready, o);
        console.log(`round ${round}: ${v.only} ${f.rps.toFixed(0)} req/s ${f.cpuUs.toFixed(0)} µs CPU/req p50 ${f.p50} ms p99 ${f.p99} ms`);
      }
      return;
    }
    if (warm > 0) {
      await shoot(ready.bare, ready, { ...o, duration: warm });
      await shoot(ready.menhu, ready, { ...o, duration: warm });
    }
    const rows: { round: number; bare: Figures; menhu: Figures }[] = [];
    // alternate short runs, so that load from elsewhere on the machine hits both alike
    for (let round = 1; round <= Number(v.rounds); round++) {
      const bare = await measure(child, ready.bare, ready, o);
      const menhu = await measure(child, ready.menhu, ready, o);
      if (menhu.non2xx || menhu.errors) throw new Error(`menhu answered ${menhu.non2xx} non-2xx and ${menhu.errors} errors: the run is not valid`);
      rows.push({ round, bare, menhu });
      const fmt = (f: Figures) => `${f.rps.toFixed(0).padStart(6)} req/s ${f.cpuUs.toFixed(0).padStart(4)} µs CPU/req p50 ${f.p50} ms p99 ${f.p99} ms`;
      console.log(`round ${round}: bare ${fmt(bare)} | menhu ${fmt(menhu)} | ratio ${(menhu.rps / bare.rps).toFixed(2)}`);
    }
    const sum = (f: (r: (typeof rows)[number]) => number) => rows.reduce((a, r) => a + f(r), 0);
    const ratio = sum((r) => r.menhu.rps) / sum((r) => r.bare.rps);
    const medianRatio = median(rows.map((r) => r.menhu.rps / r.bare.rps));
    const cpuRatio = median(rows.map((r) => r.bare.cpuUs)) / median(rows.map((r) => r.menhu.cpuUs));
    console.log(`throughput ratio menhu / bare Fastify: ${ratio.toFixed(2)} overall, ${medianRatio.toFixed(2)} median of rounds (goal >= 0.70)`);
    console.log(`server CPU per request: bare ${median(rows.map((r) => r.bare.cpuUs)).toFixed(0)} µs, menhu ${median(rows.map((r) => r.menhu.cpuUs)).toFixed(0)} µs -> CPU-bound ratio ${cpuRatio.toFixed(2)}`);
    console.log(`goal ${Math.min(ratio, cpuRatio) >= 0.7 ? 'MET' : 'NOT MET'} (the lower of the throughput and CPU-bound ratios)`);
  } finally {
    child.disconnect();
  }
}

if (process.argv.includes('--serve')) {
  serve(JSON.parse(process.argv[process.argv.indexOf('--serve') + 1]) as { pg: boolean; redis: boolean; logLevel: string }).catch((e) => {
    pino().error(e);
    process.exit(1);
  });
}
