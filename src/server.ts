import { AjvCompiler } from '@fastify/ajv-compiler';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { sql } from 'kysely';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { hostname } from 'node:os';
import { pino, type Bindings, type ChildLoggerOptions, type DestinationStream } from 'pino';
import type { Ctx } from './core/context.js';
import { REST_PREFIX, restDialect, sendProblem } from './dialects/rest/index.js';
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
  const app = Fastify({
    logger: opts.logger === false ? false : { ...logOpts, ...(opts.logStream ? { stream: opts.logStream } : {}) },
    // one access line per request (below) instead of Fastify's two
    logController: new LogController({ disableRequestLogging: true }),
    // req.log is made on first use: most requests never log beyond the access line
    childLoggerFactory: (logger, bindings, childOpts) => lazyChild(logger, bindings, childOpts),
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

  // --- metrics and the access log -------------------------------------------------------------
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'menhu_' });
  const requests = new Counter({ name: 'menhu_http_requests_total', help: 'HTTP requests', labelNames: ['method', 'route', 'status'], registers: [registry] });
  const duration = new Histogram({
    name: 'menhu_http_request_duration_seconds',
    help: 'HTTP request duration',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  // Labelled children are looked up once per (method, route, status), not hashed on every request.
  const counters = new Map<string, Counter.Internal>();
  const timers = new Map<string, Histogram.Internal<string>>();
  const access = accessLog(ctx, opts);
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const status = reply.statusCode;
    const ms = reply.elapsedTime;
    const rk = req.method + ' ' + route;
    const ck = rk + ' ' + status;
    let c = counters.get(ck);
    if (!c) counters.set(ck, (c = requests.labels(req.method, route, String(status))));
    c.inc();
    let h = timers.get(rk);
    if (!h) timers.set(rk, (h = duration.labels(req.method, route)));
    h.observe(ms / 1000);
    // The path without its query string: queries can carry signatures and passcodes.
    if (access) access(req, status, ms, route);
    done();
  });
  if (access) app.addHook('onClose', (_app, done) => access.flush(done));
  app.decorate('metrics', registry);

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

  await app.register(restDialect, { prefix: REST_PREFIX, ctx });
  for (const m of MODULES) if (m.mount) await m.mount(app, ctx);

  return app;
}

type AccessLog = ((req: FastifyRequest, status: number, ms: number, route: string) => void) & { flush(done: () => void): void };

/**
 * The access log: one line per answered request at info level, in pino's line format, on its own
 * buffered stdout writer (lines leave in 4 KiB writes instead of one write each; flushed on close
 * and at exit). Lines carry no headers, bodies or query strings, so they need no redaction. The
 * line is written by hand: it is the one log line every request pays for. Tests pass their stream.
 */
function accessLog(ctx: Ctx, opts: ServerOptions): AccessLog | null {
  const level = pino.levels.values[ctx.config.logLevel];
  if (opts.logger === false || level === undefined || level > pino.levels.values.info) return null;
  let dest: { write(s: string): unknown; flush?(cb?: (err?: Error) => void): void; flushSync?(): void };
  if (opts.logStream) dest = opts.logStream;
  else {
    const boom = pino.destination({ dest: 1, sync: false, minLength: 4096 });
    process.once('exit', () => {
      try {
        boom.flushSync();
      } catch {
        // stdout already gone
      }
    });
    dest = boom;
  }
  const head = `{"level":30,"time":`;
  const tail = `,"pid":${process.pid},"hostname":${JSON.stringify(hostname())},"reqId":`;
  const log = ((req: FastifyRequest, status: number, ms: number, route: string) => {
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    dest.write(
      `${head}${Date.now()}${tail}${JSON.stringify(req.id)},"method":"${req.method}","path":${JSON.stringify(path)},"route":${JSON.stringify(route)},"status":${status},"ms":${Math.round(ms * 100) / 100},"ip":${JSON.stringify(req.ip)},"msg":"request"}\n`,
    );
  }) as AccessLog;
  log.flush = (done) => {
    if (typeof dest.flush === 'function') dest.flush(() => done());
    else done();
  };
  return log;
}

/** A child logger that is only made when something is logged through it. */
function lazyChild(parent: FastifyBaseLogger, bindings: Bindings, childOpts: ChildLoggerOptions): FastifyBaseLogger {
  let real: FastifyBaseLogger | undefined;
  const get = () => (real ??= parent.child(bindings, childOpts));
  return {
    get level() {
      return real ? real.level : parent.level;
    },
    set level(v: string) {
      get().level = v;
    },
    fatal: (...a: Parameters<FastifyBaseLogger['fatal']>) => get().fatal(...a),
    error: (...a: Parameters<FastifyBaseLogger['error']>) => get().error(...a),
    warn: (...a: Parameters<FastifyBaseLogger['warn']>) => get().warn(...a),
    info: (...a: Parameters<FastifyBaseLogger['info']>) => get().info(...a),
    debug: (...a: Parameters<FastifyBaseLogger['debug']>) => get().debug(...a),
    trace: (...a: Parameters<FastifyBaseLogger['trace']>) => get().trace(...a),
    silent: (...a: Parameters<FastifyBaseLogger['silent']>) => get().silent(...a),
    child: (b: Bindings, o?: ChildLoggerOptions) => get().child(b, o),
  } as FastifyBaseLogger;
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry;
    routeList: { method: string; url: string; hidden: boolean }[];
  }
}
