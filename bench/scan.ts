/**
 * /s/<code> redirects of the real menhu server vs a bare node:http server answering the same 302,
 * each in its own child process, loaded by autocannon from this process, in the same run.
 * Checks afterwards that every answered scan was recorded (buffered writes flushed). menhu runs from
 * dist/ as `menhu serve` does (rebuilt when stale; BENCH_SRC=1 for the sources through tsx).
 *
 *   node --import tsx bench/scan.ts [seconds per server and round, default 5] [connections, default 10] [rounds, default 3]
 *
 * Each run also reports the server process' CPU per request (all its threads, /proc). On a 2-core
 * machine shared with the load generator, pin them apart for steadier figures:
 *   BENCH_SERVER_CPUS=1 taskset -c 0 node --import tsx bench/scan.ts …
 * and BENCH_RATE=8000 gives every server the same fixed rate (then compare CPU per request).
 * BENCH_WARMUP (seconds, default 10) loads each server before the measured rounds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { cpuOf, ensureBuilt, median, server, startChild } from './lib.js';

const TARGET = 'https://example.com/landing';
const UA = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1';

// ---------------------------------------------------------------------------------------------
// child side

async function serveRaw(): Promise<void> {
  const srv = createServer((_req, res) => {
    res.writeHead(302, { location: TARGET, 'cache-control': 'no-store', 'content-length': '0' });
    res.end();
  });
  srv.listen(0, '127.0.0.1', () => {
    const a = srv.address();
    console.log(JSON.stringify({ port: typeof a === 'object' && a ? a.port : 0, path: '/s/raw' }));
  });
}

async function serveFastify(): Promise<void> {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false });
  app.get('/s/:code', (_req, reply) => reply.code(302).headers({ location: TARGET, 'cache-control': 'no-store' }).send());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const a = app.server.address();
  console.log(JSON.stringify({ port: typeof a === 'object' && a ? a.port : 0, path: '/s/bare' }));
}

async function serveMenhu(): Promise<void> {
  const { loadConfig } = await server<typeof import('../src/core/config.js')>('core/config.js');
  const { createPlatform, closePlatform } = await server<typeof import('../src/platform.js')>('platform.js');
  const { buildServer } = await server<typeof import('../src/server.js')>('server.js');
  const { createTenant } = await server<typeof import('../src/services/accounts/index.js')>('services/accounts/index.js');
  const { ensureLink, flushScans } = await server<typeof import('../src/services/links/index.js')>('services/links/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'menhu-bench-'));
  const cfg = loadConfig({ ...process.env, MENHU_DATA: dir, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' }, { port: 0, jobConcurrency: 0 });
  // stdout is this child's answer channel: logs (the access line of every request at the default
  // level) go to /dev/null through the same kind of writer `menhu serve` uses on stdout
  const { pino } = await import('pino');
  const ctx = await createPlatform(cfg, { log: pino({ level: 'warn' }, pino.destination(2)) });
  const app = await buildServer(ctx, process.env.BENCH_NOLOG ? { logger: false } : { logStream: pino.destination({ dest: '/dev/null', sync: true }) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const a = app.server.address();
  const tenantId = Number((await createTenant(ctx, 'bench')).id);
  const { link } = await ensureLink(ctx, { tenantId, kind: 'url', targetRef: 'bench', url: TARGET });
  console.log(JSON.stringify({ port: typeof a === 'object' && a ? a.port : 0, path: `/s/${link.code}`, db: ctx.db.dialect }));
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'count') {
      await flushScans(ctx);
      const r = await ctx.db.kysely.selectFrom('link_scans').select((eb) => eb.fn.countAll<number>().as('n')).where('link_id', '=', link.id).executeTakeFirstOrThrow();
      console.log(JSON.stringify({ scans: Number(r.n) }));
    } else if (line === 'quit') break;
  }
  await app.close();
  await closePlatform(ctx);
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// parent side

type Kind = 'raw' | 'fastify' | 'menhu';

const start = (kind: Kind) => startChild<{ port: number; path: string }>(new URL(import.meta.url).pathname, ['--serve', kind]);

// BENCH_RATE=<req/s>: every server gets the same fixed rate (autocannon overallRate); then the
// throughput says nothing and the server CPU per request is the figure.
const RATE = Number(process.env.BENCH_RATE ?? 0);

async function load(label: string, pid: number, url: string, seconds: number, connections: number) {
  const cpu0 = cpuOf(pid);
  const r = await autocannon({ url, duration: seconds, connections, headers: { 'user-agent': UA }, ...(RATE ? { overallRate: RATE } : {}) });
  const cpuUs = ((cpuOf(pid) - cpu0) * 1e6) / Math.max(1, r.requests.total);
  const ok = r['3xx'];
  console.log(
    `  ${label.padEnd(8)} ${r.requests.average.toFixed(0).padStart(7)} req/s   ${cpuUs.toFixed(1).padStart(5)} µs server CPU/req   p50 ${r.latency.p50} ms   p99 ${r.latency.p99} ms   302s ${ok}   other ${r.errors + r.non2xx - ok}`,
  );
  return { rps: r.requests.average, cpuUs, p99: r.latency.p99, ok };
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 5);
  const connections = Number(process.argv[3] ?? 10);
  const rounds = Number(process.argv[4] ?? 3);
  ensureBuilt();
  console.log(`autocannon: ${connections} connections, ${rounds} rounds of ${seconds} s per server (alternating), Node ${process.version}`);
  const servers = { raw: await start('raw'), fastify: await start('fastify'), menhu: await start('menhu') };
  const urlOf = (k: Kind) => `http://127.0.0.1:${servers[k].info.port}${servers[k].info.path}`;
  const res: Record<Kind, { rps: number; cpuUs: number; p99: number; ok: number }[]> = { raw: [], fastify: [], menhu: [] };
  // Warm-up, the same for each server: under load a fresh process needs ~10 s before its figures
  // settle (JIT tiers; V8 grows the young generation, so scavenges get rarer) — menhu's CPU per
  // scan fell from ~55-60 to ~33-36 µs over the first three 3-second rounds of a six-round run.
  const warm = Number(process.env.BENCH_WARMUP ?? 10);
  let warmOk = 0;
  if (warm > 0) {
    console.log(`warm-up: ${warm} s per server`);
    for (const k of ['raw', 'fastify', 'menhu'] as const) {
      const w = await autocannon({ url: urlOf(k), duration: warm, connections, headers: { 'user-agent': UA } });
      if (k === 'menhu') warmOk = w['3xx'];
    }
  }
  for (let r = 1; r <= rounds; r++) {
    console.log(`round ${r}`);
    // rotate the order each round so no server always goes first (the machine warms, other load comes and goes)
    const order = (['raw', 'fastify', 'menhu'] as const).map((_, i, a) => a[(i + r - 1) % a.length]);
    for (const k of order) res[k].push(await load(k, servers[k].child.pid!, urlOf(k), seconds, connections));
  }
  const m = servers.menhu;
  const counted = (await m.ask<{ scans: number }>('count')).scans;
  m.child.stdin!.write('quit\n');
  servers.raw.child.kill();
  servers.fastify.child.kill();
  const ratios = res.menhu.map((x, i) => x.rps / res.raw[i].rps);
  const fratios = res.fastify.map((x, i) => x.rps / res.raw[i].rps);
  if (RATE) console.log(`\nfixed rate ${RATE} req/s: the throughput ratios below say nothing; compare server CPU per request`);
  console.log(`\nmenhu / raw per round: ${ratios.map((x) => x.toFixed(2)).join(', ')}; median ${median(ratios).toFixed(2)} (goal >= 0.8)`);
  console.log(`bare Fastify / raw per round: ${fratios.map((x) => x.toFixed(2)).join(', ')}; median ${median(fratios).toFixed(2)} (the framework's own share)`);
  const mf = res.menhu.map((x, i) => x.rps / res.fastify[i].rps);
  console.log(`menhu / bare Fastify per round: ${mf.map((x) => x.toFixed(2)).join(', ')}; median ${median(mf).toFixed(2)}`);
  const cr = res.menhu.map((x, i) => res.raw[i].cpuUs / x.cpuUs);
  console.log(`server CPU per request, raw / menhu per round: ${cr.map((x) => x.toFixed(2)).join(', ')}; median ${median(cr).toFixed(2)} (menhu ${median(res.menhu.map((x) => x.cpuUs)).toFixed(1)} µs, raw ${median(res.raw.map((x) => x.cpuUs)).toFixed(1)} µs)`);
  console.log(`menhu p99: ${res.menhu.map((x) => x.p99).join(', ')} ms (goal <= 15)`);
  // autocannon stops counting at each deadline; up to one request per connection is answered after it.
  const ok = warmOk + res.menhu.reduce((a, x) => a + x.ok, 0);
  const all = counted >= ok && counted <= ok + connections * (rounds + 1);
  console.log(`scans recorded: ${counted} for ${ok} redirects counted by autocannon (+ at most ${connections} in flight per deadline) ${all ? '— all recorded' : '— MISMATCH'}`);
  if (!all) process.exitCode = 1;
}

if (process.argv[2] === '--serve') {
  if (process.argv[3] === 'raw') void serveRaw();
  else if (process.argv[3] === 'fastify') void serveFastify();
  else void serveMenhu();
} else {
  await main();
}
