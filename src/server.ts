import { AjvCompiler } from '@fastify/ajv-compiler';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { sql } from 'kysely';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { pino, type Bindings, type ChildLoggerOptions, type DestinationStream } from 'pino';
import type { Ctx } from './core/context.js';
import { requestRecorder } from './dialects/requests.js';
import { REST_PREFIX, restDialect } from './dialects/rest/index.js';
import { NativeLane } from './dialects/rest/lane.js';
import { problemOf, sendProblem } from './dialects/rest/problem.js';
import { MODULES } from './modules/index.js';
import { REDACT } from './platform.js';

export interface ServerOptions {
  /** Pass false to silence request logs (tests). */
  logger?: boolean;
  /** Where request logs go (default stdout); tests capture them to check that no secret is logged. */
  logStream?: DestinationStream;
}

// Query strings, params and form bodies are text, so their values are coerced to the schema's types.
// JSON bodies of the native API are typed already and are validated as sent: coercing them would
// turn `"expires_at": null` into 0 and `"name": 5` into "5".
const ajvPool = AjvCompiler();
type AjvPool = (external: unknown, opts: unknown) => (route: { url: string; httpPart?: string }) => unknown;
const schemaController = {
  compilersFactory: {
    buildValidator: (external: unknown, ajvOpts: { customOptions: Record<string, unknown> }) => {
      const pool = ajvPool as unknown as AjvPool;
      const loose = pool(external, ajvOpts);
      const strict = pool(external, { ...ajvOpts, customOptions: { ...ajvOpts.customOptions, coerceTypes: false } });
      return (route: { url: string; httpPart?: string }) => (route.httpPart === 'body' && route.url.startsWith(REST_PREFIX + '/') ? strict : loose)(route);
    },
  },
} as unknown as FastifyServerOptions['schemaController'];

/** Builds the HTTP server with every dialect mounted. Does not listen. */
export async function buildServer(ctx: Ctx, opts: ServerOptions = {}): Promise<FastifyInstance> {
  const logOpts = { level: ctx.config.logLevel, redact: { paths: REDACT, censor: '[redacted]' } };
  let reqSeq = 0;
  const nextReqId = () => `req-${(reqSeq++).toString(36)}`;
  // Answered before Fastify (see Module.fast, and the native API's lane); recorded in metrics and
  // the access log like the rest. The lane's reads are entered when the REST dialect is mounted.
  const lane = new NativeLane();
  const fast = [...MODULES.flatMap((m) => (m.fast ? [m.fast(ctx)] : [])), lane.handler(ctx, () => app.log)];
  // --- metrics and the access log -------------------------------------------------------------
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'menhu_' });
  const routeMetrics = new RouteMetrics([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
  routeMetrics.register(registry);
  const access = accessLog(ctx, opts);
  const observe = (method: string, route: string, status: number, ms: number) => routeMetrics.observe(method, route, status, ms / 1000);
  const recordFast = (req: IncomingMessage, status: number, ms: number, route: string, ip: string, id: string) => {
    observe(req.method!, route, status, ms);
    access?.(id, req.method!, req.url!, status, ms, route, ip);
  };
  const app = Fastify({
    genReqId: nextReqId,
    serverFactory: (handler, o) => {
      const server = createHttpServer((req, res) => {
        const t0 = performance.now();
        let addr: string | undefined;
        let reqId: string | undefined;
        const ip = () => (addr ??= clientAddress(req, ctx.config.trustProxy));
        const id = () => (reqId ??= nextReqId());
        for (const f of fast) {
          let route: string | null | Promise<string>;
          try {
            route = f(req, res, ip, id);
          } catch (e) {
            if (res.headersSent) throw e;
            route = null; // the framework answers it, with its own error handling
          }
          if (typeof route === 'string') return recordFast(req, res.statusCode, performance.now() - t0, route, ip(), id());
          if (route) {
            return void route.then(
              (r) => recordFast(req, res.statusCode, performance.now() - t0, r, ip(), id()),
              (e: unknown) => {
                // a bug in a fast handler: never leave the client waiting, never show a stack
                const p = problemOf({ kind: 'internal', error: e }, () => app.log.child({ reqId: id() }), id);
                if (!res.headersSent) {
                  res.writeHead(p.body.status, { 'content-type': 'application/problem+json; charset=utf-8' });
                  res.end(JSON.stringify(p.body));
                } else if (!res.writableEnded) res.destroy();
              },
            );
          }
        }
        handler(req, res);
      });
      // what Fastify sets on the server it makes itself (its defaults are filled in by now)
      const t = o as { keepAliveTimeout: number; requestTimeout: number; connectionTimeout: number; maxRequestsPerSocket: number };
      server.keepAliveTimeout = t.keepAliveTimeout;
      server.requestTimeout = t.requestTimeout;
      server.setTimeout(t.connectionTimeout);
      if (t.maxRequestsPerSocket > 0) server.maxRequestsPerSocket = t.maxRequestsPerSocket;
      return server;
    },
    logger: opts.logger === false ? false : { ...logOpts, ...(opts.logStream ? { stream: opts.logStream } : {}) },
    // one access line per request (below) instead of Fastify's two
    logController: new LogController({ disableRequestLogging: true }),
    // req.log is made on first use: most requests never log beyond the access line
    childLoggerFactory: (logger, bindings, childOpts) => new LazyChild(logger, bindings, childOpts) as unknown as FastifyBaseLogger,
    bodyLimit: ctx.config.bodyLimit,
    trustProxy: ctx.config.trustProxy,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false, useDefaults: true } },
    schemaController,
    routerOptions: { maxParamLength: 500 },
  });

  // Every route registered, as `METHOD url` (the OpenAPI test checks each native route is documented).
  const routes: { method: string; url: string; hidden: boolean }[] = [];
  app.decorate('routeList', routes);
  app.addHook('onRoute', (r) => {
    for (const m of [r.method].flat()) routes.push({ method: m, url: r.url, hidden: !!(r.schema as { hide?: boolean } | undefined)?.hide });
  });

  const recordRequest = requestRecorder(ctx); // the request log (services/usage): one buffered push per API request
  app.addHook('onResponse', function (req, reply, done) {
    const route = req.routeOptions.url ?? 'unmatched';
    observe(req.method, route, reply.statusCode, reply.elapsedTime);
    access?.(req.id, req.method, req.url, reply.statusCode, reply.elapsedTime, route, req.ip);
    recordRequest.call(this, req, reply, done);
  });
  if (access) app.addHook('onClose', (_app, done) => access.flush(done));
  app.decorate('metrics', registry);
  app.decorate('nativeLane', lane);

  await app.register(cookie);
  await app.register(formbody, { bodyLimit: ctx.config.bodyLimit });

  // Outside any dialect, errors are problem+json too, and never a stack trace.
  app.setErrorHandler((err, req, reply) => sendProblem(req, reply, err));

  app.get('/healthz', async (_req, reply) => {
    try {
      await sql`select 1`.execute(ctx.db.kysely);
      return { status: 'ok', database: ctx.db.dialect, limits: ctx.limits.mode(), blobs: ctx.blobs.backend.name };
    } catch (e) {
      return reply.code(503).send({ status: 'unavailable', database: ctx.db.dialect, error: (e as Error).message });
    }
  });
  app.get('/metrics', async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));

  await app.register(restDialect, { prefix: REST_PREFIX, ctx, lane });
  for (const m of MODULES) if (m.mount) await m.mount(app, ctx);

  return app;
}

