/**
 * Dynamic codes on the real server:
 *  1. a batch of 1,000 records in one native REST call, end to end (HTTP + validation + inserts),
 *  2. signed cli.im dynamicSingleCreate calls per second vs a bare Fastify server answering the same
 *     JSON route (parse + reply, no work) in the same run. Each call creates a record (one
 *     transaction). The 20 req/s per-address limit is real, so each request comes from its own
 *     X-Forwarded-For address (the menhu child trusts the proxy header).
 *
 *   node --import tsx bench/codes.ts [seconds per server, default 10] [connections, default 10] [batches, default 5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import autocannon from 'autocannon';
import { median, startChild } from './lib.js';

const PATH = '/cli-open-platform-service/v1/dynamicQrcode/dynamicSingleCreate';
const U = 'https://cli-api.oss-cn-hangzhou-internal.aliyuncs.com/example/2023/1108/15/44/i9528fa4d7ba3-60fa-4ea2-b467-60fbb0c44621_source.jpg';
const SAMPLE = { template_num: 'M8', api_key: 'CLb87ea759f877622c', values: ['消防栓', 'A23154', '宁波市', '张成杰', '13023214212', '资产运营部', U, U], sign: 'a6bb0eb47c5bdd67bdfccbf0a0aec903' };

async function serveFastify(): Promise<void> {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false });
  app.post(PATH, async (req) => {
    const b = req.body as { values?: unknown[] };
    return { data: { web_url: `http://127.0.0.1/s/${b.values?.length ?? 0}`, qrstyle_url: 'http://127.0.0.1/qr/x.png' }, code: 0, message: '操作成功' };
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const a = app.server.address();
  console.log(JSON.stringify({ port: typeof a === 'object' && a ? a.port : 0 }));
}

async function serveMenhu(): Promise<void> {
  const { loadConfig } = await import('../src/core/config.js');
  const { createPlatform, closePlatform } = await import('../src/platform.js');
  const { buildServer } = await import('../src/server.js');
  const { seedDemo } = await import('../src/demo.js');
  const dir = mkdtempSync(join(tmpdir(), 'menhu-bench-'));
  const cfg = loadConfig({ ...process.env, MENHU_DATA: dir, LOG_LEVEL: 'warn', MENHU_TRUST_PROXY: '1' }, { port: 0, jobConcurrency: 0 });
  const ctx = await createPlatform(cfg);
  const app = await buildServer(ctx);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const a = app.server.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  ctx.config.publicUrl = `http://127.0.0.1:${port}`;
  const demo = await seedDemo(ctx);
  const t = await ctx.db.kysely.selectFrom('code_templates').select('id').where('tenant_id', '=', demo.tenantId).where('num', '=', 8).executeTakeFirstOrThrow();
  console.log(JSON.stringify({ port, bearer: `${demo.native.key}.${demo.native.secret}`, template: Number(t.id), db: ctx.db.dialect }));
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'count') {
      const r = await ctx.db.kysely.selectFrom('code_records').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      console.log(JSON.stringify({ records: Number(r.n) }));
    } else if (line === 'quit') break;
  }
  await app.close();
  await closePlatform(ctx);
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

async function load(label: string, url: string, seconds: number, connections: number) {
  let n = 0;
  const body = JSON.stringify(SAMPLE);
  const r = await autocannon({
    url,
    duration: seconds,
    connections,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    requests: [{ setupRequest: (req: autocannon.Request) => ({ ...req, headers: { ...req.headers, 'x-forwarded-for': `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n++ & 255}` } }) }],
  });
  console.log(`  ${label.padEnd(8)} ${r.requests.average.toFixed(0).padStart(6)} calls/s   p50 ${r.latency.p50} ms   p99 ${r.latency.p99} ms   2xx ${r['2xx']}   other ${r.errors + r.non2xx}`);
  return { rps: r.requests.average, p99: r.latency.p99, ok: r['2xx'] };
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 10);
  const connections = Number(process.argv[3] ?? 10);
  const batches = Number(process.argv[4] ?? 5);
  const self = new URL(import.meta.url).pathname;
  const menhu = await startChild<{ port: number; bearer: string; template: number; db: string }>(self, ['--serve', 'menhu']);
  const bare = await startChild<{ port: number }>(self, ['--serve', 'fastify']);
  const base = `http://127.0.0.1:${menhu.info.port}`;
  console.log(`menhu on ${menhu.info.db}; Node ${process.version}`);

  console.log(`\n1,000 records per native batch call (${batches} calls):`);
  const times: number[] = [];
  for (let b = 0; b < batches; b++) {
    const records = Array.from({ length: 1000 }, (_, i) => [`设备${b}-${i}`, `A${b}${i}`, '宁波市', '张成杰', '13023214212', '资产运营部', U, U]);
    const t0 = performance.now();
    const r = await fetch(`${base}/rest/v1/code-templates/${menhu.info.template}/records`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${menhu.info.bearer}` },
      body: JSON.stringify({ records }),
    });
    const j = (await r.json()) as { records?: unknown[] };
    const ms = performance.now() - t0;
    if (r.status !== 201 || j.records?.length !== 1000) throw new Error(`batch failed: ${r.status} ${JSON.stringify(j).slice(0, 200)}`);
    times.push(ms);
    console.log(`  batch ${b + 1}: ${ms.toFixed(0)} ms`);
  }
  console.log(`  median ${median(times).toFixed(0)} ms (goal <= 1000 ms)`);

  console.log(`\ndynamicSingleCreate, signed (the seed's sample), ${connections} connections, ${seconds} s each:`);
  const before = (await menhu.ask<{ records: number }>('count')).records;
  const f = await load('fastify', `http://127.0.0.1:${bare.info.port}${PATH}`, seconds, connections);
  const m = await load('menhu', `${base}${PATH}`, seconds, connections);
  const after = (await menhu.ask<{ records: number }>('count')).records;
  menhu.child.stdin!.write('quit\n');
  bare.child.kill();
  console.log(`\nratio menhu / bare Fastify: ${(m.rps / f.rps).toFixed(2)}`);
  const created = after - before;
  const okAll = created >= m.ok && created <= m.ok + connections;
  console.log(`records created: ${created} for ${m.ok} answers counted by autocannon ${okAll ? '(all stored)' : '(MISMATCH)'}`);
  if (!okAll) process.exitCode = 1;
}

if (process.argv[2] === '--serve') {
  if (process.argv[3] === 'fastify') void serveFastify();
  else void serveMenhu();
} else {
  await main();
}
