/** Small HTTP helpers shared by the dialect adapters (no domain logic here). */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { isDomainError, type DomainError } from '../core/errors.js';

/** The client address (Fastify honours MENHU_TRUST_PROXY for X-Forwarded-For). */
export const clientIp = (req: FastifyRequest): string => req.ip;

export const header = (req: FastifyRequest, name: string): string | undefined => {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};

/** What kind of failure an error thrown inside a handler is, before a dialect words it. */
export type Classified =
  | { kind: 'domain'; error: DomainError }
  | { kind: 'client'; status: number; message: string; code: string } // malformed body, too large, bad media type, schema
  | { kind: 'internal'; error: unknown };

export function classify(err: unknown): Classified {
  if (isDomainError(err)) return { kind: 'domain', error: err };
  const fe = err as FastifyError & { validation?: unknown };
  if (fe && typeof fe === 'object') {
    if (fe.validation) return { kind: 'client', status: 400, message: fe.message, code: 'VALIDATION' };
    const status = fe.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : status === 415 ? 'UNSUPPORTED_MEDIA' : 'BAD_REQUEST';
      return { kind: 'client', status, message: fe.message, code };
    }
  }
  return { kind: 'internal', error: err };
}

/** Logs an unexpected error with the request id and returns that id for the client. */
export function logInternal(req: FastifyRequest, err: unknown): string {
  req.log.error({ err }, 'unhandled error');
  return String(req.id);
}

export function sendText(reply: FastifyReply, status: number, body: string, type = 'text/plain; charset=utf-8'): FastifyReply {
  return reply.code(status).type(type).send(body);
}
