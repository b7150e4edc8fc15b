import { AjvCompiler } from '@fastify/ajv-compiler';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { sql } from 'kysely';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { DestinationStream } from 'pino';
import type { Ctx } from './core/context.js';
import { requestRecorder } from './dialects/requests.js';
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
  const app = Fastify({
    logger: opts.logger === false ? false : { level: ctx.config.logLevel, redact: { paths: REDACT, censor: '[redacted]' }, ...(opts.logStream ? { stream: opts.logStream } : {}) },
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

  // --- metrics ---------------------------------------------------------------------------------
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
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    duration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });
  app.decorate('metrics', registry);
  app.addHook('onResponse', requestRecorder(ctx)); // the request log (services/usage): one buffered push per API request

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

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry;
    routeList: { method: string; url: string; hidden: boolean }[];
  }
}
