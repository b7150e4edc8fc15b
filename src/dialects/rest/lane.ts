/**
 * The native API's fast lane: plain reads (GET, no path parameters, no query schema, no body) that
 * an app calls with its API key — bearer `<key>.<secret>` or an HMAC-signed request — are answered
 * on node:http before Fastify, with the same bytes the Fastify route sends.
 *
 * A read is declared once, with `lane.read(app, path, opts, handler)`: that registers the ordinary
 * Fastify route (validation, OpenAPI, sessions, inject) and enters the same handler and response
 * schema in the lane. The lane takes a request only when it is sure to answer it exactly as the
 * route would — the request carries API credentials and no cookie, no body, and its path is a
 * registered read spelled exactly — and then answers everything, refusals included: credentials are
 * checked by the same core/credentials code (nonces consumed, rate limits counted once), errors go
 * through the same problem+json wording (problemOf), the response through a serializer compiled
 * from the route's own schema, and the request is recorded in metrics, the access log and the
 * request log like any other. Everything else (sessions, HEAD, odd spellings) is left to Fastify.
 *
 * Why: Fastify's per-request machinery (hooks, request/reply objects, the lazy route config) costs
 * more than all of a signed read's own work (HMAC, nonce, rate limit, one indexed read).
 */
import type { TSchema } from '@sinclair/typebox';
import fastJson from 'fast-json-stringify';
import type { FastifyBaseLogger, FastifyInstance, RouteShorthandOptions } from 'fastify';
import type { Ctx } from '../../core/context.js';
import { verifyNative, type CallInfo } from '../../core/credentials/verify.js';
import type { FastHandler } from '../../module.js';
import { recorder } from '../../services/usage/index.js';
import { appPrincipal, notLoggedIn, requirePrincipal, type Principal } from './auth.js';
import { classify } from '../http.js';
import { apiEvent } from '../events.js';
import { problemOf, ProblemSchema } from './problem.js';

export type ReadHandler = (p: Principal) => Promise<unknown> | unknown;

interface Read {
  route: string;
  handler: ReadHandler;
  serialize: (body: unknown) => string;
}

const EMPTY = Buffer.alloc(0);
const JSON_TYPE = 'application/json; charset=utf-8';
const PROBLEM_TYPE = 'application/problem+json; charset=utf-8';

export class NativeLane {
  private readonly reads = new Map<string, Read>();
  private prefix: string | undefined;
  /** Requests the lane has answered (tests check that it takes what it should). */
  answered = 0;

  /**
   * Registers GET `path` on the (prefixed) Fastify instance `app` and enters it in the lane. The
   * schema's 200 response is what the lane serializes with; the options may carry tags, summary and
   * other responses, but no querystring or params (the lane would not validate them).
   */
  read(app: FastifyInstance, path: string, opts: RouteShorthandOptions & { schema: { response: { 200: TSchema } } }, handler: ReadHandler): void {
    const s = opts.schema as unknown as Record<string, unknown>;
    if (s.querystring || s.params || path.includes(':') || path.includes('*')) throw new Error(`lane reads take no parameters: ${path}`);
    const route = app.prefix + path;
    if (this.prefix !== undefined && this.prefix !== app.prefix) throw new Error(`lane reads live under one prefix (${this.prefix}): ${route}`);
    this.prefix = app.prefix;
    app.get(path, opts, (req) => handler(requirePrincipal(req)));
    this.reads.set(route, { route, handler, serialize: fastJson(opts.schema.response[200] as unknown as Parameters<typeof fastJson>[0]) });
  }

  /** The raw handler server.ts runs before Fastify (see Module.fast). */
  handler(ctx: Ctx, log: () => FastifyBaseLogger): FastHandler {
    const serializeProblem = fastJson(ProblemSchema as unknown as Parameters<typeof fastJson>[0]);
    const rec = recorder(ctx);
    const answer = async (read: Read, req: Parameters<FastHandler>[0], res: Parameters<FastHandler>[1], path: string, query: string, ip: string, id: () => string): Promise<string> => {
      const t0 = performance.now();
      const call: CallInfo = { ip };
      let status = 200;
      let type = JSON_TYPE;
      let body: string;
      let code: string | null = null;
      let principal: Principal | undefined;
      let retryAfter: number | undefined;
      try {
        const app = await verifyNative(ctx, { method: 'GET', path, query, body: EMPTY, headers: req.headers }, call);
        if (!app) throw notLoggedIn();
        principal = appPrincipal(app);
        body = read.serialize(await read.handler(principal));
      } catch (err) {
        const p = problemOf(classify(err), () => log().child({ reqId: id() }), id);
        status = p.body.status;
        type = PROBLEM_TYPE;
        body = serializeProblem(p.body);
        code = p.code;
        retryAfter = p.retryAfter;
      }
      const headers: Record<string, string | number> = { 'content-type': type, 'content-length': Buffer.byteLength(body) };
      if (retryAfter !== undefined) headers['retry-after'] = retryAfter;
      res.writeHead(status, headers);
      res.end(body);
      this.answered++;
      rec.push(apiEvent(ctx.clock.now(), { service: 'native', method: 'GET', route: read.route, status, elapsedMs: performance.now() - t0, ip, code, app: call.app, principal }));
      return read.route;
    };
    return (req, res, ip, id) => {
      const url = req.url!;
      if (req.method !== 'GET' || this.prefix === undefined || !url.startsWith(this.prefix)) return null;
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      const read = this.reads.get(path);
      if (!read) return null;
      const h = req.headers;
      // a session (cookie, or a bearer token without a dot) and any body go to the framework
      if (h.cookie !== undefined || h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0')) return null;
      const auth = h.authorization;
      if (auth !== undefined) {
        if (!/^Bearer\s+[^\s.]+\.\S/i.test(auth)) return null;
      } else if (h['x-menhu-key'] === undefined) return null;
      return answer(read, req, res, path, q < 0 ? '' : url.slice(q + 1), ip(), id);
    };
  }
}
