/**
 * Report registry, scoped per tenant: a report ID is committed once, updated any number of times
 * (every version is kept), and recalled with metadata equal to the registered metadata. Every
 * commit, update and recall appends a transparency-log entry in the same transaction as its rows,
 * so a failed request leaves neither a row nor a log entry. The file bytes go to the blob store
 * first (under a fresh key) and are removed again if the transaction does not commit.
 */
import { createHash } from 'node:crypto';
import type { Generated, Kysely, Selectable } from 'kysely';
import type { Ctx } from '../../core/context.js';
import { defineMigration } from '../../core/db/migrations.js';
import type { DB } from '../../core/db/schema.js';
import { DomainError } from '../../core/errors.js';
import { appendInTx, type TlogEntry } from '../../core/tlog/index.js';

interface ReportTable {
  id: Generated<number>;
  tenant_id: number;
  report_id: string;
  /** valid | recalled */
  status: string;
  version: number;
  title: string;
  type: string;
  period: string;
  geom: string;
  last_tlog_index: number;
  created_at: number;
  updated_at: number;
  recalled_at: number | null;
  recall_tlog_index: number | null;
}

interface ReportVersionTable {
  id: Generated<number>;
  report_pk: number;
  tenant_id: number;
  version: number;
  /** commit | update */
  action: string;
  title: string;
  type: string;
  period: string;
  geom: string;
  meta_hash: string;
  file_key: string;
  file_sha256: string;
  file_size: number;
  file_name: string | null;
  content_type: string;
  tlog_index: number;
  created_at: number;
}

declare module '../../core/db/schema.js' {
  interface DB {
    reports: ReportTable;
    report_versions: ReportVersionTable;
  }
}

