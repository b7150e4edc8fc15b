/**
 * cli.im dialect (seed 002): POST /cli-open-platform-service/v1/dynamicQrcode/dynamicSingleCreate.
 * JSON in, `{data, code, message}` out, always HTTP 200 (the result is in `code`).
 * Errors: 400 bad format, 40000 busy (incl. the 20 req/s per client IP limit), 40001 bad parameter,
 * 40004 bad sign; the message is the document's text, then what exactly is wrong.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../../core/context.js';
import { verifyCliSign } from '../../core/credentials/verify.js';
import { DomainError, type ErrorCode } from '../../core/errors.js';
import { checkValues, createRecordGrouped, recordUrl, signedQrUrl, templateForApi } from '../../services/codes/index.js';
import { callInfo, classify, clientIp, logInternal } from '../http.js';

export const CLI_PATH = '/cli-open-platform-service/v1/dynamicQrcode/dynamicSingleCreate';
export const CLI_IP_LIMIT = 20;

const MESSAGES = { 0: '操作成功', 400: '请求的数据格式不符!', 40000: '系统繁忙,请稍后再试', 40001: '参数错误', 40004: '签名错误' } as const;
type CliCode = keyof typeof MESSAGES;

/** The one table from domain errors to cli.im codes. */
const WIRE: Record<ErrorCode, CliCode> = {
  KEY_MISSING: 40001,
  SECRET_MISSING: 40004,
  KEY_UNKNOWN: 40001,
  SECRET_INVALID: 40004,
  SIGN_INVALID: 40004,
  TIMESTAMP_STALE: 40004,
  NONCE_REPLAYED: 40004,
  APP_BLOCKED: 40001,
  APP_EXPIRED: 40001,
  IP_FORBIDDEN: 40001,
  SERVICE_DISABLED: 40001,
  RATE_LIMITED: 40000,
  QUOTA_EXHAUSTED: 40000,
  NOT_LOGGED_IN: 40001,
  FORBIDDEN: 40001,
  USER_BLOCKED: 40001,
  USER_EXISTS: 40001,
  EMAIL_EXISTS: 40001,
  USER_UNKNOWN: 40001,
  PASSWORD_INVALID: 40004,
  LOCKED: 40000,
  BAD_REQUEST: 400,
  VALIDATION: 40001,
  NOT_FOUND: 40001,
  CONFLICT: 40001,
  HAS_DEPENDENTS: 40001,
  PAYLOAD_TOO_LARGE: 400,
  UNSUPPORTED_MEDIA: 400,
  GONE: 40001,
  UNAVAILABLE: 40000,
  INSUFFICIENT_FUNDS: 40000,
  MISSING_FIELD: 40001,
  CONTENT_UNKNOWN: 40001,
  NOT_PURCHASED: 40001,
  PAYMENT_REFUSED: 40001,
  PROCESSING_FAILED: 40001,
  UNKNOWN_FIELD: 40001,
  DB_ERROR: 40000,
  ABORTED: 40000,
  INTERNAL: 40000,
  REPORT_EXISTS: 40001,
  REPORT_RECALLED: 40001,
  METADATA_MISMATCH: 40001,
};

const answer = (reply: FastifyReply, code: CliCode, detail?: string, data: unknown = null) =>
  reply.code(200).type('application/json; charset=utf-8').send({ data, code, message: detail ? `${MESSAGES[code]}: ${detail}` : MESSAGES[code] });

function sendError(req: FastifyRequest, reply: FastifyReply, err: unknown): FastifyReply {
  const c = classify(err, req);
  if (c.kind === 'domain') {
    const code = WIRE[c.error.code];
    req.log.info({ code: c.error.code, detail: c.error.message }, 'cli.im request refused');
    // a busy answer says no more than that; everything else says what is wrong
    return answer(reply, code, code === 40000 && c.error.code !== 'RATE_LIMITED' ? undefined : c.error.message);
  }
  if (c.kind === 'client') return answer(reply, 400, c.message);
  logInternal(req, c.error);
  return answer(reply, 40000);
}

const isStr = (v: unknown): v is string => typeof v === 'string';

export async function cliDialect(app: FastifyInstance, opts: { ctx: Ctx }): Promise<void> {
  const { ctx } = opts;
  app.setErrorHandler((err, req, reply) => sendError(req, reply, err));
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body: string, done) => {
    try {
      done(null, JSON.parse(body));
    } catch {
      done(new DomainError('BAD_REQUEST', 'the body is not valid JSON'), undefined);
    }
  });
  app.addContentTypeParser('*', (_req, _payload, done) => done(new DomainError('BAD_REQUEST', 'Content-Type must be application/json'), undefined));

  // 20 requests per second per client address, counted before anything else (bad requests count too).
  app.addHook('onRequest', async (req) => {
    const r = await ctx.limits.hit(`cli-ip:${clientIp(req)}`, CLI_IP_LIMIT, 1000);
    if (!r.allowed) throw new DomainError('RATE_LIMITED', `more than ${CLI_IP_LIMIT} requests per second from this address`, { details: { retryAfterMs: r.resetMs } });
  });

  app.post(CLI_PATH, async (req, reply) => {
    const body = req.body as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw new DomainError('BAD_REQUEST', 'the body must be a JSON object');
    for (const k of ['template_num', 'api_key', 'sign'] as const) {
      if (body[k] === undefined || body[k] === null || body[k] === '') throw new DomainError(k === 'sign' ? 'SIGN_INVALID' : 'VALIDATION', `${k} is required`, { field: k });
      if (!isStr(body[k])) throw new DomainError('BAD_REQUEST', `${k} must be a string`, { field: k });
    }
    if (body.values === undefined) throw new DomainError('VALIDATION', 'values is required', { field: 'values' });
    // values may also come as a string holding the JSON array (the document's type column says string)
    let values = body.values;
    if (isStr(values)) {
      try {
        values = JSON.parse(values);
      } catch {
        throw new DomainError('BAD_REQUEST', 'values must be a JSON array', { field: 'values' });
      }
    }
    if (!Array.isArray(values)) throw new DomainError('BAD_REQUEST', 'values must be an array', { field: 'values' });
    const caller = await verifyCliSign(ctx, body, callInfo(req));
    const t = await templateForApi(ctx, caller, body.template_num);
    const rec = await createRecordGrouped(ctx, t, checkValues(t.fields, values), `api:${caller.id}`);
    return answer(reply, 0, undefined, { web_url: recordUrl(ctx, rec), qrstyle_url: await signedQrUrl(ctx, rec.code) });
  });

}
