/** RFC 9457 problem+json for the native API: one wording for the Fastify routes and the fast lane. */
import { Type } from '@sinclair/typebox';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import { HTTP_STATUS } from '../../core/errors.js';
import { classify, type Classified } from '../http.js';

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.String({ description: 'stable symbolic error code' }),
    field: Type.Optional(Type.String()),
    request_id: Type.Optional(Type.String()),
  },
  { $id: 'Problem' },
);

export type Problem = ReturnType<typeof problem>;

export function problem(status: number, code: string, detail: string, extra: { field?: string; request_id?: string } = {}) {
  return {
    type: `https://menhu.dev/problems/${code.toLowerCase().replace(/_/g, '-')}`,
    title: code.replace(/_/g, ' ').toLowerCase(),
    status,
    detail,
    code,
    ...extra,
  };
}

/**
 * The problem a classified error is answered with, its symbolic code, and a Retry-After in seconds
 * where the error has one. Refusals are logged at info, unexpected errors at error with the request
 * id the client is given (`log` and `id` are called only when needed).
 */
export function problemOf(c: Classified, log: () => FastifyBaseLogger, id: () => string): { body: Problem; code: string; retryAfter?: number } {
  if (c.kind === 'domain') {
    const body = problem(HTTP_STATUS[c.error.code], c.error.code, c.error.message, c.error.field ? { field: c.error.field } : {});
    const retry = c.error.details?.retryAfterMs;
    log().info({ code: c.error.code, detail: c.error.message }, 'request refused');
    return { body, code: c.error.code, ...(typeof retry === 'number' ? { retryAfter: Math.max(1, Math.ceil(retry / 1000)) } : {}) };
  }
  if (c.kind === 'client') return { body: problem(c.status, c.code, c.message), code: c.code };
  log().error({ err: c.error }, 'unhandled error');
  return { body: problem(500, 'INTERNAL', 'internal error; quote the request id when reporting it', { request_id: id() }), code: 'INTERNAL' };
}

export function sendProblem(req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  const p = problemOf(
    classify(err, req),
    () => req.log,
    () => String(req.id),
  );
  if (p.retryAfter !== undefined) reply.header('retry-after', p.retryAfter);
  return reply.code(p.body.status).type('application/problem+json').send(p.body);
}