defineMigration('0201_reports', async (db, d) => {
  await d
    .id(db.schema.createTable('reports'))
    .addColumn('tenant_id', d.big, (c) => c.notNull().references('tenants.id'))
    .addColumn('report_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('period', 'text', (c) => c.notNull())
    .addColumn('geom', 'text', (c) => c.notNull())
    .addColumn('last_tlog_index', d.big, (c) => c.notNull())
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('updated_at', d.big, (c) => c.notNull())
    .addColumn('recalled_at', d.big)
    .addColumn('recall_tlog_index', d.big)
    .addUniqueConstraint('reports_tenant_report', ['tenant_id', 'report_id'])
    .execute();
  await d
    .id(db.schema.createTable('report_versions'))
    .addColumn('report_pk', d.big, (c) => c.notNull().references('reports.id'))
    .addColumn('tenant_id', d.big, (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('period', 'text', (c) => c.notNull())
    .addColumn('geom', 'text', (c) => c.notNull())
    .addColumn('meta_hash', 'text', (c) => c.notNull())
    .addColumn('file_key', 'text', (c) => c.notNull())
    .addColumn('file_sha256', 'text', (c) => c.notNull())
    .addColumn('file_size', d.big, (c) => c.notNull())
    .addColumn('file_name', 'text')
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('tlog_index', d.big, (c) => c.notNull())
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addUniqueConstraint('report_versions_version', ['report_pk', 'version'])
    .execute();
  await db.schema.createIndex('report_versions_sha').on('report_versions').columns(['tenant_id', 'file_sha256']).execute();
});

// ---------------------------------------------------------------------------------------------
// Validation

/** Report IDs: 1–128 characters of A–Z a–z 0–9 . _ -, starting with a letter or digit. */
export const REPORT_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const META_FIELDS = ['title', 'type', 'period', 'geom'] as const;
export const META_MAX = 1000;

export interface ReportMeta {
  title: string;
  type: string;
  period: string;
  geom: string;
}

export function checkReportId(id: unknown): string {
  if (typeof id !== 'string' || !REPORT_ID_RE.test(id) || id.includes('..')) {
    throw new DomainError('VALIDATION', 'a report ID is 1-128 characters of A-Z a-z 0-9 . _ - starting with a letter or digit', { field: 'report_id' });
  }
  return id;
}

/** All four fields present and non-blank, at most META_MAX characters; values are kept as sent. */
export function checkMeta(m: Partial<Record<string, unknown>>): ReportMeta {
  for (const f of META_FIELDS) {
    const v = m[f];
    if (typeof v !== 'string' || !v.trim()) throw new DomainError('VALIDATION', `${f} is required`, { field: f });
    if (v.length > META_MAX) throw new DomainError('VALIDATION', `${f} is longer than ${META_MAX} characters`, { field: f });
  }
  return { title: m.title as string, type: m.type as string, period: m.period as string, geom: m.geom as string };
}

/** SHA-256 (hex) of the UTF-8 JSON {"title","type","period","geom"} in that key order. */
export function metaHash(m: ReportMeta): string {
  return createHash('sha256').update(JSON.stringify({ title: m.title, type: m.type, period: m.period, geom: m.geom }), 'utf8').digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Views

export type ReportAction = 'commit' | 'update' | 'recall';

/** What a log entry of the registry says. Its data is exactly JSON.stringify of this object. */
export interface ReportLogEntry {
  kind: 'menhu.report/v1';
  action: ReportAction;
  tenant: number;
  report: string;
  version: number;
  sha256: string;
  meta: string;
  time: number;
  /** Leaf index of the previous entry of the same report, null for its first. */
  prev: number | null;
}

export function logEntryData(e: Omit<ReportLogEntry, 'kind'>): string {
  const o: ReportLogEntry = { kind: 'menhu.report/v1', action: e.action, tenant: e.tenant, report: e.report, version: e.version, sha256: e.sha256, meta: e.meta, time: e.time, prev: e.prev };
  return JSON.stringify(o);
}

export interface ReportVersion extends ReportMeta {
  version: number;
  action: 'commit' | 'update';
  metaHash: string;
  sha256: string;
  size: number;
  fileName: string | null;
  contentType: string;
  tlogIndex: number;
  createdAt: number;
}

export interface Report extends ReportMeta {
  tenantId: number;
  reportId: string;
  status: 'valid' | 'recalled';
  version: number;
  lastTlogIndex: number;
  createdAt: number;
  updatedAt: number;
  recalledAt: number | null;
  recallTlogIndex: number | null;
}

const toReport = (r: Selectable<ReportTable>): Report => ({
  tenantId: Number(r.tenant_id),
  reportId: r.report_id,
  status: r.status === 'recalled' ? 'recalled' : 'valid',
  version: Number(r.version),
  title: r.title,
  type: r.type,
  period: r.period,
  geom: r.geom,
  lastTlogIndex: Number(r.last_tlog_index),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
  recalledAt: r.recalled_at === null ? null : Number(r.recalled_at),
  recallTlogIndex: r.recall_tlog_index === null ? null : Number(r.recall_tlog_index),
});

const toVersion = (v: Omit<Selectable<ReportVersionTable>, 'id'>): ReportVersion => ({
  version: Number(v.version),
  action: v.action === 'commit' ? 'commit' : 'update',
  title: v.title,
  type: v.type,
  period: v.period,
  geom: v.geom,
  metaHash: v.meta_hash,
  sha256: v.file_sha256,
  size: Number(v.file_size),
  fileName: v.file_name,
  contentType: v.content_type,
  tlogIndex: Number(v.tlog_index),
  createdAt: Number(v.created_at),
});

// ---------------------------------------------------------------------------------------------
// Commands

export interface ReportFile {
  data: Buffer;
  name?: string | null;
  contentType?: string | null;
}

export interface RegisterInput {
  tenantId: number;
  reportId: string;
  /** commit: only for a new ID; update: new ID or a new version of an existing one. */
  mode: 'commit' | 'update';
  meta: Partial<Record<string, unknown>>;
  file: ReportFile | null | undefined;
}

export interface Registered {
  report: Report;
  version: ReportVersion;
  entry: TlogEntry;
}

const isUniqueViolation = (e: unknown): boolean => {
  const code = (e as { code?: string })?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
};

function cleanName(name: string | null | undefined): string | null {
  if (!name) return null;
  // eslint-disable-next-line no-control-regex
  const n = name.replace(/[\x00-\x1f\x7f"\\/]/g, '_').slice(-200);
  return n || null;
}

/** Largest file a report may have (the platform's upload limit). */
export const maxReportBytes = (ctx: Ctx): number => ctx.config.uploadLimit;

export async function registerReport(ctx: Ctx, input: RegisterInput): Promise<Registered> {
  const reportId = checkReportId(input.reportId);
  const meta = checkMeta(input.meta);
  const file = input.file;
  if (!file || file.data.length === 0) throw new DomainError('VALIDATION', file ? 'the file is empty' : 'no file was sent', { field: 'file' });
  if (file.data.length > maxReportBytes(ctx)) throw new DomainError('PAYLOAD_TOO_LARGE', `a report file is at most ${maxReportBytes(ctx)} bytes`, { field: 'file' });
  // Fail fast (before storing bytes) on a commit of an existing ID; the transaction re-checks.
  if (input.mode === 'commit' && (await getReport(ctx, input.tenantId, reportId))) throw new DomainError('REPORT_EXISTS', `report ${reportId} is already registered; use update`);

  let contentType = file.contentType && /^[\w.+-]+\/[\w.+-]+$/.test(file.contentType) ? file.contentType : 'application/octet-stream';
  if (contentType === 'application/octet-stream' && file.data.subarray(0, 5).toString('latin1') === '%PDF-') contentType = 'application/pdf';
  const key = `reports/t${input.tenantId}/${ctx.ids.hex32()}`;
  const blob = await ctx.blobs.put(key, file.data, { contentType, tenantId: input.tenantId });
  const mh = metaHash(meta);
  const attempt = () =>
    ctx.db.tx(async (trx) => {
      const now = ctx.clock.now();
      const cur = await ctx.db.forUpdate(trx.selectFrom('reports').selectAll().where('tenant_id', '=', input.tenantId).where('report_id', '=', reportId)).executeTakeFirst();
      if (cur && input.mode === 'commit') throw new DomainError('REPORT_EXISTS', `report ${reportId} is already registered; use update`);
      const version = cur ? Number(cur.version) + 1 : 1;
      const action = cur ? 'update' : input.mode;
      let pk: number;
      if (cur) pk = Number(cur.id);
      else {
        const ins = await trx
          .insertInto('reports')
          .values({ tenant_id: input.tenantId, report_id: reportId, status: 'valid', version, ...meta, last_tlog_index: -1, created_at: now, updated_at: now, recalled_at: null, recall_tlog_index: null })
          .returning('id')
          .executeTakeFirstOrThrow();
        pk = Number(ins.id);
      }
      const [entry] = await appendInTx(ctx, trx, [
        logEntryData({ action, tenant: input.tenantId, report: reportId, version, sha256: blob.sha256, meta: mh, time: now, prev: cur ? Number(cur.last_tlog_index) : null }),
      ]);
      const row: Omit<Selectable<ReportVersionTable>, 'id'> = {
        report_pk: pk,
        tenant_id: input.tenantId,
        version,
        action,
        ...meta,
        meta_hash: mh,
        file_key: key,
        file_sha256: blob.sha256,
        file_size: blob.size,
        file_name: cleanName(file.name),
        content_type: contentType,
        tlog_index: entry.index,
        created_at: now,
      };
      await trx.insertInto('report_versions').values(row).execute();
      // Re-issuing a recalled report with a new version makes it valid again; the recall stays in the log.
      await trx
        .updateTable('reports')
        .set({ status: 'valid', version, ...meta, last_tlog_index: entry.index, updated_at: now, recalled_at: null, recall_tlog_index: null })
        .where('id', '=', pk)
        .execute();
      const rep = await trx.selectFrom('reports').selectAll().where('id', '=', pk).executeTakeFirstOrThrow();
      return { report: toReport(rep), version: toVersion(row), entry };
    });
  try {
    try {
      return await attempt();
    } catch (e) {
      // Two first commits of one ID raced (PostgreSQL): the loser of a commit is refused; an update retries as a new version.
      if (!isUniqueViolation(e)) throw e;
      if (input.mode === 'commit') throw new DomainError('REPORT_EXISTS', `report ${reportId} is already registered; use update`);
      return await attempt();
    }
  } catch (e) {
    await ctx.blobs.delete(key).catch((err) => ctx.log.error({ err: String(err), key }, 'could not remove the blob of a failed report registration'));
    throw e;
  }
}

export interface RecallInput {
  tenantId: number;
  reportId: string;
  meta: Partial<Record<string, unknown>>;
}

export async function recallReport(ctx: Ctx, input: RecallInput): Promise<{ report: Report; entry: TlogEntry }> {
  const reportId = checkReportId(input.reportId);
  const meta = checkMeta(input.meta);
  return ctx.db.tx(async (trx) => {
    const cur = await ctx.db.forUpdate(trx.selectFrom('reports').selectAll().where('tenant_id', '=', input.tenantId).where('report_id', '=', reportId)).executeTakeFirst();
    if (!cur) throw new DomainError('NOT_FOUND', `report ${reportId} is not registered`);
    if (META_FIELDS.some((f) => cur[f] !== meta[f])) throw new DomainError('METADATA_MISMATCH', 'title, type, period and geom must equal the registered ones');
    if (cur.status === 'recalled') throw new DomainError('REPORT_RECALLED', `report ${reportId} is already recalled`);
    const v = await trx.selectFrom('report_versions').select(['file_sha256', 'meta_hash']).where('report_pk', '=', cur.id).where('version', '=', cur.version).executeTakeFirstOrThrow();
    const now = ctx.clock.now();
    const [entry] = await appendInTx(ctx, trx, [
      logEntryData({ action: 'recall', tenant: input.tenantId, report: reportId, version: Number(cur.version), sha256: v.file_sha256, meta: v.meta_hash, time: now, prev: Number(cur.last_tlog_index) }),
    ]);
    await trx
      .updateTable('reports')
      .set({ status: 'recalled', recalled_at: now, recall_tlog_index: entry.index, last_tlog_index: entry.index, updated_at: now })
      .where('id', '=', cur.id)
      .execute();
    return { report: toReport({ ...cur, status: 'recalled', recalled_at: now, recall_tlog_index: entry.index, last_tlog_index: entry.index, updated_at: now }), entry };
  });
}

// ---------------------------------------------------------------------------------------------
// Queries

async function reportRow(db: Kysely<DB>, tenantId: number, reportId: string) {
  return db.selectFrom('reports').selectAll().where('tenant_id', '=', tenantId).where('report_id', '=', reportId).executeTakeFirst();
}

export async function getReport(ctx: Ctx, tenantId: number, reportId: string): Promise<Report | null> {
  if (!REPORT_ID_RE.test(reportId)) return null;
  const r = await reportRow(ctx.db.kysely, tenantId, reportId);
  return r ? toReport(r) : null;
}

export async function listReports(ctx: Ctx, tenantId: number, opts: { limit?: number; after?: string } = {}): Promise<Report[]> {
  let q = ctx.db.kysely.selectFrom('reports').selectAll().where('tenant_id', '=', tenantId);
  if (opts.after) q = q.where('report_id', '>', opts.after);
  const rows = await q
    .orderBy('report_id')
    .limit(Math.min(Math.max(opts.limit ?? 100, 1), 1000))
    .execute();
  return rows.map(toReport);
}

/** Every version, oldest first; null if the report does not exist in this tenant. */
export async function listVersions(ctx: Ctx, tenantId: number, reportId: string): Promise<ReportVersion[] | null> {
  if (!REPORT_ID_RE.test(reportId)) return null;
  const r = await reportRow(ctx.db.kysely, tenantId, reportId);
  if (!r) return null;
  const rows = await ctx.db.kysely.selectFrom('report_versions').selectAll().where('report_pk', '=', r.id).orderBy('version').execute();
  return rows.map(toVersion);
}

/** The registered bytes of a version (default: the current one). */
export async function reportFile(ctx: Ctx, tenantId: number, reportId: string, version?: number): Promise<{ version: ReportVersion; data: Buffer }> {
  const r = REPORT_ID_RE.test(reportId) ? await reportRow(ctx.db.kysely, tenantId, reportId) : undefined;
  if (!r) throw new DomainError('NOT_FOUND', `report ${reportId} is not registered`);
  const v = await ctx.db.kysely
    .selectFrom('report_versions')
    .selectAll()
    .where('report_pk', '=', r.id)
    .where('version', '=', version ?? Number(r.version))
    .executeTakeFirst();
  if (!v) throw new DomainError('NOT_FOUND', `report ${reportId} has no version ${version}`);
  const { data } = await ctx.blobs.get(v.file_key);
  return { version: toVersion(v), data };
}

// ---------------------------------------------------------------------------------------------
// Integrity check (`menhu check`)

/** Every version has its log entry (same report, version, file hash, metadata hash) and its blob. */
export async function checkReports(ctx: Ctx): Promise<string[]> {
  const problems: string[] = [];
  const db = ctx.db.kysely;
  let after = 0;
  for (;;) {
    const rows = await db
      .selectFrom('report_versions as v')
      .innerJoin('reports as r', 'r.id', 'v.report_pk')
      .leftJoin('tlog_entries as e', 'e.idx', 'v.tlog_index')
      .leftJoin('blobs as b', 'b.key', 'v.file_key')
      .select(['v.id', 'v.tenant_id', 'r.report_id', 'v.version', 'v.file_sha256', 'v.file_key', 'v.meta_hash', 'v.tlog_index', 'e.data', 'b.sha256 as blob_sha256'])
      .where('v.id', '>', after)
      .orderBy('v.id')
      .limit(2000)
      .execute();
    if (rows.length === 0) break;
    for (const v of rows) {
      const what = `report ${v.report_id} (tenant ${v.tenant_id}) version ${v.version}`;
      if (v.data === null) problems.push(`reports: ${what}: log entry ${v.tlog_index} is missing`);
      else {
        const e = JSON.parse(v.data) as ReportLogEntry;
        if (e.report !== v.report_id || e.tenant !== Number(v.tenant_id) || e.version !== Number(v.version) || e.sha256 !== v.file_sha256 || e.meta !== v.meta_hash) {
          problems.push(`reports: ${what}: log entry ${v.tlog_index} says something else`);
        }
      }
      if (v.blob_sha256 === null) problems.push(`reports: ${what}: the file is missing from the blob store`);
      else if (v.blob_sha256 !== v.file_sha256) problems.push(`reports: ${what}: the stored file has another SHA-256`);
      else {
        // the bytes themselves, not only the recorded hash: a file changed on disk or in the bucket is caught
        const data = await ctx.blobs.get(v.file_key).then((b) => b.data, () => null);
        if (data === null) problems.push(`reports: ${what}: the file cannot be read from the blob store`);
        else if (createHash('sha256').update(data).digest('hex') !== v.file_sha256) problems.push(`reports: ${what}: the stored bytes do not hash to the registered SHA-256`);
      }
      after = Number(v.id);
    }
  }
  return problems;
}
