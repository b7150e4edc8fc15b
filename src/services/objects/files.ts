/**
 * Uploaded files (JDCloud's upload plugin): bytes in the kernel blob store, one bqp_files row each,
 * thumbnails made with sharp. Bounded by size, an extension whitelist and an image pixel limit.
 */
import sharp from 'sharp';
import type { Ctx } from '../../core/context.js';
import { DomainError } from '../../core/errors.js';
import type { BqpFileTable } from './tables.js';

export const UPLOAD_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
  txt: 'text/plain; charset=utf-8',
  pdf: 'application/pdf',
  doc: 'application/msword',
  docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  xls: 'application/vnd.ms-excel',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  ppt: 'application/vnd.ms-powerpoint',
  pptx: 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
  zip: 'application/zip',
  rar: 'application/vnd.rar',
  mp3: 'audio/mpeg',
  m4a: 'audio/mp4',
  mp4: 'video/mp4',
};

export const FILE_LIMITS = {
  /** largest single file, bytes (also capped by MENHU_UPLOAD_LIMIT) */
  fileBytes: 20 * 1024 * 1024,
  files: 20,
  /** decoded image size ceiling */
  pixels: 40_000_000,
  resizeAbove: 500 * 1024,
  resizeTo: 1280,
  thumb: 360,
};

export interface UploadPart {
  name: string;
  data: Buffer;
}

export interface Uploaded {
  id: number;
  orgName: string;
  size: number;
  thumbId?: number;
}

const isImage = (mime: string) => mime.startsWith('image/');

const extOf = (name: string) => (/\.([A-Za-z0-9]{1,8})$/.exec(name)?.[1] ?? '').toLowerCase();

async function store(ctx: Ctx, data: Buffer, orgName: string, mime: string, by: string | null, orgPicId: number | null): Promise<number> {
  const now = ctx.clock.now();
  const key = `bqp/att/${ctx.ids.sortable(now)}`;
  await ctx.blobs.put(key, data, { contentType: mime });
  const row = await ctx.db.kysely
    .insertInto('bqp_files')
    .values({ blob_key: key, org_name: orgName.slice(0, 255), mime, size: data.length, org_pic_id: orgPicId, created_by: by, created_at: now })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

export async function upload(ctx: Ctx, parts: UploadPart[], opts: { genThumb: boolean; autoResize: boolean; by: string | null }): Promise<Uploaded[]> {
  if (!parts.length) throw new DomainError('VALIDATION', '上传失败!没有文件');
  if (parts.length > FILE_LIMITS.files) throw new DomainError('VALIDATION', `at most ${FILE_LIMITS.files} files per upload`);
  // check everything before storing anything: no half-stored uploads
  const prepared: { part: UploadPart; mime: string; data: Buffer; image: boolean }[] = [];
  for (const part of parts) {
    const ext = extOf(part.name);
    const mime = UPLOAD_TYPES[ext];
    if (!mime) throw new DomainError('VALIDATION', `不支持的文件类型: ${ext || '(none)'}`);
    if (part.data.length > Math.min(FILE_LIMITS.fileBytes, ctx.config.uploadLimit)) throw new DomainError('PAYLOAD_TOO_LARGE', `file ${part.name} is too large`);
    if (!part.data.length) throw new DomainError('VALIDATION', `file ${part.name} is empty`);
    let data = part.data;
    const image = isImage(mime) && mime !== 'image/gif';
    if (image) {
      let meta: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
      try {
        meta = await sharp(data, { limitInputPixels: FILE_LIMITS.pixels }).metadata();
      } catch {
        throw new DomainError('VALIDATION', `${part.name} is not a readable image`);
      }
      if (!meta.width || !meta.height || meta.width * meta.height > FILE_LIMITS.pixels) throw new DomainError('VALIDATION', `${part.name} has more than ${FILE_LIMITS.pixels} pixels`);
      if (opts.autoResize && data.length > FILE_LIMITS.resizeAbove && Math.max(meta.width, meta.height) > FILE_LIMITS.resizeTo) {
        data = await sharp(data, { limitInputPixels: FILE_LIMITS.pixels }).rotate().resize(FILE_LIMITS.resizeTo, FILE_LIMITS.resizeTo, { fit: 'inside' }).toBuffer();
      }
    }
    prepared.push({ part, mime, data, image });
  }
  const out: Uploaded[] = [];
  for (const p of prepared) {
    const id = await store(ctx, p.data, p.part.name, p.mime, opts.by, null);
    const u: Uploaded = { id, orgName: p.part.name, size: p.data.length };
    if (opts.genThumb && p.image) {
      const thumb = await sharp(p.data, { limitInputPixels: FILE_LIMITS.pixels })
        .rotate()
        .resize(FILE_LIMITS.thumb, FILE_LIMITS.thumb, { fit: 'inside', withoutEnlargement: true })
        .jpeg({ quality: 80 })
        .toBuffer();
      const tid = await store(ctx, thumb, p.part.name.replace(/\.[^.]*$/, '') + '-thumb.jpg', 'image/jpeg', opts.by, id);
      await ctx.db.kysely.updateTable('bqp_files').set({ org_pic_id: -tid }).where('id', '=', id).execute();
      u.thumbId = tid;
    }
    out.push(u);
  }
  return out;
}

export type FileRow = Omit<BqpFileTable, 'id'> & { id: number };

const byId = (ctx: Ctx, id: number) => ctx.db.kysely.selectFrom('bqp_files').selectAll().where('id', '=', id).executeTakeFirst() as Promise<FileRow | undefined>;

/** att?id / att?id&thumb=1 / att?thumbId: the row to send, or null (→ 404). */
export async function findFile(ctx: Ctx, q: { id?: number; thumb?: boolean; thumbId?: number }): Promise<{ row: FileRow; etag: string } | null> {
  if (q.thumbId !== undefined) {
    const t = await byId(ctx, q.thumbId);
    if (!t || !t.org_pic_id || t.org_pic_id <= 0) return null;
    const o = await byId(ctx, t.org_pic_id);
    return o ? { row: o, etag: `att-t${q.thumbId}` } : null;
  }
  if (q.id === undefined || q.id <= 0) return null;
  const r = await byId(ctx, q.id);
  if (!r) return null;
  if (q.thumb) {
    if (!r.org_pic_id || r.org_pic_id >= 0) return null;
    const t = await byId(ctx, -r.org_pic_id);
    return t ? { row: t, etag: `att-${q.id}-t` } : null;
  }
  return { row: r, etag: `att-${q.id}` };
}

/** `inline; filename=…` / `attachment; filename=…`, with an RFC 5987 `filename*` for names outside printable ASCII. */
export function contentDisposition(name: string, inline: boolean): string {
  const ascii = /^[\x20-\x7e]+$/.test(name) && !/["\\]/.test(name);
  return `${inline ? '' : 'attachment; '}filename="${ascii ? name : name.replace(/[^\x20-\x7e]|["\\]/g, '_')}"${ascii ? '' : `; filename*=UTF-8''${encodeURIComponent(name)}`}`;
}
