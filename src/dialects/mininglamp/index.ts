/**
 * MiningLamp report verification dialect (seed 000, SPEC §3):
 *   POST /api/v1/{generateqr,getqrlink,commitreport,updatereport,recallreport}/<report_id>
 * Form fields `user` + `passcode` (urlencoded or multipart), report metadata title/type/period/geom,
 * the file in `file` or `files`. Results travel in the status line: status N with reason phrase
 * NAME, and the body `N NAME` (text/html; charset=utf-8), e.g. `501 DATA_ALREADY_EXIST`.
 */
import { createHash } from 'node:crypto';
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../../core/context.js';
import type { App } from '../../core/credentials/apps.js';
import { verifyPasscode } from '../../core/credentials/verify.js';
import type { ErrorCode } from '../../core/errors.js';
import { findLinkByTarget, shortUrl } from '../../services/links/index.js';
import { coverQr } from '../../services/reports/stamp.js';
import { checkReportId, recallReport, registerReport, type ReportFile } from '../../services/reports/index.js';
import { callInfo, classify, etagMatches, logInternal } from '../http.js';

export const OPS = ['generateqr', 'getqrlink', 'commitreport', 'updatereport', 'recallreport'] as const;
export type Op = (typeof OPS)[number];

/** One wire result: HTTP status and the reason phrase that names it. */
export interface Wire {
  status: number;
  name: string;
}

const w = (status: number, name: string): Wire => ({ status, name });

/** Symbolic domain errors → MiningLamp wire results. The only place that knows these codes. */
const ERRORS: Partial<Record<ErrorCode, Wire>> = {
  KEY_MISSING: w(400, 'NO_USERNAME'),
  SECRET_MISSING: w(400, 'NO_PASSCODE'),
  KEY_UNKNOWN: w(400, 'INVALID_USERNAME'),
  SECRET_INVALID: w(400, 'INVALID_PASSCODE'),
  // not in the document: menhu's own names for what every app carries
  APP_BLOCKED: w(403, 'USER_BLOCKED'),
  APP_EXPIRED: w(403, 'USER_EXPIRED'),
  IP_FORBIDDEN: w(403, 'IP_FORBIDDEN'),
  SERVICE_DISABLED: w(403, 'SERVICE_DISABLED'),
  RATE_LIMITED: w(429, 'RATE_LIMITED'),
  REPORT_EXISTS: w(501, 'DATA_ALREADY_EXIST'),
  REPORT_RECALLED: w(501, 'ALREADY_RECALLED'),
  METADATA_MISMATCH: w(400, 'METADATA_NOT_MATCHED'),
  NOT_FOUND: w(501, 'DATA_NOT_EXIST'),
  PAYLOAD_TOO_LARGE: w(413, 'FILE_TOO_LARGE'),
  UNSUPPORTED_MEDIA: w(415, 'UNSUPPORTED_MEDIA_TYPE'),
  BAD_REQUEST: w(400, 'BAD_REQUEST'),
  UNAVAILABLE: w(503, 'SERVICE_UNAVAILABLE'),
};

/** VALIDATION errors are told apart by the field they name. */
function validationWire(field: string | undefined): Wire {
  if (field === 'report_id') return w(400, 'INVALID_REPORT_ID');
  if (field === 'file') return w(400, 'NO_FILE_PROVIDED');
  return w(400, 'METADATA_NOT_COMPLETE');
}

export const OK_UPDATED = w(200, 'DATA_UPDATED');
export const OK_RECALLED = w(200, 'DATA_RECALLED');
export const QR_LINK_NOT_FOUND = w(404, 'QR_LINK_NOT_FOUND');
const INTERNAL = w(500, 'INTERNAL_ERROR');

/** Answers `N NAME` with NAME as the reason phrase of the status line. */
export function sendWire(reply: FastifyReply, r: Wire): FastifyReply {
  reply.raw.statusMessage = r.name;
  return reply.code(r.status).type('text/html; charset=utf-8').send(`${r.status} ${r.name}`);
}

export function wireOf(err: unknown, req: FastifyRequest): Wire {
  const c = classify(err, req);
  if (c.kind === 'domain') {
    if (c.error.code === 'VALIDATION') return validationWire(c.error.field);
    return ERRORS[c.error.code] ?? INTERNAL;
  }
  if (c.kind === 'client') return c.status === 413 ? ERRORS.PAYLOAD_TOO_LARGE! : c.status === 415 ? ERRORS.UNSUPPORTED_MEDIA! : w(400, 'BAD_REQUEST');
  logInternal(req, c.error);
  return INTERNAL;
}

