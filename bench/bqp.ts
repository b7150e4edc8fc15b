/**
 * BQP query benchmark (bench/results/bqp.md).
 *
 * `Ordr.query` of a 20-row page with a `cond` over 100,000 orders, through the real server on
 * loopback (autocannon, logged-in employee session, call logging on), against the very SQL the
 * compiler emitted run directly through better-sqlite3 and serialised to JSON, in the same run.
 * Goal: server pages/s >= 0.5 × raw. Then the same with `pagekey=0` (adds `total`).
 *
 * The server is menhu as `menhu serve` runs it (dist/, see bench/lib.ts). Besides pages/s, each HTTP
 * round reports this process's CPU per request (all threads: the call log's writer thread too), so
 * the two servers compare like with like. On 2 cores, `BENCH_CLIENT_CPUS=0 taskset -c 1 node …`
 * keeps autocannon and the servers on separate cores.
 *
 *   node --import tsx bench/bqp.ts [seconds=8] [connections=8] [rounds of the HTTP pair=3]
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, type CompiledQuery } from 'kysely';
import { pino } from 'pino';
import { ensureBuilt, server } from './lib.js';

ensureBuilt();
const { loadConfig } = await server<typeof import('../src/core/config.js')>('core/config.js');
const { objectsOf } = await server<typeof import('../src/modules/objects.js')>('modules/objects.js');
const { closePlatform, createPlatform } = await server<typeof import('../src/platform.js')>('platform.js');
const { seedDemo } = await server<typeof import('../src/demo.js')>('demo.js');
const { buildServer } = await server<typeof import('../src/server.js')>('server.js');
const { condTree, runQuery } = await server<typeof import('../src/services/objects/query.js')>('services/objects/query.js');

interface CannonResult {
  requests: { average: number; total: number };
  /** this process's CPU per request during the run, µs (set by serverRate) */
  cpuUs?: number;
  latency: { p50: number; p99: number };
  errors: number;
  non2xx: number;
}
// autocannon runs as its own process, so the client does not share the server's event loop
const cannonBin = createRequire(import.meta.url).resolve('autocannon/autocannon.js');
function autocannon(o: { url: string; connections: number; duration: number; headers?: Record<string, string> }): Promise<CannonResult> {
  const args = [cannonBin, '-j', '-c', String(o.connections), '-d', String(o.duration)];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}=${v}`);
 args.push(o.url);
  // BENCH_CLIENT_CPUS: autocannon pinned to those CPUs (taskset list)
  const pin = process.env.BENCH_CLIENT_CPUS;
  const [cmd, argv] = pin ? ['taskset', ['-c', pin, process.execPath, ...args]] : [process.execPath, args];
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { maxBuffer: 1 << 24 }, (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout) as CannonResult)));
  });
}

const SECONDS = Number(process.argv[2] ?? 8);
const CONNS = Number(process.argv[3] ?? 8);
const ROUNDS = Number(process.argv[4] ?? 3);
const ROWS = 100_000;
const COND = "status IN ('CR','PA') AND amount >= 900";

const dataDir = mkdtempSync(join(tmpdir(), 'menhu-bench-bqp-'));
const config = loadConfig({ MENHU_DATA: dataDir, MENHU_MASTER_KEY: randomBytes(32).toString('hex'), LOG_LEVEL: 'silent', MENHU_BQP_SCHEMA: process.env.MENHU_BQP_SCHEMA ?? '' }, { port: 0, jobConcurrency: 0 });
const ctx = await createPlatform(config, { log: pino({ level: 'silent' }) });
await seedDemo(ctx);
const svc = objectsOf(ctx);

// 100k orders: 1000 users, 6 statuses, amounts 0.00–999.99
const file = join(dataDir, 'menhu.sqlite');
const raw = new SQLite(file);
raw.pragma('busy_timeout = 10000');
const ins = raw.prepare('insert into bqp_Ordr (userId, createTm, status, amount, dscr) values (?, ?, ?, ?, ?)');
const statuses = ['CR', 'PA', 'RE', 'CA', 'ST', 'CL'];
raw.transaction(() => {
  for (let i = 0; i < ROWS; i++) ins.run(1 + (i % 1000), `2026-${String(1 + (i % 12)).padStart(2, '0')}-01 10:00:00`, statuses[(i * 7) % 6], (i * 7919) % 100000, `order ${i}`);
})();

// the SQL the compiler emits for this call, captured from a logging Kysely on the same file
const captured: CompiledQuery[] = [];
const spyDb = new Kysely<any>({ dialect: new SqliteDialect({ database: new SQLite(file) }), log: (e) => void captured.push(e.query) });
const emp = { role: 'employee' as const, loggedIn: true, vars: { empId: 1 } };
const def = svc.schema.objects.get('Ordr')!;
await runQuery(spyDb, svc.schema, 'sqlite', def, emp, { cond: condTree(COND), pagesz: 20 });
const pageSql = captured[0];
captured.length = 0;
await runQuery(spyDb, svc.schema, 'sqlite', def, emp, { cond: condTree(COND), pagesz: 20, pagekey: 0 });
const countSql = captured[1];
await spyDb.destroy();

function rawRate(queries: CompiledQuery[], ms: number): number {
  const stmts = queries.map((q) => ({ st: raw.prepare(q.sql), p: q.parameters as unknown[] }));
  let n = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const out = stmts.map(({ st, p }) => st.all(...p));
    JSON.stringify([0, out]);
    n++;
  }
  return n / (ms / 1000);
}

/** The service layer alone (parse cond, plan, run, shape, JSON), no HTTP: where the cost sits. */
async function serviceRate(pagekey: number | null, ms: number): Promise<number> {
  let n = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const r = await runQuery(ctx.db.kysely as any, svc.schema, 'sqlite', def, emp, { cond: condTree(COND), pagesz: 20, pagekey });
    JSON.stringify([0, { h: r.cols, d: r.rows, nextkey: r.nextkey, total: r.total }]);
    n++;
  }
  return n / (ms / 1000);
}

const app = await buildServer(ctx, { logger: false });
await app.listen({ host: '127.0.0.1', port: 0 });
const root = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
const base = `${root}${config.bqpPrefix}`;
const login = await fetch(`${base}/login?_app=emp`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'uname=emp&pwd=1234' });
const cookie = login.headers.getSetCookie()[0].split(';')[0];
const qs = new URLSearchParams({ cond: COND, _app: 'emp' });
const check = await (await fetch(`${base}/Ordr.query?${qs}`, { headers: { cookie } })).json() as [number, { d: unknown[] }];
if (check[0] !== 0 || check[1].d.length !== 20) throw new Error(`unexpected answer ${JSON.stringify(check).slice(0, 200)}`);

async function serverRate(url: string): Promise<CannonResult> {
  await autocannon({ url, connections: CONNS, duration: 1, headers: { cookie } }); // warm-up
  const c0 = process.cpuUsage();
  const r = await autocannon({ url, connections: CONNS, duration: SECONDS, headers: { cookie } });
  const c = process.cpuUsage(c0);
  return { ...r, cpuUs: (c.user + c.system) / Math.max(1, r.requests.total) };
}

/**
 * The same SQL served over HTTP by a bare node:http server (raw better-sqlite3, JSON.stringify of
 * `[0, rows]`), in this process like menhu's server: what any HTTP service doing this query costs,
 * so that server / raw-over-HTTP says what menhu adds over HTTP and the query alone.
 */
const rawHttp = createServer((req, res) => {
  const total = req.url!.includes('pagekey=0');
  const body = JSON.stringify([0, total ? [rawPage.st.all(...rawPage.p), rawCount.st.all(...rawCount.p)] : rawPage.st.all(...rawPage.p)]);
  res.writeHead(200, { 'content-type': 'text/plain; charset=UTF-8', 'cache-control': 'no-cache' });
  res.end(body);
});
const rawPage = { st: raw.prepare(pageSql.sql), p: pageSql.parameters as unknown[] };
const rawCount = { st: raw.prepare(countSql.sql), p: countSql.parameters as unknown[] };
await new Promise<void>((r) => rawHttp.listen(0, '127.0.0.1', r));
const rawRoot = `http://127.0.0.1:${(rawHttp.address() as { port: number }).port}`;

