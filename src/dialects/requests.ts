/**
 * The HTTP side of the request log (services/usage): one onResponse hook that turns each answered
 * request on an API surface into a small event and pushes it into the in-process buffer.
 *
 * Which surface a request belongs to follows from its route pattern, classified once per route;
 * the app comes from the credential path (core/credentials admit() sets it on the request's
 * CallInfo) or from the native API's principal; the error code from classify() in every dialect's
 * error mapping. Nothing here reads a header, the query string or the body, so nothing secret can
 * reach the log.
 */
import type { FastifyReply, FastifyRequest, onResponseHookHandler } from 'fastify';
import type { Ctx } from '../core/context.js';
import { recorder } from '../services/usage/index.js';
import { apiEvent } from './events.js';
import { CLI_PATH } from './cli/index.js';
import { FANGTANG_PREFIX } from './fangtang/index.js';
import { OPS as MININGLAMP_OPS } from './mininglamp/index.js';
import { REST_PREFIX } from './rest/index.js';

/** Path prefixes of the Ulord dialect (mounted under /v1). */
const ULORD_PREFIX = '/v1';
const BQP_PATTERNS = new Set(['/', '/:call', '/:call/:a', '/:call/:a/:b']);

/** The surface a path (a route pattern, or a raw path for unmatched requests) belongs to; null for pages, assets, metrics. */
export function surfaceOf(path: string, bqpPrefix: string): string | null {
  const under = (p: string) => path === p || path.startsWith(p + '/');
  if (under(REST_PREFIX)) return path.startsWith(REST_PREFIX + '/docs') ? null : 'native';
  if (path === CLI_PATH) return 'cli';
  if (under(FANGTANG_PREFIX)) return 'fangtang';
  if (under(ULORD_PREFIX)) return 'ulord';
  if (MININGLAMP_OPS.some((op) => under(`/api/v1/${op}`))) return 'mininglamp';
  // BQP answers `<prefix>/`, `<prefix>/:call`, `<prefix>/:call/:a`, `<prefix>/:call/:a/:b`
  const bqp = bqpPrefix.replace(/\/+$/, '');
  if (BQP_PATTERNS.has(path.slice(bqp.length)) && path.startsWith(bqp)) return 'bqp';
  return bqp && under(bqp) && !path.includes('/:') ? 'bqp' : null;
}

/** The onResponse hook that records requests (server.ts adds it with one line). */
export function requestRecorder(ctx: Ctx): onResponseHookHandler {
  const rec = recorder(ctx);
  const bqpPrefix = ctx.config.bqpPrefix;
  // route config object (one per route) → surface, classified on first use
  const surfaces = new WeakMap<object, string | null>();
  const clock = ctx.clock;
  return function recordRequest(req: FastifyRequest, reply: FastifyReply, done: () => void): void {
    const cfg = req.routeOptions.config as { url?: string };
    let route = cfg.url;
    let service: string | null | undefined;
    if (route === undefined) {
      // no route took it (404): classify the path itself, record it as unmatched
      const q = req.url.indexOf('?');
      service = surfaceOf(q < 0 ? req.url : req.url.slice(0, q), bqpPrefix);
      route = '(unmatched)';
    } else {
      service = surfaces.get(cfg);
      if (service === undefined) surfaces.set(cfg, (service = surfaceOf(route, bqpPrefix)));
    }
    if (service !== null) {
      const call = req.callInfo;
      rec.push(
        apiEvent(clock.now(), {
          service,
          method: req.method,
          route,
          status: reply.statusCode,
          elapsedMs: reply.elapsedTime,
          ip: call ? call.ip : req.ip,
          code: req.errorCode ?? null,
          app: call?.app,
          principal: req.principal,
        }),
      );
    }
    done();
  };
}