/** What a request carried: text fields and at most one report file. */
export interface Parsed {
  fields: Record<string, string>;
  file: ReportFile | null;
}

const FILE_FIELDS = new Set(['file', 'files']);
const MAX_FIELD = 64 * 1024;

async function parseBody(req: FastifyRequest): Promise<Parsed> {
  const fields: Record<string, string> = {};
  let file: ReportFile | null = null;
  if (req.isMultipart()) {
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        if (!file && FILE_FIELDS.has(part.fieldname)) file = { data: await part.toBuffer(), name: part.filename, contentType: part.mimetype };
        else part.file.resume();
      } else if (!(part.fieldname in fields)) fields[part.fieldname] = String(part.value ?? '');
    }
  } else if (req.body && typeof req.body === 'object') {
    for (const [k, v] of Object.entries(req.body as Record<string, unknown>)) {
      const one = Array.isArray(v) ? v[0] : v;
      if (typeof one === 'string' || typeof one === 'number') fields[k] = String(one);
    }
  }
  return { fields, file };
}

/** What an operation handler gets once the caller is authenticated. */
export interface OpCall {
  ctx: Ctx;
  app: App;
  reportId: string;
  body: Parsed;
  req: FastifyRequest;
  reply: FastifyReply;
}

export type OpHandler = (call: OpCall) => Promise<FastifyReply>;

const metaOf = (f: Record<string, string>) => ({ title: f.title, type: f.type, period: f.period, geom: f.geom });

const QR_MAX_AGE = 43200;

function httpDate(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toUTCString();
}

const handlers: Record<Op, OpHandler> = {
  async generateqr({ ctx, app, reportId, req, reply }) {
    const { link, png } = await coverQr(ctx, app.tenantId, reportId);
    const etag = `"${createHash('sha256').update(png).digest('hex').slice(0, 32)}"`;
    const lastModified = httpDate(link.createdAt);
    reply
      .header('cache-control', `public, max-age=${QR_MAX_AGE}`)
      .header('expires', httpDate(ctx.clock.now() + QR_MAX_AGE * 1000))
      .header('etag', etag)
      .header('last-modified', lastModified);
    const inm = req.headers['if-none-match'];
    const ims = req.headers['if-modified-since'];
    if (inm !== undefined ? etagMatches(inm, etag) : ims !== undefined && Date.parse(ims) >= Date.parse(lastModified)) return reply.code(304).send();
    return reply.code(200).type('image/png').send(png);
  },
  async getqrlink({ ctx, app, reportId, reply }) {
    checkReportId(reportId);
    const link = await findLinkByTarget(ctx, app.tenantId, 'report', reportId);
    if (!link) return sendWire(reply, QR_LINK_NOT_FOUND);
    return reply.code(200).type('text/html; charset=utf-8').send(shortUrl(ctx, link.code));
  },
  async commitreport({ ctx, app, reportId, body, reply }) {
    await registerReport(ctx, { tenantId: app.tenantId, reportId, mode: 'commit', meta: metaOf(body.fields), file: body.file });
    return sendWire(reply, OK_UPDATED);
  },
  async updatereport({ ctx, app, reportId, body, reply }) {
    await registerReport(ctx, { tenantId: app.tenantId, reportId, mode: 'update', meta: metaOf(body.fields), file: body.file });
    return sendWire(reply, OK_UPDATED);
  },
  async recallreport({ ctx, app, reportId, body, reply }) {
    await recallReport(ctx, { tenantId: app.tenantId, reportId, meta: metaOf(body.fields) });
    return sendWire(reply, OK_RECALLED);
  },
};

export async function mountMiningLamp(app: FastifyInstance, ctx: Ctx): Promise<void> {
  await app.register(async (sub) => {
    await sub.register(multipart, {
      limits: { fileSize: ctx.config.uploadLimit, files: 4, fields: 32, fieldSize: MAX_FIELD, parts: 40, headerPairs: 200 },
    });
    sub.setErrorHandler((err, req, reply) => sendWire(reply, wireOf(err, req)));
    for (const op of OPS) {
      sub.post<{ Params: { '*': string } }>(`/api/v1/${op}/*`, async (req, reply) => {
        const h = handlers[op];
        const body = await parseBody(req);
        const app = await verifyPasscode(ctx, body.fields.user, body.fields.passcode, callInfo(req));
        const reportId = req.params['*'] ?? '';
        return h({ ctx, app, reportId, body, req, reply });
      });
    }
  });
}
