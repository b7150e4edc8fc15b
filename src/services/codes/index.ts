/**
 * Dynamic QR codes: templates (M1, M2, … per tenant) with ordered typed fields, and records — one
 * code each, behind a short link (kind 'code') whose target never changes while its values may.
 * Every edit keeps the previous values in the record's history.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Ctx } from '../../core/context.js';
import { createApp, getApp, updateApp, type App } from '../../core/credentials/apps.js';
import { safeEqual } from '../../core/crypto.js';
import type { DB } from '../../core/db/schema.js';
import { DomainError } from '../../core/errors.js';
import { parseColour, parseQrStyle, type QrStyle } from '../../core/qr/index.js';
import { createLinks, invalidateLink, linkStats, shortUrl, type LinkStats } from '../links/index.js';
import { checkFields, checkValues, type FieldDef } from './fields.js';
import type { CodeRecordTable, CodeTemplateTable } from './schema.js';
import './schema.js';

export * from './fields.js';

export interface CodeStyle {
  /** QR image style of the template's codes (qrstyle_url, exports). */
  qr?: Omit<QrStyle, 'logo'>;
  /** Accent colour of the landing page. */
  accent?: string;
}

export interface Template {
  id: number;
  tenantId: number;
  num: number;
  /** "M" + num, as the cli.im API names it. */
  templateNum: string;
  title: string;
  fields: FieldDef[];
  style: CodeStyle;
  apiEnabled: boolean;
  appId: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface CodeRecord {
  id: number;
  tenantId: number;
  templateId: number;
  linkId: number;
  code: string;
  values: string[];
  version: number;
  createdAt: number;
  updatedAt: number;
}

export const MAX_BATCH = 1000;
export const QR_URL_TTL_MS = 24 * 3600 * 1000;

const toTemplate = (r: Selectable<CodeTemplateTable>): Template => ({
  id: Number(r.id),
  tenantId: Number(r.tenant_id),
  num: Number(r.num),
  templateNum: `M${r.num}`,
  title: r.title,
  fields: JSON.parse(r.fields) as FieldDef[],
  style: JSON.parse(r.style) as CodeStyle,
  apiEnabled: !!r.api_enabled,
  appId: r.app_id === null ? null : Number(r.app_id),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

const toRecord = (r: Selectable<CodeRecordTable> & { code: string }): CodeRecord => ({
  id: Number(r.id),
  tenantId: Number(r.tenant_id),
  templateId: Number(r.template_id),
  linkId: Number(r.link_id),
  code: r.code,
  values: JSON.parse(r.values) as string[],
  version: Number(r.version),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

export function checkStyle(input: unknown): CodeStyle {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input)) throw new DomainError('VALIDATION', 'style must be an object {qr?, accent?}', { field: 'style' });
  const { qr, accent, ...rest } = input as Record<string, unknown>;
  if (Object.keys(rest).length) throw new DomainError('VALIDATION', `style: unknown key ${Object.keys(rest)[0]}`, { field: 'style' });
  const out: CodeStyle = {};
  if (qr !== undefined) {
    if (!qr || typeof qr !== 'object' || Array.isArray(qr)) throw new DomainError('VALIDATION', 'style.qr must be an object', { field: 'style.qr' });
    if ('logo' in (qr as object)) throw new DomainError('VALIDATION', 'style.qr.logo is not supported for templates', { field: 'style.qr' });
    out.qr = parseQrStyle(qr as Record<string, unknown>);
  }
  if (accent !== undefined) out.accent = parseColour(accent, 'style.accent');
  return out;
}

function checkTitle(t: unknown): string {
  if (typeof t !== 'string' || !t.trim() || t.length > 100) throw new DomainError('VALIDATION', 'title must be 1-100 characters', { field: 'title' });
  return t.trim();
}

// ---------------------------------------------------------------------------------------------
// Templates

export async function createTemplate(ctx: Ctx, input: { tenantId: number; title: string; fields: unknown; style?: unknown; num?: number }): Promise<Template> {
  const title = checkTitle(input.title);
  const fields = checkFields(input.fields);
  const style = checkStyle(input.style);
  if (input.num !== undefined && (!Number.isInteger(input.num) || input.num < 1 || input.num > 1e9)) throw new DomainError('VALIDATION', 'num must be a positive integer', { field: 'num' });
  const t = ctx.clock.now();
  const row = await ctx.db.tx(async (trx) => {
    let num = input.num;
    if (num === undefined) {
      const max = await trx.selectFrom('code_templates').select((eb) => eb.fn.max('num').as('m')).where('tenant_id', '=', input.tenantId).executeTakeFirst();
      num = Number(max?.m ?? 0) + 1;
    } else if (await trx.selectFrom('code_templates').select('id').where('tenant_id', '=', input.tenantId).where('num', '=', num).executeTakeFirst()) {
      throw new DomainError('CONFLICT', `template M${num} exists`, { field: 'num' });
    }
    return trx
      .insertInto('code_templates')
      .values({ tenant_id: input.tenantId, num, title, fields: JSON.stringify(fields), style: JSON.stringify(style), api_enabled: 0, app_id: null, created_at: t, updated_at: t })
      .returningAll()
      .executeTakeFirstOrThrow();
  });
  return toTemplate(row);
}

export async function getTemplate(ctx: Ctx, id: number): Promise<Template | null> {
  const r = await ctx.db.kysely.selectFrom('code_templates').selectAll().where('id', '=', id).executeTakeFirst();
  return r ? toTemplate(r) : null;
}

/** "M8" → 8; null if it is not a template number. */
export function parseTemplateNum(s: unknown): number | null {
  if (typeof s !== 'string') return null;
  const m = /^M([1-9]\d{0,8})$/.exec(s.trim());
  return m ? Number(m[1]) : null;
}

export async function templateByNum(ctx: Ctx, tenantId: number, num: number): Promise<Template | null> {
  const r = await ctx.db.kysely.selectFrom('code_templates').selectAll().where('tenant_id', '=', tenantId).where('num', '=', num).executeTakeFirst();
  return r ? toTemplate(r) : null;
}

export async function listTemplates(ctx: Ctx, tenantId?: number): Promise<Template[]> {
  let q = ctx.db.kysely.selectFrom('code_templates').selectAll().orderBy('tenant_id').orderBy('num');
  if (tenantId !== undefined) q = q.where('tenant_id', '=', tenantId);
  return (await q.execute()).map(toTemplate);
}

const countRecords = async (db: Kysely<DB>, templateId: number): Promise<number> =>
  Number((await db.selectFrom('code_records').select((eb) => eb.fn.countAll<number>().as('n')).where('template_id', '=', templateId).executeTakeFirstOrThrow()).n);

/**
 * Changes title, style, or fields. Once records exist, fields may only be renamed or appended
 * (existing records get '' for new fields); types and options of existing fields stay.
 */
export async function updateTemplate(ctx: Ctx, id: number, u: { title?: string; fields?: unknown; style?: unknown }): Promise<Template> {
  const cur = await getTemplate(ctx, id);
  if (!cur) throw new DomainError('NOT_FOUND', `no template ${id}`);
  const set: Partial<Record<'title' | 'fields' | 'style', string>> = {};
  if (u.title !== undefined) set.title = checkTitle(u.title);
  if (u.style !== undefined) set.style = JSON.stringify(checkStyle(u.style));
  let added = 0;
  if (u.fields !== undefined) {
    const fields = checkFields(u.fields);
    if ((await countRecords(ctx.db.kysely, id)) > 0) {
      const same = cur.fields.every((f, i) => fields[i] && fields[i].type === f.type && JSON.stringify(fields[i].options ?? []) === JSON.stringify(f.options ?? []));
      if (!same || fields.length < cur.fields.length) {
        throw new DomainError('CONFLICT', 'this template has records: fields may only be renamed or appended, not removed, reordered or retyped', { field: 'fields' });
      }
      added = fields.length - cur.fields.length;
    }
    set.fields = JSON.stringify(fields);
  }
  const t = ctx.clock.now();
  await ctx.db.tx(async (trx) => {
    await trx.updateTable('code_templates').set({ ...set, updated_at: t }).where('id', '=', id).execute();
    if (added > 0) {
      // pad existing records' values with '' for the new fields (JSON arrays edited in SQL would differ per engine; do it here)
      const rows = await trx.selectFrom('code_records').select(['id', 'values']).where('template_id', '=', id).execute();
      for (const r of rows) {
        await trx.updateTable('code_records').set({ values: JSON.stringify([...(JSON.parse(r.values) as string[]), ...Array(added).fill('')]) }).where('id', '=', r.id).execute();
      }
    }
  });
  return (await getTemplate(ctx, id))!;
}

export async function deleteTemplate(ctx: Ctx, id: number): Promise<void> {
  const cur = await getTemplate(ctx, id);
  if (!cur) throw new DomainError('NOT_FOUND', `no template ${id}`);
  if ((await countRecords(ctx.db.kysely, id)) > 0) throw new DomainError('HAS_DEPENDENTS', `template ${cur.templateNum} has records`);
  await ctx.db.kysely.deleteFrom('code_templates').where('id', '=', id).execute();
}

/**
 * Turns the template's dynamic-code API on or off. With ownKey (the default), the template gets its
 * own api_key + secret (an app of service `cli`, created on first use) with an optional IP
 * allow-list; the secret is returned only when the app is created now. Without it, the tenant's
 * other `cli` apps (not bound to another template) may call it.
 */
export async function setTemplateApi(ctx: Ctx, id: number, u: { enabled?: boolean; ipAllow?: string[]; ownKey?: boolean }): Promise<{ template: Template; app: App | null; secret: string | null }> {
  const cur = await getTemplate(ctx, id);
  if (!cur) throw new DomainError('NOT_FOUND', `no template ${id}`);
  let app = cur.appId ? await getApp(ctx, cur.appId) : null;
  let secret: string | null = null;
  if (!app && u.ownKey !== false) {
    app = await createApp(ctx, { tenantId: cur.tenantId, name: `code template ${cur.templateNum}`, services: ['cli'], ipAllow: u.ipAllow ?? [] });
    secret = app.secret;
  } else if (app && u.ipAllow !== undefined) {
    app = await updateApp(ctx, app.id, { ipAllow: u.ipAllow });
  } else if (!app && u.ipAllow !== undefined) {
    throw new DomainError('VALIDATION', 'an IP allow-list needs the template\'s own key (ownKey)', { field: 'ip_allow' });
  }
  const enabled = u.enabled ?? true;
  await ctx.db.kysely.updateTable('code_templates').set({ app_id: app?.id ?? null, api_enabled: enabled ? 1 : 0, updated_at: ctx.clock.now() }).where('id', '=', id).execute();
  return { template: (await getTemplate(ctx, id))!, app, secret };
}

/** The template a cli.im call may use: its tenant's, enabled, and open to the calling app. */
export async function templateForApi(ctx: Ctx, app: App, templateNum: unknown): Promise<Template> {
  const num = parseTemplateNum(templateNum);
  if (num === null) throw new DomainError('VALIDATION', 'template_num must be a template number like M8', { field: 'template_num' });
  const t = await templateByNum(ctx, app.tenantId, num);
  if (!t) throw new DomainError('NOT_FOUND', `template_num M${num} is not a template of this account`, { field: 'template_num' });
  if (t.appId !== null && t.appId !== app.id) throw new DomainError('FORBIDDEN', `this api_key is not the key of template M${num}`, { field: 'api_key' });
  if (t.appId === null) {
    const bound = await ctx.db.kysely.selectFrom('code_templates').select('num').where('app_id', '=', app.id).executeTakeFirst();
    if (bound) throw new DomainError('FORBIDDEN', `this api_key is the key of template M${bound.num}`, { field: 'api_key' });
  }
  if (!t.apiEnabled) throw new DomainError('SERVICE_DISABLED', `the API of template M${num} is not enabled`, { field: 'template_num' });
  return t;
}

// ---------------------------------------------------------------------------------------------
// Records

const recordQuery = (db: Kysely<DB>) => db.selectFrom('code_records').innerJoin('links', 'links.id', 'code_records.link_id').selectAll('code_records').select('links.code');

/** Validates every values array first (nothing is stored if one fails), naming the row. */
export function checkBatch(t: Template, rows: unknown[]): string[][] {
  if (!Array.isArray(rows) || rows.length === 0 || rows.length > MAX_BATCH) throw new DomainError('VALIDATION', `records must hold 1 to ${MAX_BATCH} records`, { field: 'records' });
  return rows.map((v, i) => {
    try {
      return checkValues(t.fields, v);
    } catch (e) {
      if (e instanceof DomainError) throw new DomainError(e.code, `records[${i}]: ${e.message}`, { field: `records[${i}].${e.field ?? 'values'}` });
      throw e;
    }
  });
}

/** Inserts records (one short link each) inside trx. */
async function insertRecords(ctx: Ctx, trx: Kysely<DB>, t: Template, valuesList: string[][], actor: string): Promise<CodeRecord[]> {
  const now = ctx.clock.now();
  const refs = valuesList.map(() => ctx.ids.hex32());
  const links = await createLinks(ctx, t.tenantId, 'code', refs, trx);
  const out: CodeRecord[] = [];
  for (let i = 0; i < valuesList.length; i += 200) {
    const chunk = valuesList.slice(i, i + 200);
    const rows = await trx
      .insertInto('code_records')
      .values(chunk.map((values, k) => ({ tenant_id: t.tenantId, template_id: t.id, link_id: links[i + k].id, values: JSON.stringify(values), version: 1, created_at: now, updated_at: now })))
      .returningAll()
      .execute();
    const byLink = new Map(rows.map((r) => [Number(r.link_id), r]));
    const recs = chunk.map((_, k) => toRecord({ ...byLink.get(links[i + k].id)!, code: links[i + k].code }));
    await trx
      .insertInto('code_record_history')
      .values(recs.map((r) => ({ record_id: r.id, version: 1, values: JSON.stringify(r.values), actor, at: now })))
      .execute();
    out.push(...recs);
  }
  return out;
}

/**
 * Creates records (one short link each) in one transaction: all or nothing. QR images are not
 * rendered here; they are rendered (and cached) when first asked for.
 */
export function createRecords(ctx: Ctx, t: Template, valuesList: string[][], actor: string): Promise<CodeRecord[]> {
  return ctx.db.tx((trx) => insertRecords(ctx, trx, t, valuesList, actor));
}

// Group commit for single creations (the cli.im API): calls that arrive while a transaction is
// being prepared share the next one, so concurrent callers pay for one commit (one fsync) together.
interface Pending {
  t: Template;
  values: string[];
  actor: string;
  resolve: (r: CodeRecord) => void;
  reject: (e: unknown) => void;
}
interface Queue {
  items: Pending[];
  running: boolean;
  scheduled: boolean;
}
const queues = new WeakMap<Ctx, Queue>();
const GROUP_MAX = 200;

async function drain(ctx: Ctx, q: Queue): Promise<void> {
  q.running = true;
  try {
    while (q.items.length) {
      const group = q.items.splice(0, GROUP_MAX);
      try {
        const recs = await ctx.db.tx(async (trx) => {
          const out: CodeRecord[] = [];
          for (const p of group) out.push(...(await insertRecords(ctx, trx, p.t, [p.values], p.actor)));
          return out;
        });
        group.forEach((p, i) => p.resolve(recs[i]));
      } catch {
        // one bad apple must not fail the others: redo them one by one
        for (const p of group) await createRecords(ctx, p.t, [p.values], p.actor).then(([r]) => p.resolve(r), p.reject);
      }
    }
  } finally {
    q.running = false;
  }
}

/** Creates one record; concurrent calls are committed together (see above). Values must be checked already. */
export function createRecordGrouped(ctx: Ctx, t: Template, values: string[], actor: string): Promise<CodeRecord> {
  let q = queues.get(ctx);
  if (!q) queues.set(ctx, (q = { items: [], running: false, scheduled: false }));
  const queue = q;
  return new Promise<CodeRecord>((resolve, reject) => {
    queue.items.push({ t, values, actor, resolve, reject });
    if (!queue.running && !queue.scheduled) {
      queue.scheduled = true;
      setImmediate(() => {
        queue.scheduled = false;
        void drain(ctx, queue);
      });
    }
  });
}

export async function getRecord(ctx: Ctx, id: number): Promise<CodeRecord | null> {
  const r = await recordQuery(ctx.db.kysely).where('code_records.id', '=', id).executeTakeFirst();
  return r ? toRecord(r) : null;
}

export async function recordByLink(ctx: Ctx, linkId: number): Promise<CodeRecord | null> {
  const r = await recordQuery(ctx.db.kysely).where('code_records.link_id', '=', linkId).executeTakeFirst();
  return r ? toRecord(r) : null;
}

export async function listRecords(ctx: Ctx, templateId: number, opts: { limit?: number; offset?: number; afterId?: number } = {}): Promise<CodeRecord[]> {
  let q = recordQuery(ctx.db.kysely).where('code_records.template_id', '=', templateId).orderBy('code_records.id');
  if (opts.afterId !== undefined) q = q.where('code_records.id', '>', opts.afterId);
  return (await q.limit(Math.min(opts.limit ?? 100, 5000)).offset(opts.offset ?? 0).execute()).map(toRecord);
}

/** New values for a record (validated against its template); the code and its image stay; the next scan shows them. */
export async function editRecord(ctx: Ctx, id: number, values: unknown, actor: string): Promise<CodeRecord> {
  const cur = await getRecord(ctx, id);
  if (!cur) throw new DomainError('NOT_FOUND', `no code record ${id}`);
  const t = (await getTemplate(ctx, cur.templateId))!;
  const vals = checkValues(t.fields, values);
  const now = ctx.clock.now();
  await ctx.db.tx(async (trx) => {
    const r = await trx
      .updateTable('code_records')
      .set({ values: JSON.stringify(vals), version: sql<number>`version + 1`, updated_at: now })
      .where('id', '=', id)
      .returning('version')
      .executeTakeFirstOrThrow();
    await trx.insertInto('code_record_history').values({ record_id: id, version: Number(r.version), values: JSON.stringify(vals), actor, at: now }).execute();
  });
  invalidateLink(ctx, cur.code);
  return (await getRecord(ctx, id))!;
}

export async function recordHistory(ctx: Ctx, id: number): Promise<{ version: number; values: string[]; actor: string; at: number }[]> {
  const rows = await ctx.db.kysely.selectFrom('code_record_history').selectAll().where('record_id', '=', id).orderBy('version').execute();
  return rows.map((r) => ({ version: Number(r.version), values: JSON.parse(r.values) as string[], actor: r.actor, at: Number(r.at) }));
}

// ---------------------------------------------------------------------------------------------
// Signed, expiring QR image URLs (qrstyle_url)

const keys = new WeakMap<Ctx, Buffer>();

async function urlKey(ctx: Ctx): Promise<Buffer> {
  let k = keys.get(ctx);
  if (k) return k;
  const db = ctx.db.kysely;
  await db.insertInto('settings').values({ key: 'codes_qr_url_key', value: randomBytes(32).toString('hex') }).onConflict((oc) => oc.column('key').doNothing()).execute();
  k = Buffer.from((await db.selectFrom('settings').select('value').where('key', '=', 'codes_qr_url_key').executeTakeFirstOrThrow()).value, 'hex');
  keys.set(ctx, k);
  return k;
}

const qrSig = (key: Buffer, code: string, exp: number) => createHmac('sha256', key).update(`qr:${code}:${exp}`).digest('base64url').slice(0, 32);

/** `${publicUrl}/qr/<code>.png?e=<unix s>&s=<sig>`, valid for one day from now. */
export async function signedQrUrl(ctx: Ctx, code: string): Promise<string> {
  const exp = Math.floor((ctx.clock.now() + QR_URL_TTL_MS) / 1000);
  return `${ctx.config.publicUrl}/qr/${code}.png?e=${exp}&s=${qrSig(await urlKey(ctx), code, exp)}`;
}

export async function checkQrUrl(ctx: Ctx, code: string, e: string | undefined, s: string | undefined): Promise<'ok' | 'expired' | 'bad'> {
  if (!e || !s || !/^\d{1,12}$/.test(e)) return 'bad';
  if (!safeEqual(s, qrSig(await urlKey(ctx), code, Number(e)))) return 'bad';
  return Number(e) * 1000 < ctx.clock.now() ? 'expired' : 'ok';
}

/** The QR image style of a record's template. */
export async function recordQrStyle(ctx: Ctx, rec: CodeRecord): Promise<QrStyle> {
  return (await getTemplate(ctx, rec.templateId))?.style.qr ?? {};
}

export const recordUrl = (ctx: Ctx, rec: { code: string }) => shortUrl(ctx, rec.code);

// ---------------------------------------------------------------------------------------------
// Analytics

export function recordStats(ctx: Ctx, rec: CodeRecord, opts: { from?: number; to?: number; bucket: 'hour' | 'day' }): Promise<LinkStats> {
  return linkStats(ctx, { tenantId: rec.tenantId, linkIds: [rec.linkId] }, opts);
}

export function templateStats(ctx: Ctx, t: Template, opts: { from?: number; to?: number; bucket: 'hour' | 'day' }): Promise<LinkStats> {
  const q = ctx.db.kysely.selectFrom('code_records').select('link_id').where('template_id', '=', t.id);
  return linkStats(ctx, { tenantId: t.tenantId, linkIdsQuery: q }, opts);
}