const rows: string[] = [];
for (const [label, url, queries] of [
  ['20-row page', `${base}/Ordr.query?${qs}`, [pageSql]],
  ['20-row page + total (pagekey=0)', `${base}/Ordr.query?${qs}&pagekey=0`, [pageSql, countSql]],
] as const) {
  const rawPs = rawRate([...queries], SECONDS * 1000);
  const svcPs = await serviceRate(queries.length > 1 ? 0 : null, SECONDS * 1000);
  // menhu and the bare HTTP server alternate (ROUNDS each); the medians are reported
  const rs: CannonResult[] = [];
  const rhs: CannonResult[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    rs.push(await serverRate(url));
    rhs.push(await serverRate(`${rawRoot}/?${queries.length > 1 ? 'pagekey=0' : ''}`));
  }
  const mid = (xs: CannonResult[]) => [...xs].sort((a, b) => a.requests.average - b.requests.average)[xs.length >> 1];
  const [r, rh] = [mid(rs), mid(rhs)];
  const ratios = rs.map((x, i) => x.requests.average / rhs[i].requests.average);
  console.log(`${label}: menhu / raw over HTTP per round: ${ratios.map((x) => x.toFixed(2)).join(', ')}`);
  const ratio = r.requests.average / rawPs;
  const httpRatio = r.requests.average / rh.requests.average;
  // CPU per page: the in-process loop's time per page, and each server's process CPU per request (medians of rounds)
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const [cpuMenhu, cpuRawHttp, rawUs] = [med(rs.map((x) => x.cpuUs!)), med(rhs.map((x) => x.cpuUs!)), 1e6 / rawPs];
  rows.push(`| ${label} | ${rawPs.toFixed(0)} | ${svcPs.toFixed(0)} (${(svcPs / rawPs).toFixed(2)}) | ${rh.requests.average.toFixed(0)} | ${r.requests.average.toFixed(0)} | ${ratio.toFixed(2)} | ${httpRatio.toFixed(2)} | ${rawUs.toFixed(0)} / ${cpuRawHttp.toFixed(0)} / ${cpuMenhu.toFixed(0)} | ${r.latency.p50} / ${r.latency.p99} | ${r.errors + r.non2xx} |`);
  console.log(`${label}: raw better-sqlite3 + JSON ${rawPs.toFixed(0)}/s, service layer ${svcPs.toFixed(0)}/s, raw over HTTP ${rh.requests.average.toFixed(0)}/s, server ${r.requests.average.toFixed(0)} pages/s, ratio ${ratio.toFixed(2)} (over HTTP ${httpRatio.toFixed(2)}), p50/p99 ${r.latency.p50}/${r.latency.p99} ms`);
  console.log(`${label}: CPU per page — in-process loop ${rawUs.toFixed(0)} µs, raw over HTTP ${cpuRawHttp.toFixed(0)} µs, menhu ${cpuMenhu.toFixed(0)} µs (rounds ${rs.map((x) => x.cpuUs!.toFixed(0)).join(', ')}) -> CPU-bound ratio ${(rawUs / cpuMenhu).toFixed(2)} (over HTTP ${(cpuRawHttp / cpuMenhu).toFixed(2)})`);
}
// the HTTP floor of this machine at this moment: /healthz (one `select 1`) through the same server
const floor = await serverRate(`${root}/healthz`);
console.log(`HTTP floor: /healthz ${floor.requests.average.toFixed(0)}/s, p50/p99 ${floor.latency.p50}/${floor.latency.p99} ms`);
rows.push(`| (HTTP floor: GET /healthz) | | | | ${floor.requests.average.toFixed(0)} | | | ${floor.cpuUs!.toFixed(0)} | ${floor.latency.p50} / ${floor.latency.p99} | ${floor.errors + floor.non2xx} |`);
console.log('\nSQL:', pageSql.sql, '\nparams:', JSON.stringify(pageSql.parameters));
console.log('\n| query | raw better-sqlite3 + JSON (/s) | service layer, no HTTP (/s, ratio) | raw over HTTP (node:http, /s) | server over HTTP (pages/s) | server / raw | server / raw over HTTP | CPU µs per page: loop / raw HTTP / menhu | latency p50 / p99 ms | errors |\n|---|---|---|---|---|---|---|---|---|---|');
console.log(rows.join('\n'));

await app.close();
rawHttp.close();
raw.close();
await closePlatform(ctx);
rmSync(dataDir, { recursive: true, force: true });
