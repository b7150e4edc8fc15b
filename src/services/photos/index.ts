/**
 * Photo restoration jobs: upload (checked, stored, one unit of the tenant's 'fangtang' quota held),
 * processing in a child process (pool.ts → processors.ts), status, download, and deletion of
 * inputs and results an hour after the job ends. A unit is spent only when the job succeeds: the
 * hold is committed in the transaction that marks the job done and refunded in the one that marks
 * it failed (after its retry) or expired.
 */
import type { Kysely } from 'kysely';
import sharp, { type Metadata } from 'sharp';
import type { Ctx } from '../../core/context.js';
import type { DB } from '../../core/db/index.js';
import { DomainError } from '../../core/errors.js';
import type { Job, JobHandler } from '../../core/jobs/index.js';
import { commitQuota, refundQuota, remainingQuota, reserveQuota } from '../../core/limits/quotas.js';
import { PhotoPool } from './pool.js';
import type { ProcessOptions } from './processors.js';
import type { PhotoJobTable } from './schema.js';
import { parseRecipe, parseSteps, type Recipe } from './steps.js';

export { parseRecipe, parseRgb, parseSteps } from './steps.js';

export const QUOTA_SERVICE = 'fangtang';
export const JOB_KIND = 'photos.process';
/** How often a job's progress moves (one write each) while its child is inside a run that reports nothing. */
const PROGRESS_TICK_MS = 500;

/** Formats accepted for upload, with the extension and type their stored copy gets. */
const FORMATS: Record<string, { ext: string; type: string }> = {
  jpeg: { ext: 'jpg', type: 'image/jpeg' },
  png: { ext: 'png', type: 'image/png' },
  webp: { ext: 'webp', type: 'image/webp' },
};

export interface PhotoJobView {
  mdf: string;
  /** queued | running | done | failed */
  state: string;
  progress: number;
  repairType: string;
  inputKey: string;
  inputType: string;
  resultKey: string | null;
  resultType: string | null;
  createdAt: number;
  finishedAt: number | null;
  expiresAt: number | null;
}

const pools = new WeakMap<Ctx, PhotoPool>();

/** The process pool of this platform (created on first use). */
export function photoPool(ctx: Ctx): PhotoPool {
  let p = pools.get(ctx);
  if (!p) {
    p = new PhotoPool(Math.max(1, ctx.config.photos.concurrency));
    pools.set(ctx, p);
  }
  return p;
}

export async function closePhotos(ctx: Ctx): Promise<void> {
  const p = pools.get(ctx);
  pools.delete(ctx);
  await p?.close();
}

export function processOptions(ctx: Ctx): ProcessOptions {
  const c = ctx.config.photos;
  return { maxPixels: c.maxPixels, srScale: c.srScale, tile: c.tile, threads: c.threads, colourModel: c.colourModel };
}

const inKey = (tenantId: number, id: string, ext: string) => `photos/${tenantId}/${id}/in.${ext}`;
const outKey = (tenantId: number, id: string, ext: string) => `photos/${tenantId}/${id}/out.${ext}`;

/**
 * Checks an upload the way processing will read it: a known format (else UNSUPPORTED_MEDIA),
 * within the pixel cap (else VALIDATION), and decodable to the end (else PROCESSING_FAILED:
 * truncated or corrupt). The pixel cap is checked from the header before any decoding, so a
 * decompression bomb costs nothing.
 */
export async function inspectImage(data: Buffer, maxPixels: number): Promise<{ format: string; width: number; height: number }> {
  if (data.length === 0) throw new DomainError('VALIDATION', 'file is empty', { field: 'file' });
  let meta: Metadata;
  try {
    meta = await sharp(data, { limitInputPixels: false }).metadata();
  } catch {
    throw new DomainError('UNSUPPORTED_MEDIA', 'file is not an image of a supported type (JPEG, PNG, WebP)', { field: 'file' });
  }
  if (!meta.format || !FORMATS[meta.format]) throw new DomainError('UNSUPPORTED_MEDIA', `image type ${meta.format ?? 'unknown'} is not supported (JPEG, PNG, WebP)`, { field: 'file' });
  const w = meta.autoOrient?.width ?? meta.width ?? 0;
  const h = meta.autoOrient?.height ?? meta.height ?? 0;
  if (!w || !h) throw new DomainError('PROCESSING_FAILED', 'image has no size', { field: 'file' });
  if ((meta.pages ?? 1) > 1) throw new DomainError('UNSUPPORTED_MEDIA', 'animated images are not supported', { field: 'file' });
  if (w * h > maxPixels) throw new DomainError('VALIDATION', `image is ${w}×${h} = ${w * h} pixels; the limit is ${maxPixels}`, { field: 'file' });
  try {
    await sharp(data, { limitInputPixels: maxPixels, failOn: 'warning' }).raw().toBuffer();
  } catch (e) {
    throw new DomainError('PROCESSING_FAILED', `image cannot be decoded: ${(e as Error).message}`, { field: 'file' });
  }
  return { format: meta.format, width: w, height: h };
}

