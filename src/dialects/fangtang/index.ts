/**
 * The Fangtang dialect (seed 001): /api/third/photo/{upload,status,download} and
 * /api/third/company/nums. Header `token` = md5(secret + time) + "," + time (±300 s), parameters as
 * multipart form fields (as in the document's curl examples), urlencoded or JSON. Every answer is
 * HTTP 200 with `{code: 200, data}` or `{code: 9000, errno, msg}`.
 */
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../../core/context.js';
import { verifyFangtang } from '../../core/credentials/verify.js';
import { DomainError, type ErrorCode } from '../../core/errors.js';
import { getPhotoJob, jobFile, remainingUploads, resultOf, uploadPhoto } from '../../services/photos/index.js';
import { callInfo, classify, header, logInternal } from '../http.js';

export const FANGTANG_PREFIX = '/api/third';

const TOKEN_BAD: [number, string] = [9999, '请求参数token不合法'];

/** The one table from symbolic errors to the document's errno values. */
const ERRNO: Partial<Record<ErrorCode, [number, string]>> = {
  KEY_MISSING: TOKEN_BAD,
  SECRET_MISSING: TOKEN_BAD,
  KEY_UNKNOWN: TOKEN_BAD,
  SECRET_INVALID: TOKEN_BAD,
  SIGN_INVALID: TOKEN_BAD,
  TIMESTAMP_STALE: TOKEN_BAD,
  APP_BLOCKED: TOKEN_BAD,
  APP_EXPIRED: TOKEN_BAD,
  IP_FORBIDDEN: TOKEN_BAD,
  SERVICE_DISABLED: TOKEN_BAD,
  QUOTA_EXHAUSTED: [9101, '剩余下载次数为0'],
  VALIDATION: [9001, '传入参数错误'],
  BAD_REQUEST: [9001, '传入参数错误'],
  PAYLOAD_TOO_LARGE: [9001, '传入参数错误'],
  UNSUPPORTED_MEDIA: [9005, '文件上传类型不支持'],
  UNAVAILABLE: [9006, '上传失败'],
  PROCESSING_FAILED: [9009, '图片异常,处理失败'],
  NOT_FOUND: [9002, '图片不存在,请确认图片是否上传成功'],
  GONE: [9002, '数据已失效,请重新上传'],
};
const OTHER: [number, string] = [500, '其他错误'];

const ok = (data: unknown) => ({ code: 200, data });

/** Public URL of a job's stored file: …/photo/static/<mdf>/in.jpg or …/out.png. */
const fileUrl = (ctx: Ctx, mdf: string, key: string) => `${ctx.config.publicUrl}${FANGTANG_PREFIX}/photo/static/${mdf}/${key.slice(key.lastIndexOf('/') + 1)}`;

function errorBody(code: ErrorCode, detail?: string): { code: 9000; errno: number; msg: string } {
  const [errno, msg] = ERRNO[code] ?? OTHER;
  // Parameter errors say which parameter and why; the others keep the document's words.
  return { code: 9000, errno, msg: errno === 9001 && detail ? `${msg}: ${detail}` : msg };
}

interface Params {
  fields: Record<string, string>;
  file: Buffer | null;
}

/** Reads the request's parameters from multipart, urlencoded or JSON bodies (and the query). */
async function readParams(req: FastifyRequest): Promise<Params> {
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries((req.query as Record<string, unknown>) ?? {})) if (typeof v === 'string') fields[k] = v;
  let file: Buffer | null = null;
  if (req.isMultipart()) {
    for await (const part of req.parts()) {
      if (part.type === 'file') {
        const data = await part.toBuffer();
        if (part.fieldname === 'file' && !file) file = data;
      } else if (typeof part.value === 'string') fields[part.fieldname] = part.value;
    }
  } else if (req.body && typeof req.body === 'object') {
    for (const [k, v] of Object.entries(req.body as Record<string, unknown>)) if (typeof v === 'string' || typeof v === 'number') fields[k] = String(v);
  }
  return { fields, file };
}

export async function fangtangDialect(app: FastifyInstance, opts: { ctx: Ctx }): Promise<void> {
  const { ctx } = opts;
  const cfg = ctx.config.photos;
  await app.register(multipart, { limits: { fileSize: cfg.maxBytes, files: 1, fields: 20, fieldSize: 16 * 1024, parts: 24 } });
  // Files are only read by multipart; other bodies stay small.
  app.addContentTypeParser('*', { bodyLimit: 64 * 1024, parseAs: 'buffer' }, (_req, _body, done) => done(null, undefined));

  app.setErrorHandler((err, req, reply) => {
    const c = classify(err, req);
    if (c.kind === 'domain') return reply.code(200).send(errorBody(c.error.code, c.error.message));
    if (c.kind === 'client') return reply.code(200).send(errorBody(c.code as ErrorCode, c.message));
    logInternal(req, err);
    return reply.code(200).send({ code: 9000, errno: OTHER[0], msg: OTHER[1] });
  });

  const authed = async (req: FastifyRequest) => {
    const p = await readParams(req);
    const appRow = await verifyFangtang(ctx, p.fields.third_code, header(req, 'token'), callInfo(req));
    return { ...p, app: appRow };
  };

  app.post('/photo/upload', async (req) => {
    const { fields, file, app: a } = await authed(req);
    const up = await uploadPhoto(ctx, { tenantId: a.tenantId, appId: a.id, repairType: fields.repair_type, rgb: fields.rgb, file });
    return ok({ img_url: fileUrl(ctx, up.mdf, up.inputKey), mdf: up.mdf });
  });

  app.post('/photo/status', async (req) => {
    const { fields, app: a } = await authed(req);
    const job = await getPhotoJob(ctx, a.tenantId, fields.mdf);
    if (job.state === 'failed') throw new DomainError('PROCESSING_FAILED', 'processing this image failed; the upload was not charged');
    const done = job.state === 'done';
    return ok({ msg: done ? '图片处理完成' : '图片处理中', status: done ? 200 : 100, progress: done ? 100 : Math.floor(job.progress * 100) });
  });

  app.post('/photo/download', async (req) => {
    const { fields, app: a } = await authed(req);
    const job = await resultOf(ctx, a.tenantId, fields.mdf);
    return ok({ url: fileUrl(ctx, job.mdf, job.resultKey) });
  });

  app.post('/company/nums', async (req) => {
    const { fields, app: a } = await authed(req);
    return ok({ code: fields.third_code, nums: await remainingUploads(ctx, a.tenantId) });
  });

  // The stored upload and the result, by their unguessable job id, while they are kept.
  app.get('/photo/static/:mdf/:file', async (req: FastifyRequest<{ Params: { mdf: string; file: string } }>, reply: FastifyReply) => {
    const { mdf, file } = req.params;
    const which = file.split('.')[0];
    const f = which === 'in' || which === 'out' ? await jobFile(ctx, mdf, which) : null;
    if (!f) return reply.code(404).type('text/plain; charset=utf-8').send('not found');
    const { body } = await ctx.blobs.stream(f.key);
    return reply.type(f.type).header('cache-control', 'private, max-age=3600').send(body);
  });
}