/**
 * `menhu_http_requests_total` {method, route, status} and `menhu_http_request_duration_seconds`
 * {method, route}, kept as plain numbers per route and turned into prom-client's values only when
 * /metrics is read: prom-client's labelled children hash their labels on every call, ~1 µs per
 * request, where this costs a map look-up and a few additions.
 */
class RouteMetrics {
  private readonly routes = new Map<string, { method: string; route: string; status: Map<number, number>; buckets: Float64Array; sum: number; count: number }>();
  constructor(private readonly bounds: number[]) {}

  observe(method: string, route: string, status: number, seconds: number): void {
    const k = method + ' ' + route;
    let r = this.routes.get(k);
    if (!r) this.routes.set(k, (r = { method, route, status: new Map(), buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 }));
    r.status.set(status, (r.status.get(status) ?? 0) + 1);
    let i = 0;
    while (i < this.bounds.length && seconds > this.bounds[i]) i++;
    r.buckets[i]++;
    r.sum += seconds;
    r.count++;
  }

  register(registry: Registry): void {
    const requests = { name: 'menhu_http_requests_total', help: 'HTTP requests', type: 'counter' as const };
    const duration = { name: 'menhu_http_request_duration_seconds', help: 'HTTP request duration', type: 'histogram' as const };
    const metric = (m: { name: string; help: string; type: string }, values: () => unknown[]) => ({
      ...m,
      get: async () => ({ ...m, aggregator: 'sum', values: values() }),
      reset: () => this.routes.clear(),
    });
    registry.registerMetric(
      metric(requests, () =>
        [...this.routes.values()].flatMap((r) => [...r.status].map(([status, n]) => ({ labels: { method: r.method, route: r.route, status: String(status) }, value: n }))),
      ) as unknown as Parameters<Registry['registerMetric']>[0],
    );
    registry.registerMetric(
      metric(duration, () =>
        [...this.routes.values()].flatMap((r) => {
          const labels = { method: r.method, route: r.route };
          let acc = 0;
          const buckets = this.bounds.map((le, i) => ({ labels: { le, ...labels }, value: (acc += r.buckets[i]), metricName: `${duration.name}_bucket` }));
          return [
            ...buckets,
            { labels: { le: '+Inf', ...labels }, value: r.count, metricName: `${duration.name}_bucket` },
            { labels, value: r.sum, metricName: `${duration.name}_sum` },
            { labels, value: r.count, metricName: `${duration.name}_count` },
          ];
        }),
      ) as unknown as Parameters<Registry['registerMetric']>[0],
    );
  }
}

