/**
 * Request log benchmark: what the recorder costs per request.
 *
 *   npm run bench -- requests [--calls 200000] [--pg]
 * --pg creates a scratch database next to DATABASE_URL's (dropped at the end) and runs on it.
 *
 * 1. The hook itself: the onResponse hook (dialects/requests.ts) called in a loop on a real
 *    request/reply pair of menhu (an authenticated GET /rest/v1/me, so the app/tenant path is the
 *    one taken), 1000 calls at a time; CPU time per call. This is all the request path pays.
 * 2. The batched write, off the request path: after each 1000 calls the buffer is flushed (one
 *    transaction: multi-row insert + aggregate upsert); CPU time of this process and wall time per
 *    row. On PostgreSQL most of the write's work is the database server's, not counted here.
 * 3. The same loop with a hook that does nothing, for the cost of calling a hook at all.
 *
 * The `kernel` benchmark (bench/kernel.ts) measures the whole signed request against bare Fastify;
 * the recorder's share there is below its noise, which is why this one exists.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { FastifyReply, FastifyRequest } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { loadConfig } from '../src/core/config.js';
import { createApp } from '../src/core/credentials/apps.js';
import { requestRecorder } from '../src/dialects/requests.js';
import { closePlatform, createPlatform } from '../src/platform.js';
import { buildServer } from '../src/server.js';
import { createTenant } from '../src/services/accounts/index.js';
import { flushRequests } from '../src/services/usage/index.js';

const cpuNow = (): number => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

export default async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { calls: { type: 'string', default: '200000' }, pg: { type: 'boolean', default: false } } });
  const calls = Math.max(1000, Number(values.calls));
  const dataDir = mkdtempSync(join(tmpdir(), 'menhu-bench-'));
  let scratch: { url: string; drop(): Promise<void> } | null = null;
  if (values.pg) {
    if (!process.env.DATABASE_URL) throw new Error('--pg needs DATABASE_URL');
    scratch = await scratchDatabase(process.env.DATABASE_URL);
  }
  const config = loadConfig({ MENHU_DATA: dataDir, DATABASE_URL: scratch?.url ?? '', LOG_LEVEL: 'warn' }, { port: 0, jobConcurrency: 0 });
  const ctx = await createPlatform(config, { log: pino({ level: 'warn' }) });
  const app = await buildServer(ctx, { logger: false });
  let captured: { req: FastifyRequest; reply: FastifyReply } | undefined;
  app.addHook('onResponse', (req, reply, done) => {
    captured ??= { req, reply };
    done();
  });
  const tenant = await createTenant(ctx, 'bench');
  const a = await createApp(ctx, { tenantId: Number(tenant.id), name: 'bench', services: ['native'] });
  const res = await app.inject({ method: 'GET', url: '/rest/v1/me', headers: { authorization: `Bearer ${a.key}.${a.secret}` } });
  if (res.statusCode !== 200 || !captured) throw new Error(`menhu answered ${res.statusCode}`);
  const { req, reply } = captured;
  await flushRequests(ctx);

  const hook = requestRecorder(ctx) as unknown as (req: FastifyRequest, reply: FastifyReply, done: () => void) => void;
  const noop = () => {};
  const empty = (_r: FastifyRequest, _p: FastifyReply, done: () => void) => done();

  const run = async (h: typeof hook, flush: boolean) => {
    let hookCpu = 0;
    let hookWall = 0n;
    let flushCpu = 0;
    let flushWall = 0n;
    for (let done = 0; done < calls; done += 1000) {
      const c0 = cpuNow();
      const w0 = process.hrtime.bigint();
      for (let i = 0; i < 1000; i++) h(req, reply, noop);
      const w1 = process.hrtime.bigint();
      const c1 = cpuNow();
      hookCpu += c1 - c0;
      hookWall += w1 - w0;
      if (flush) {
        await flushRequests(ctx);
        flushCpu += cpuNow() - c1;
        flushWall += process.hrtime.bigint() - w1;
      }
    }
    return { hookCpuUs: hookCpu / calls, hookWallNs: Number(hookWall) / calls, flushCpuUs: flushCpu / calls, flushWallUs: Number(flushWall) / 1000 / calls };
  };

  // warm-up, then the measured runs
  await run(hook, true);
  await run(empty, false);
  const rec = await run(hook, true);
  const base = await run(empty, false);
  const rows = Number((await ctx.db.kysely.selectFrom('request_log').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

  console.log(`request recorder, ${calls} calls, ${ctx.db.dialect}, Node ${process.version}`);
  console.log(`  hook (on the request path):   ${rec.hookWallNs.toFixed(0)} ns wall, ${rec.hookCpuUs.toFixed(3)} µs CPU per request`);
  console.log(`  empty hook, same loop:        ${base.hookWallNs.toFixed(0)} ns wall, ${base.hookCpuUs.toFixed(3)} µs CPU per request`);
  console.log(`  batched write (off the path): ${rec.flushWallUs.toFixed(2)} µs wall, ${rec.flushCpuUs.toFixed(2)} µs CPU of this process per row (1000-row transactions)`);
  console.log(`  rows written: ${rows}`);

  await app.close();
  await closePlatform(ctx);
  await scratch?.drop();
  rmSync(dataDir, { recursive: true, force: true });
}

/** A new empty database on the server of `base`, so the bench never writes into an existing one. */
async function scratchDatabase(base: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `menhu_bench_${randomBytes(6).toString('hex')}`;
  const admin = async (text: string) => {
    const c = new pg.Client({ connectionString: base });
    await c.connect();
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
  };
  await admin(`create database ${name}`);
  const u = new URL(base);
  u.pathname = `/${name}`;
  return { url: u.toString(), drop: () => admin(`drop database if exists ${name} with (force)`) };
}