export interface UploadInput {
  tenantId: number;
  appId: number;
  repairType: unknown;
  rgb?: unknown;
  file: Buffer | null | undefined;
}

export interface Uploaded {
  mdf: string;
  inputKey: string;
}

/** Checks, stores and queues one photo job, holding one unit of quota. Nothing is kept on failure. */
export async function uploadPhoto(ctx: Ctx, input: UploadInput): Promise<Uploaded> {
  const cfg = ctx.config.photos;
  const recipe = parseRecipe(input.repairType, input.rgb);
  if (recipe.steps.includes('colour') && !cfg.colourModel)
    throw new DomainError(
      'VALIDATION',
      'colour (上色) is not available on this server: no colourization model is configured (MENHU_PHOTOS_COLOUR_MODEL); nothing was charged',
      { field: 'repair_type' },
    );
  if (!input.file) throw new DomainError('VALIDATION', 'file is required', { field: 'file' });
  if (input.file.length > cfg.maxBytes) throw new DomainError('PAYLOAD_TOO_LARGE', `file larger than ${cfg.maxBytes} bytes`, { field: 'file' });
  // Cheap refusals first: no quota means no decoding work either.
  if ((await remainingQuota(ctx.db.kysely, input.tenantId, QUOTA_SERVICE)) < 1) throw new DomainError('QUOTA_EXHAUSTED', 'no uploads left');
  const img = await inspectImage(input.file, cfg.maxPixels);
  const fmt = FORMATS[img.format];
  const id = ctx.ids.hex32();
  const now = ctx.clock.now();
  const key = inKey(input.tenantId, id, fmt.ext);
  // Kept at most until the job times out plus the retention, even if nothing settles it.
  await ctx.blobs.put(key, input.file, { contentType: fmt.type, tenantId: input.tenantId, expiresAt: now + cfg.jobTimeoutMs + cfg.retentionMs });
  try {
    await ctx.db.tx(async (trx) => {
      const holdId = `photos:${id}`;
      await reserveQuota(trx, { holdId, tenantId: input.tenantId, service: QUOTA_SERVICE, now });
      await trx
        .insertInto('photo_jobs')
        .values({
          id,
          tenant_id: input.tenantId,
          app_id: input.appId,
          repair_type: recipe.steps.join(','),
          rgb: recipe.rgb ? JSON.stringify(recipe.rgb) : null,
          input_key: key,
          input_type: fmt.type,
          result_key: null,
          hold_id: holdId,
          created_at: now,
          finished_at: null,
          expires_at: null,
        })
        .execute();
      await ctx.jobs.enqueue(trx, { id, kind: JOB_KIND, tenantId: input.tenantId, payload: { recipe }, maxAttempts: 2 });
    });
  } catch (e) {
    await ctx.blobs.delete(key).catch(() => {});
    throw e;
  }
  return { mdf: id, inputKey: key };
}

/** The columns every read of a job needs: its row, the kernel's job row and its quota hold. */
function jobRows(ctx: Ctx) {
  return ctx.db.kysely
    .selectFrom('photo_jobs as p')
    .innerJoin('jobs as j', 'j.id', 'p.id')
    .leftJoin('quota_holds as h', 'h.id', 'p.hold_id')
    .select([
      'p.id',
      'p.tenant_id',
      'p.app_id',
      'p.repair_type',
      'p.rgb',
      'p.input_key',
      'p.input_type',
      'p.result_key',
      'p.created_at',
      'p.finished_at',
      'p.expires_at',
      'j.state',
      'j.progress',
      'j.attempts',
      'j.error',
      'j.result',
      'h.state as charge',
    ]);
}
type JobRow = Awaited<ReturnType<ReturnType<typeof jobRows>['executeTakeFirstOrThrow']>>;

