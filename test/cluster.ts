/**
 * Cluster mode of the test harness (MENHU_TEST_CLUSTER=1, with --pg): every test server becomes two
 * API servers, each with its own platform (own pool, caches and limiter) on the same PostgreSQL
 * database and Redis, behind a round-robin proxy on loopback that alternates servers on every
 * request; when the test asks for background jobs, a separate worker platform runs them and the API
 * servers run none. The whole acceptance suite then runs against this topology unchanged.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { Ctx } from '../src/core/context.js';
import { closePlatform, createPlatform } from '../src/platform.js';
import { buildServer } from '../src/server.js';
import type { TestOptions, TestPlatform, TestServer } from './helpers.js';

export const inCluster = process.env.MENHU_TEST_CLUSTER === '1';

/** Alternates requests between targets; counts what each one got so tests can see both served. */
export function roundRobinProxy(targets: string[], settle?: () => Promise<unknown>): Promise<{ url: string; served: number[]; close(): Promise<void> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const served = targets.map(() => 0);
  let next = 0;
  const server = http.createServer((req, res) => {
    const i = next++ % targets.length;
    served[i]++;
    const t = new URL(targets[i]);
    const up = http.request(
      { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent },
      (ur) => {
        if (!settle) {
          res.writeHead(ur.statusCode ?? 502, ur.statusMessage, ur.rawHeaders);
          return void ur.pipe(res);
        }
        // Nothing reaches the client before every server has heard what this answer published: a
        // client reads a Content-Length body as complete without waiting for the end, so holding
        // back only the end (as before) let tests see stale caches.
        const chunks: Buffer[] = [];
        ur.on('data', (c: Buffer) => chunks.push(c));
        ur.on('end', () =>
          void settle().then(() => {
            res.writeHead(ur.statusCode ?? 502, ur.statusMessage, ur.rawHeaders);
            res.end(Buffer.concat(chunks));
          }),
        );
      },
    );
    up.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${e.message}`);
    });
    req.pipe(up);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      resolve({
        url,
        served,
        close: () =>
          new Promise<void>((r) => {
            agent.destroy();
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

/**
 * The cluster's "within milliseconds": a write on one server invalidates the other servers' caches
 * through the bus (Redis pub/sub). The suite checks read-your-writes through the proxy, so before a
 * response reaches the test every server must have heard what was published while it was made.
 * Each server publishes a marker on its own publisher connection, after anything it published
 * before (Redis keeps one connection's order), and every server waits until it has received every
 * marker. Bounded (2 s, resolving false): a loaded machine can take well over 200 ms to deliver a
 * message while a browser suite runs beside it (CI did, and a stale cache failed two tests). Right
 * after start the subscriptions may not be in place yet: startCluster waits for one full round.
 */
function busBarrier(ctxs: Ctx[]): (timeoutMs?: number) => Promise<boolean> {
  const TOPIC = 'test-barrier';
  const seen = ctxs.map(() => new Set<string>());
  const awaited = new Set<string>();
  const waiters = new Set<() => void>();
  ctxs.forEach((c, i) =>
    c.bus.subscribe(TOPIC, (m) => {
      if (!awaited.has(m)) return; // a late second copy (a server also hears its own messages)
      seen[i].add(m);
      for (const w of waiters) w();
    }),
  );
  let seq = 0;
  return (timeoutMs = 2000) => {
    if (ctxs[0].bus.mode() !== 'redis') return Promise.resolve(true);
    const id = `${process.pid}-${++seq}`;
    const markers = ctxs.map((_, j) => `${id}:${j}`);
    return new Promise<boolean>((resolve) => {
      const done = () => {
        if (!seen.every((s) => markers.every((m) => s.has(m)))) return;
        finish(true);
      };
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        waiters.delete(done);
        for (const m of markers) awaited.delete(m);
        for (const s of seen) for (const m of markers) s.delete(m);
        if (!ok && timeoutMs >= 1000) process.stderr.write(`cluster: bus barrier ${id} timed out after ${timeoutMs} ms\n`);
        resolve(ok);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      for (const m of markers) awaited.add(m);
      waiters.add(done);
      ctxs.forEach((c, j) => c.bus.publish(TOPIC, markers[j]));
    });
  };
}

async function listen(app: FastifyInstance): Promise<string> {
  await app.listen({ host: '127.0.0.1', port: 0 });
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

export async function startCluster(first: TestPlatform, opts: TestOptions): Promise<TestServer> {
  const jobs = first.config.jobConcurrency;
  const log = opts.logStream ? first.ctx.log : pino({ level: process.env.TEST_LOG ?? 'silent' });
  // The first platform (made by startPlatform: fresh database) is server 1; server 2 and the worker
  // open the same database as separate platforms. They share one config object, so a test that
  // changes a setting changes it on every "machine", as a redeploy would.
  first.ctx.config.jobConcurrency = 0;
  const second: Ctx = await createPlatform(first.ctx.config, { clock: opts.clock, log });
  const worker: Ctx | null = jobs > 0 ? await createPlatform(first.ctx.config, { clock: opts.clock, log }) : null;
  worker?.jobs.start(jobs);
  const logOpts = opts.logStream ? { logStream: opts.logStream } : { logger: false };
  const app1 = await buildServer(first.ctx, logOpts);
  const app2 = await buildServer(second, logOpts);
  const barrier = busBarrier([first.ctx, second]);
  // Every server subscribed (its topics and the barrier's) before the first request. A test that
  // points REDIS_URL at nothing gets no barrier: there is no bus to wait for.
  let ready = false;
  for (let i = 0; i < 5 && !ready; i++) ready = await barrier(500);
  const proxy = await roundRobinProxy([await listen(app1), await listen(app2)], ready ? () => barrier() : undefined);
  first.ctx.config.publicUrl = proxy.url;
  return {
    ...first,
    app: app1,
    url: proxy.url,
    close: async () => {
      await proxy.close();
      await app1.close();
      await app2.close();
      if (worker) await closePlatform(worker);
      await closePlatform(second);
      await first.close();
    },
  };
}
