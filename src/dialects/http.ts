/** Small HTTP helpers shared by the dialect adapters (no domain logic here). */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { CallInfo } from '../core/credentials/verify.js';
import { DomainError, isDomainError } from '../core/errors.js';

/** The client address (Fastify honours MENHU_TRUST_PROXY for X-Forwarded-For). */
export const clientIp = (req: FastifyRequest): string => req.ip;

declare module 'fastify' {
  interface FastifyRequest {
    /** What the credential path learnt of the caller (the app, once proved); read by the request log. */
    callInfo?: CallInfo;
    /** The symbolic error code the request failed with, noted by classify(); read by the request log. */
    errorCode?: string;
  }
}

/** Whether an If-None-Match header names this (strong, quoted) ETag, or is `*`; weak forms match too. */
export const etagMatches = (header: string | undefined, etag: string): boolean =>
  !!header && (header.trim() === '*' || header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag));

/** The CallInfo to hand to the core/credentials verify* functions: one per request, kept on it. */
export const callInfo = (req: FastifyRequest): CallInfo => (req.callInfo ??= { ip: clientIp(req) });

export const header = (req: FastifyRequest, name: string): string | undefined => {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
};

/** What kind of failure an error thrown inside a handler is, before a dialect words it. */
export type Classified =
  | { kind: 'domain'; error: DomainError }
  | { kind: 'client'; status: number; message: string; code: string } // malformed body, too large, bad media type, schema
  | { kind: 'internal'; error: unknown };

// Connection-level failures of a backing service (PostgreSQL restarting, a reset socket): the
// request failed because something is down, not because of a bug; every dialect words it as its
// UNAVAILABLE error instead of an internal error.
const DOWN_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', '57P01', '57P02', '57P03', '53300']);
const DOWN_MESSAGES = /^(Connection terminated|Client has encountered a connection error and is not queryable|Client was closed and is not queryable|timeout exceeded when trying to connect|Connection ended unexpectedly)/;

/** True when `err` says a backing service (database, blob store) could not be reached. */
export function isBackendDown(err: unknown): boolean {
  if (err instanceof AggregateError) return err.errors.some(isBackendDown);
  const e = err as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && (DOWN_CODES.has(e.code) || /^08[0-9A-Z]{3}$/.test(e.code))) return true;
  return typeof e.message === 'string' && DOWN_MESSAGES.test(e.message);
}

/** Classifies an error; given the request, notes its symbolic code there for the request log. */
export function classify(err: unknown, req?: FastifyRequest): Classified {
  const c = classifyError(err);
  if (req) req.errorCode = c.kind === 'domain' ? c.error.code : c.kind === 'client' ? c.code : 'INTERNAL';
  return c;
}

function classifyError(err: unknown): Classified {
  if (isDomainError(err)) return { kind: 'domain', error: err };
  if (isBackendDown(err)) return { kind: 'domain', error: new DomainError('UNAVAILABLE', 'a backing service is unreachable right now; try again shortly', { cause: err }) };
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