/** One photo job as the native API and the console show it. */
export interface PhotoJobRecord {
  id: string;
  tenantId: number;
  /** The app that uploaded it; null when a developer uploaded it in a session (the console). */
  appId: number | null;
  /** The steps, normalised as stored: `sr`, `repair,sr`, `repair,colour,sr`, `bg`. */
  repairType: string;
  rgb: [number, number, number] | null;
  /** queued | running | done | failed */
  state: string;
  progress: number;
  attempts: number;
  error: string | null;
  inputType: string;
  result: { contentType: string; width: number; height: number; bytes: number } | null;
  /** The quota unit: held while the job runs, committed when it succeeded, refunded when it failed. */
  charge: string | null;
  createdAt: number;
  finishedAt: number | null;
  /** When the upload and the result are deleted (null while the job runs). */
  expiresAt: number | null;
  /** False once the upload and the result were deleted. */
  filesKept: boolean;
}

function toRecord(ctx: Ctx, r: JobRow): PhotoJobRecord {
  const res = r.result ? (JSON.parse(r.result) as { contentType?: string; width?: number; height?: number; bytes?: number }) : null;
  const expiresAt = r.expires_at === null ? null : Number(r.expires_at);
  return {
    id: r.id,
    tenantId: Number(r.tenant_id),
    appId: Number(r.app_id) > 0 ? Number(r.app_id) : null,
    repairType: r.repair_type,
    rgb: r.rgb ? (JSON.parse(r.rgb) as [number, number, number]) : null,
    state: r.state,
    progress: Number(r.progress),
    attempts: Number(r.attempts),
    error: r.state === 'done' ? null : r.error,
    inputType: r.input_type,
    result: r.state === 'done' && res?.contentType ? { contentType: res.contentType, width: Number(res.width ?? 0), height: Number(res.height ?? 0), bytes: Number(res.bytes ?? 0) } : null,
    charge: r.charge ?? null,
    createdAt: Number(r.created_at),
    finishedAt: r.finished_at === null ? null : Number(r.finished_at),
    expiresAt,
    filesKept: expiresAt === null || expiresAt > ctx.clock.now(),
  };
}

const JOB_ID = /^[0-9a-f]{32}$/i;

/** A job row by id, of `tenantId` (undefined: any tenant, for operators), or NOT_FOUND. */
async function jobRow(ctx: Ctx, tenantId: number | undefined, id: unknown, field = 'mdf'): Promise<JobRow> {
  if (typeof id !== 'string' || !JOB_ID.test(id)) throw new DomainError('NOT_FOUND', 'no such image', { field });
  let q = jobRows(ctx).where('p.id', '=', id.toLowerCase());
  if (tenantId !== undefined) q = q.where('p.tenant_id', '=', tenantId);
  const row = await q.executeTakeFirst();
  if (!row) throw new DomainError('NOT_FOUND', 'no such image', { field });
  return row;
}