type AccessLog = ((id: string, method: string, url: string, status: number, ms: number, route: string, ip: string) => void) & { flush(done: () => void): void };

/**
 * The access log: one line per answered request at info level, in pino's line format. Lines carry
 * no headers, bodies or query strings, so they need no redaction; each is built by hand, since it is
 * the one log line every request pays for. Lines are gathered here and handed to the writer in
 * chunks of ~16 KiB, or ACCESS_FLUSH_MS after the first line of a chunk, whichever comes first (and
 * on close and at exit), each in one synchronous write: an asynchronous write to stdout is a
 * hand-off to libuv's thread pool, which on a busy two-core machine cost more than building the
 * lines (measured: ~12 µs per request with a write per 4 KiB through sonic-boom, which also
 * re-measures its growing buffer on every line). A stdout that stops reading stalls the server, as
 * it would with pino's default destination for any other line.
 * Tests pass their own stream (and wait up to ACCESS_FLUSH_MS for a line).
 */
export const ACCESS_FLUSH_MS = 100;
const ACCESS_CHUNK = 16 * 1024;

function accessLog(ctx: Ctx, opts: ServerOptions): AccessLog | null {
  const level = pino.levels.values[ctx.config.logLevel];
  if (opts.logger === false || level === undefined || level > pino.levels.values.info) return null;
  let dest: { write(s: string): unknown; flush?(cb?: (err?: Error) => void): void; flushSync?(): void };
  if (opts.logStream) dest = opts.logStream;
  else {
    // synchronous, like pino's own default destination (every other log line): a chunk is one
    // write(2) on this thread, where an asynchronous one is a hand-off to the thread pool and back
    const boom = pino.destination({ dest: 1, sync: true });
    process.once('exit', () => {
      try {
        drain();
        boom.flushSync();
      } catch {
        // stdout already gone
      }
    });
    dest = boom;
  }
  let parts: string[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const drain = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (!parts.length) return;
    const chunk = parts.join('');
    parts = [];
    size = 0;
    dest.write(chunk);
  };
  const head = `{"level":30,"time":`;
  const tail = `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())},"reqId":`;
  const log = ((id: string, method: string, url: string, status: number, ms: number, route: string, ip: string) => {
    // the path without its query string: queries can carry signatures and passcodes
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const line = `${head}${Date.now()}${tail}${JSON.stringify(id)},"method":${JSON.stringify(method)},"path":${JSON.stringify(path)},"route":${JSON.stringify(route)},"status":${status},"ms":${Math.round(ms * 100) / 100},"ip":${JSON.stringify(ip)},"msg":"request"}\n`;
    parts.push(line);
    size += line.length;
    if (size >= ACCESS_CHUNK) drain();
    else if (!timer) (timer = setTimeout(drain, ACCESS_FLUSH_MS)).unref();
  }) as AccessLog;
  log.flush = (done) => {
    drain();
    if (typeof dest.flush === 'function') dest.flush(() => done());
    else done();
  };
  return log;
}

/** The client address as Fastify gives it: the socket's, or with MENHU_TRUST_PROXY the first X-Forwarded-For entry. */
function clientAddress(req: IncomingMessage, trustProxy: boolean): string {
  if (trustProxy) {
    const xff = req.headers['x-forwarded-for'];
    const first = (Array.isArray(xff) ? xff[0] : xff)?.split(',')[0]?.trim();
    if (first) return first;
  }
  return req.socket.remoteAddress ?? '';
}

/** A child logger that is only made when something is logged through it (methods on the prototype: nothing is allocated per request but the object). */
class LazyChild {
  #real: FastifyBaseLogger | undefined;
  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly childOpts: ChildLoggerOptions,
  ) {}
  private get real(): FastifyBaseLogger {
    return (this.#real ??= this.parent.child(this.bindings, this.childOpts));
  }
  get level(): string {
    return this.#real ? this.#real.level : this.parent.level;
  }
  set level(v: string) {
    this.real.level = v;
  }
  fatal(...a: Parameters<FastifyBaseLogger['fatal']>) {
    this.real.fatal(...a);
  }
  error(...a: Parameters<FastifyBaseLogger['error']>) {
    this.real.error(...a);
  }
  warn(...a: Parameters<FastifyBaseLogger['warn']>) {
    this.real.warn(...a);
  }
  info(...a: Parameters<FastifyBaseLogger['info']>) {
    this.real.info(...a);
  }
  debug(...a: Parameters<FastifyBaseLogger['debug']>) {
    this.real.debug(...a);
  }
  trace(...a: Parameters<FastifyBaseLogger['trace']>) {
    this.real.trace(...a);
  }
  silent(...a: Parameters<FastifyBaseLogger['silent']>) {
    this.real.silent(...a);
  }
  child(b: Bindings, o?: ChildLoggerOptions): FastifyBaseLogger {
    return this.real.child(b, o);
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry;
    nativeLane: NativeLane;
    routeList: { method: string; url: string; hidden: boolean }[];
  }
}