/** A job of this tenant that has not expired, or NOT_FOUND. */
export async function getPhotoJob(ctx: Ctx, tenantId: number, mdf: unknown): Promise<PhotoJobView> {
  const row = await jobRow(ctx, tenantId, mdf);
  if (row.expires_at !== null && row.expires_at <= ctx.clock.now()) throw new DomainError('GONE', 'the image and its result were deleted one hour after the job ended');
  const result = row.result ? (JSON.parse(row.result) as { contentType?: string }) : null;
  return {
    mdf: row.id,
    state: row.state,
    progress: Number(row.progress),
    repairType: row.repair_type,
    inputKey: row.input_key,
    inputType: row.input_type,
    resultKey: row.result_key,
    resultType: result?.contentType ?? null,
    createdAt: Number(row.created_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
    expiresAt: row.expires_at === null ? null : Number(row.expires_at),
  };
}

/** A job with everything known about it, expired or not (tenantId undefined: any tenant). */
export async function findPhotoJob(ctx: Ctx, tenantId: number | undefined, id: unknown): Promise<PhotoJobRecord> {
  return toRecord(ctx, await jobRow(ctx, tenantId, id, 'id'));
}

export interface PhotoJobQuery {
  /** undefined: every tenant (operators) */
  tenantId?: number;
  state?: string;
  /** any repair_type spelling; matched after normalising (`repair` finds `repair,sr`) */
  repairType?: string;
  /** 0: uploaded in a developer session */
  appId?: number;
  limit?: number;
  /** from the previous page's nextCursor */
  cursor?: string;
}

const encodeCursor = (createdAt: number, id: string) => Buffer.from(`${createdAt}.${id}`).toString('base64url');
function decodeCursor(c: string): [number, string] {
  const m = /^(\d{1,16})\.([0-9a-f]{32})$/.exec(Buffer.from(c, 'base64url').toString('latin1'));
  if (!m) throw new DomainError('VALIDATION', 'cursor is not one this list gave out', { field: 'cursor' });
  return [Number(m[1]), m[2]];
}

/** Jobs, newest first, a page at a time (keyset on created_at, id). */
export async function listPhotoJobs(ctx: Ctx, q: PhotoJobQuery): Promise<{ items: PhotoJobRecord[]; nextCursor: string | null }> {
  const limit = Math.max(1, Math.min(500, q.limit ?? 50));
  let sel = jobRows(ctx);
  if (q.tenantId !== undefined) sel = sel.where('p.tenant_id', '=', q.tenantId);
  if (q.state !== undefined) sel = sel.where('j.state', '=', q.state);
  if (q.repairType !== undefined) sel = sel.where('p.repair_type', '=', parseSteps(q.repairType).join(','));
  if (q.appId !== undefined) sel = sel.where('p.app_id', '=', q.appId);
  if (q.cursor) {
    const [at, id] = decodeCursor(q.cursor);
    sel = sel.where((eb) => eb.or([eb('p.created_at', '<', at), eb.and([eb('p.created_at', '=', at), eb('p.id', '<', id)])]));
  }
  const rows = await sel.orderBy('p.created_at', 'desc').orderBy('p.id', 'desc').limit(limit + 1).execute();
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { items: page.map((r) => toRecord(ctx, r)), nextCursor: rows.length > limit ? encodeCursor(Number(last.created_at), last.id) : null };
}

/** The stored upload or result of a job, while kept: NOT_FOUND, GONE, CONFLICT (still running), PROCESSING_FAILED. */
export async function photoJobFile(ctx: Ctx, tenantId: number | undefined, id: unknown, which: 'input' | 'result'): Promise<{ job: PhotoJobRecord; key: string; type: string }> {
  const row = await jobRow(ctx, tenantId, id, 'id');
  const job = toRecord(ctx, row);
  if (!job.filesKept) throw new DomainError('GONE', 'the upload and its result are deleted when the retention after the job ended is over');
  if (which === 'result') {
    if (job.state === 'failed') throw new DomainError('PROCESSING_FAILED', `the job failed (${job.error ?? 'no reason given'}); the upload was not charged`);
    if (job.state !== 'done' || !row.result_key) throw new DomainError('CONFLICT', 'the job has not finished yet; its result exists once its status is done');
  }
  const key = which === 'input' ? row.input_key : row.result_key!;
  const blob = await ctx.blobs.stat(key);
  if (!blob) throw new DomainError('GONE', 'the file was deleted');
  return { job, key, type: blob.content_type };
}

export const CANCELLED = 'cancelled';

/** Stops a queued or running job: it fails with error "cancelled" and its quota unit is refunded (CONFLICT when it already ended). */
export async function cancelPhotoJob(ctx: Ctx, tenantId: number | undefined, id: unknown): Promise<PhotoJobRecord> {
  const row = await jobRow(ctx, tenantId, id, 'id');
  if (!(await ctx.jobs.cancel(row.id, CANCELLED))) throw new DomainError('CONFLICT', `the job has ended already (${row.state === 'running' || row.state === 'queued' ? 'just now' : row.state})`);
  return findPhotoJob(ctx, tenantId, row.id);
}

/** The result's blob key when the job is done; PROCESSING_FAILED when it failed; NOT_FOUND while it runs. */
export async function resultOf(ctx: Ctx, tenantId: number, mdf: unknown): Promise<PhotoJobView & { resultKey: string }> {
  const job = await getPhotoJob(ctx, tenantId, mdf);
  if (job.state === 'failed') throw new DomainError('PROCESSING_FAILED', 'processing this image failed; the upload was not charged');
  if (job.state !== 'done' || !job.resultKey) throw new DomainError('NOT_FOUND', 'the image is still being processed; ask status until it answers 200');
  if (!(await ctx.blobs.stat(job.resultKey))) throw new DomainError('GONE', 'the result was deleted one hour after the job ended');
  return { ...job, resultKey: job.resultKey };
}

/** A blob of a job by its capability id (mdf): the stored upload or the result, while kept. */
export async function jobFile(ctx: Ctx, mdf: string, which: 'in' | 'out'): Promise<{ key: string; type: string } | null> {
  if (!/^[0-9a-f]{32}$/.test(mdf)) return null;
  const row = await ctx.db.kysely.selectFrom('photo_jobs').select(['input_key', 'input_type', 'result_key', 'expires_at']).where('id', '=', mdf).executeTakeFirst();
  if (!row || (row.expires_at !== null && row.expires_at <= ctx.clock.now())) return null;
  const key = which === 'in' ? row.input_key : row.result_key;
  if (!key) return null;
  const blob = await ctx.blobs.stat(key);
  return blob ? { key, type: blob.content_type } : null;
}

export const remainingUploads = (ctx: Ctx, tenantId: number): Promise<number> => remainingQuota(ctx.db.kysely, tenantId, QUOTA_SERVICE);

// ---------------------------------------------------------------------------------------------
// The job

async function settle(ctx: Ctx, trx: Kysely<DB>, job: Job, ok: boolean, resultKey: string | null): Promise<void> {
  const row = await trx.selectFrom('photo_jobs').selectAll().where('id', '=', job.id).executeTakeFirst();
  if (!row) return;
  const now = ctx.clock.now();
  if (ok) await commitQuota(trx, row.hold_id, now);
  else await refundQuota(trx, row.hold_id, now);
  const expires = now + ctx.config.photos.retentionMs;
  const upd: Partial<PhotoJobTable> = { finished_at: now, expires_at: expires };
  if (resultKey) upd.result_key = resultKey;
  await trx.updateTable('photo_jobs').set(upd).where('id', '=', job.id).execute();
  for (const key of [row.input_key, resultKey]) if (key) await ctx.blobs.setExpiry(key, expires, trx);
}

export function photoJobHandler(ctx: Ctx): JobHandler {
  return {
    leaseMs: ctx.config.photos.leaseMs,
    async run(job, ctl) {
      const row = await ctx.db.kysely.selectFrom('photo_jobs').selectAll().where('id', '=', job.id).executeTakeFirst();
      if (!row) throw new Error(`photo job ${job.id} has no row`);
      const { recipe } = JSON.parse(job.payload) as { recipe: Recipe };
      const { data } = await ctx.blobs.get(row.input_key);
      let pending = Promise.resolve();
      const report = (p: number) => {
        pending = pending.then(() => ctl.progress(Math.min(0.99, p))).catch(() => {});
      };
      // while the child is inside a run it announced (onnxruntime reports nothing until it ends),
      // progress moves towards the run's end by the time it is expected to take, up to 95 % of the way
      let moving: ReturnType<typeof setInterval> | null = null;
      const stop = () => {
        if (moving) clearInterval(moving);
        moving = null;
      };
      let r;
      try {
        r = await photoPool(ctx).run({
          id: job.id,
          input: data,
          recipe,
          options: processOptions(ctx),
          signal: ctl.signal,
          onProgress: (p, next) => {
            stop();
            report(p);
            if (next && next.ms > 0 && next.to > p) {
              const t0 = Date.now();
              moving = setInterval(() => report(p + (next.to - p) * Math.min(0.95, (Date.now() - t0) / next.ms)), PROGRESS_TICK_MS);
              moving.unref?.();
            }
          },
        });
      } finally {
        stop();
      }
      await pending;
      const key = outKey(Number(row.tenant_id), job.id, r.contentType === 'image/png' ? 'png' : 'jpg');
      // Expiry is set again (to end + retention) when the job is marked done; this bounds an orphan.
      await ctx.blobs.put(key, r.data, { contentType: r.contentType, tenantId: Number(row.tenant_id), expiresAt: ctx.clock.now() + ctx.config.photos.retentionMs });
      return { key, contentType: r.contentType, width: r.width, height: r.height, bytes: r.data.length, timings: r.timings };
    },
    onDone: (trx, job, result) => settle(ctx, trx, job, true, (result as { key: string }).key),
    onFailed: (trx, job) => settle(ctx, trx, job, false, null),
  };
}

/** Fails and refunds jobs that did not finish within the job timeout. Returns their ids. */
export function expireStalePhotoJobs(ctx: Ctx): Promise<string[]> {
  return ctx.jobs.expire(JOB_KIND, ctx.clock.now() - ctx.config.photos.jobTimeoutMs, 'not finished within the job timeout');
}
