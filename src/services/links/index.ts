/**
 * Short links and their scans. A link maps /s/<code> to something in a service (a redirect URL, a
 * code record, a report). Lookups on the scan path come from an in-process cache; edits invalidate
 * it here and on every other server through the kernel bus (Redis pub/sub when configured). Scan events
 * are buffered and written in batches, never on the request's critical path.
 */
import { randomBytes } from 'node:crypto';
import { sql, type Expression, type Kysely } from 'kysely';
import type { Ctx } from '../../core/context.js';
import { BatchBuffer, insertStatements } from '../../core/db/batching.js';
import { prepared } from '../../core/db/index.js';
import type { DB } from '../../core/db/schema.js';
import { DomainError } from '../../core/errors.js';
import { SCAN_COLS, SCAN_INSERT, scanParams, type ScanEvent } from './scans.js';
import type { LinkTable } from './schema.js';
import type { Selectable } from 'kysely';
import './schema.js';

export { classifyUa, ipPrefix, isBot, referrerHost } from './classify.js';

export type LinkKind = 'url' | 'code' | 'report';
export const LINK_KINDS: readonly LinkKind[] = ['url', 'code', 'report'];

export interface Link {
  id: number;
  code: string;
  tenantId: number;
  kind: LinkKind;
  targetRef: string;
  url: string | null;
  createdAt: number;
}

export interface LinkView extends Link {
  disabled: boolean;
}

/** Unambiguous alphabet: no 0/O/o, 1/l/I. 56^8 ≈ 9.7e13 codes. */
export const CODE_ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz';
export const CODE_LENGTH = 8;
export const CODE_RE = /^[2-9A-HJ-NP-Za-km-np-z]{8}$/;
/** Codes a lookup may even consider (legacy or custom codes may be 4-32 of A-Z a-z 0-9 _ -). */
const LOOKUP_RE = /^[A-Za-z0-9_-]{4,32}$/;

export function newCode(ctx: Ctx): string {
  let n = BigInt('0x' + ctx.ids.hex32());
  const base = BigInt(CODE_ALPHABET.length);
  let out = '';
  for (let i = 0; i < CODE_LENGTH; i++) {
    out += CODE_ALPHABET[Number(n % base)];
    n /= base;
  }
  return out;
}

export const shortUrl = (ctx: Ctx, code: string): string => `${ctx.config.publicUrl}/s/${code}`;

const toLink = (r: Selectable<LinkTable>): LinkView => ({
  id: Number(r.id),
  code: r.code,
  tenantId: Number(r.tenant_id),
  kind: r.kind as LinkKind,
  targetRef: r.target_ref,
  url: r.url,
  createdAt: Number(r.created_at),
  disabled: !!r.disabled,
});

export function checkRedirectUrl(url: unknown, field = 'url'): string {
  if (typeof url !== 'string' || url.length > 2048) throw new DomainError('VALIDATION', `${field} must be an http(s) URL of at most 2048 characters`, { field });
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DomainError('VALIDATION', `${field} is not a valid URL`, { field });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new DomainError('VALIDATION', `${field} must use http or https`, { field });
  return u.toString();
}

function checkInput(input: { tenantId: number; kind: LinkKind; targetRef: string; url?: string }): string | null {
  if (!LINK_KINDS.includes(input.kind)) throw new DomainError('VALIDATION', `kind must be one of ${LINK_KINDS.join(', ')}`, { field: 'kind' });
  if (typeof input.targetRef !== 'string' || !input.targetRef || input.targetRef.length > 2048) {
    throw new DomainError('VALIDATION', 'target_ref is required (at most 2048 characters)', { field: 'target_ref' });
  }
  if (input.kind === 'url') return checkRedirectUrl(input.url);
  if (input.url !== undefined && input.url !== null) throw new DomainError('VALIDATION', `only url links carry a url`, { field: 'url' });
  return null;
}

const byTarget = (db: Kysely<DB>, tenantId: number, kind: LinkKind, targetRef: string) =>
  db.selectFrom('links').selectAll().where('tenant_id', '=', tenantId).where('kind', '=', kind).where('target_ref', '=', targetRef).executeTakeFirst();

/**
 * The link of (tenant, kind, targetRef), created if missing. Idempotent and safe under concurrency:
 * the unique index on (tenant_id, kind, target_ref) decides the winner, the loser reads it back.
 * Runs inside trx when given (the caller's transaction), without aborting it on a conflict.
 */
export async function ensureLink(
  ctx: Ctx,
  input: { tenantId: number; kind: LinkKind; targetRef: string; url?: string },
  trx?: Kysely<DB>,
): Promise<{ link: Link; created: boolean }> {
  const url = checkInput(input);
  const db = trx ?? ctx.db.kysely;
  const found = await byTarget(db, input.tenantId, input.kind, input.targetRef);
  if (found) return { link: toLink(found), created: false };
  for (let attempt = 0; attempt < 5; attempt++) {
    const code = newCode(ctx);
    const row = await db
      .insertInto('links')
      .values({ code, tenant_id: input.tenantId, kind: input.kind, target_ref: input.targetRef, url, created_at: ctx.clock.now(), disabled: 0 })
      .onConflict((oc) => oc.doNothing())
      .returningAll()
      .executeTakeFirst();
    if (row) {
      forget(ctx, code);
      return { link: toLink(row), created: true };
    }
    const again = await byTarget(db, input.tenantId, input.kind, input.targetRef);
    if (again) return { link: toLink(again), created: false };
    // else: the random code collided with another link's; draw again
  }
  throw new DomainError('INTERNAL', 'could not allocate a short code');
}

/**
 * Creates one new link per targetRef in a few multi-row statements (batch record creation). The
 * targetRefs must be new (fresh ids): an existing (tenant, kind, targetRef) is refused as CONFLICT.
 * Runs in trx when given. Returns the links in the order of targetRefs.
 */
export async function createLinks(ctx: Ctx, tenantId: number, kind: LinkKind, targetRefs: string[], trx?: Kysely<DB>): Promise<Link[]> {
  const db = trx ?? ctx.db.kysely;
  const t = ctx.clock.now();
  const out = new Map<string, Link>();
  let todo = [...targetRefs];
  for (let attempt = 0; attempt < 5 && todo.length; attempt++) {
    for (let i = 0; i < todo.length; i += 200) {
      const rows = await db
        .insertInto('links')
        .values(todo.slice(i, i + 200).map((ref) => ({ code: newCode(ctx), tenant_id: tenantId, kind, target_ref: ref, url: null, created_at: t, disabled: 0 })))
        .onConflict((oc) => oc.doNothing())
        .returningAll()
        .execute();
      for (const r of rows) out.set(r.target_ref, toLink(r));
    }
    const missing = todo.filter((r) => !out.has(r));
    if (missing.length && (await db.selectFrom('links').select('id').where('tenant_id', '=', tenantId).where('kind', '=', kind).where('target_ref', 'in', missing.slice(0, 500)).executeTakeFirst())) {
      throw new DomainError('CONFLICT', 'a link for one of these targets exists already');
    }
    todo = missing; // code collisions: draw again
  }
  if (todo.length) throw new DomainError('INTERNAL', 'could not allocate short codes');
  return targetRefs.map((r) => {
    const l = out.get(r)!;
    return { id: l.id, code: l.code, tenantId: l.tenantId, kind: l.kind, targetRef: l.targetRef, url: l.url, createdAt: l.createdAt };
  });
}

export async function findLinkByTarget(ctx: Ctx, tenantId: number, kind: LinkKind, targetRef: string): Promise<Link | null> {
  const r = await byTarget(ctx.db.kysely, tenantId, kind, targetRef);
  return r ? toLink(r) : null;
}

export async function getLink(ctx: Ctx, code: string): Promise<LinkView | null> {
  if (!LOOKUP_RE.test(code)) return null;
  const [r] = await linkByCode(ctx.db.kysely, { code });
  return r ? toLink(r) : null;
}

export async function listLinks(ctx: Ctx, f: { tenantId?: number; kind?: LinkKind; limit?: number; offset?: number }): Promise<LinkView[]> {
  let q = ctx.db.kysely.selectFrom('links').selectAll().orderBy('id', 'desc');
  if (f.tenantId !== undefined) q = q.where('tenant_id', '=', f.tenantId);
  if (f.kind !== undefined) q = q.where('kind', '=', f.kind);
  return (await q.limit(Math.min(f.limit ?? 100, 1000)).offset(f.offset ?? 0).execute()).map(toLink);
}

/** Disables / re-enables a link, or changes a url link's target. The next scan sees it (every server within 1 s). */
export async function updateLink(ctx: Ctx, code: string, u: { disabled?: boolean; url?: string }): Promise<LinkView> {
  const cur = await getLink(ctx, code);
  if (!cur) throw new DomainError('NOT_FOUND', `no link ${code}`);
  const set: { disabled?: number; url?: string } = {};
  if (u.disabled !== undefined) set.disabled = u.disabled ? 1 : 0;
  if (u.url !== undefined) {
    if (cur.kind !== 'url') throw new DomainError('VALIDATION', 'only url links have a url to change', { field: 'url' });
    set.url = checkRedirectUrl(u.url);
  }
  if (Object.keys(set).length === 0) return cur;
  const r = await ctx.db.kysely.updateTable('links').set(set).where('id', '=', cur.id).returningAll().executeTakeFirstOrThrow();
  invalidateLink(ctx, code);
  return toLink(r);
}

// ---------------------------------------------------------------------------------------------
// Per-process state: the resolve cache, the invalidation channel, the scan buffer.

/** Safety net: an entry is re-read at least this often even if an invalidation was lost. */
const CACHE_TTL_MS = 60_000;
const NEGATIVE_TTL_MS = 2_000;
const CACHE_MAX = 100_000;
export const LINKS_TOPIC = 'links';
export const FLUSH_MS = 250;
export const FLUSH_AT = 500;
const BUFFER_MAX = 50_000;

interface State {
  cache: Map<string, { link: Link | null; at: number }>;
  buffer: BatchBuffer<ScanEvent>;
  salt: string | null;
}

const states = new WeakMap<Ctx, State>();
function state(ctx: Ctx): State {
  let s = states.get(ctx);
  if (!s) {
    const st: State = { cache: new Map(), buffer: new BatchBuffer({ flushMs: FLUSH_MS, flushAt: FLUSH_AT, max: BUFFER_MAX, store: (batch) => storeScans(ctx, st, batch), warm: () => void ctx.db.batch([]) }), salt: null };
    states.set(ctx, (s = st));
  }
  return s;
}

/** Drops the local cache entry only (used on create, and by the invalidation subscriber). */
function forget(ctx: Ctx, code: string): void {
  states.get(ctx)?.cache.delete(code);
}

/** Subscribes to invalidations (on every server, through the bus) and loads the visitor salt. */
export async function startLinks(ctx: Ctx): Promise<void> {
  const s = state(ctx);
  s.salt = await visitorSalt(ctx);
  ctx.bus.subscribe(
    LINKS_TOPIC,
    (code) => forget(ctx, code),
    () => s.cache.clear(), // a subscriber that was disconnected may have missed invalidations
  );
}

export async function stopLinks(ctx: Ctx): Promise<void> {
  const s = states.get(ctx);
  if (!s) return;
  await flushScans(ctx);
  states.delete(ctx);
}

/** The cached answer for a code without touching the database: Link, null (known absent), or undefined (not cached). */
export function peekLink(ctx: Ctx, code: string): Link | null | undefined {
  const hit = states.get(ctx)?.cache.get(code);
  if (!hit || ctx.clock.now() - hit.at >= (hit.link ? CACHE_TTL_MS : NEGATIVE_TTL_MS)) return undefined;
  return hit.link;
}

const linkByCode = prepared<{ code: string }, Selectable<LinkTable>>((db, p) => db.selectFrom('links').selectAll().where('code', '=', p.code));

/** The link behind a code, from the in-process cache; null for unknown and disabled links. */
export async function resolveLink(ctx: Ctx, code: string): Promise<Link | null> {
  if (!LOOKUP_RE.test(code)) return null;
  const s = state(ctx);
  const t = ctx.clock.now();
  const hit = s.cache.get(code);
  if (hit && t - hit.at < (hit.link ? CACHE_TTL_MS : NEGATIVE_TTL_MS)) return hit.link;
  const [r] = await linkByCode(ctx.db.kysely, { code });
  const link = r && !r.disabled ? toLink(r) : null;
  const view: Link | null = link && { id: link.id, code: link.code, tenantId: link.tenantId, kind: link.kind, targetRef: link.targetRef, url: link.url, createdAt: link.createdAt };
  if (s.cache.size >= CACHE_MAX) s.cache.clear();
  s.cache.set(code, { link: view, at: t });
  return view;
}

/** Drops a code from the cache here, and on every server through the bus. */
export function invalidateLink(ctx: Ctx, code: string): void {
  forget(ctx, code);
  ctx.bus.publish(LINKS_TOPIC, code);
}

// ---------------------------------------------------------------------------------------------
// Scans

async function visitorSalt(ctx: Ctx): Promise<string> {
  const db = ctx.db.kysely;
  await db.insertInto('settings').values({ key: 'links_visitor_salt', value: randomBytes(32).toString('hex') }).onConflict((oc) => oc.column('key').doNothing()).execute();
  return (await db.selectFrom('settings').select('value').where('key', '=', 'links_visitor_salt').executeTakeFirstOrThrow()).value;
}

/**
 * Stores a batch: one relaxed transaction (scan events may lose their last moments on a power cut,
 * not on a crash) of multi-row inserts of INSERT_ROWS rows, compiled once per size, on the
 * database's batch writer (SQLite: its own thread, off the event loop). This is the scan path's
 * only per-event database cost.
 */
async function storeScans(ctx: Ctx, s: State, batch: ScanEvent[]): Promise<void> {
  try {
    const salt = s.salt ?? (s.salt = await visitorSalt(ctx));
    await ctx.db.batch(insertStatements(ctx.db.dialect, SCAN_INSERT, SCAN_COLS.length, scanParams(batch, salt)), { relaxed: true });
  } catch (e) {
    ctx.log.error({ err: String((e as Error)?.message ?? e), lost: batch.length }, 'could not store scan events');
  }
}

/** Buffers one scan; written with others every FLUSH_MS or at FLUSH_AT events, and on close. */
export function recordScan(ctx: Ctx, link: Link, hit: { ua?: string; referrer?: string; ip: string }): void {
  state(ctx).buffer.push({ linkId: link.id, tenantId: link.tenantId, at: ctx.clock.now(), ua: hit.ua?.slice(0, 512), referrer: hit.referrer?.slice(0, 2048), ip: hit.ip });
}

/** Writes every buffered scan now. Resolves when they are stored (or logged as lost). */
export async function flushScans(ctx: Ctx): Promise<void> {
  await states.get(ctx)?.buffer.flush();
}

// ---------------------------------------------------------------------------------------------
// Analytics

export interface LinkStats {
  from: number;
  to: number;
  bucket: 'hour' | 'day';
  /** Scans by people (bots excluded). */
  scans: number;
  /** Distinct visitor-days (hashed address + UTC day) among people's scans. */
  unique_visitors: number;
  /** Scans by bots and link-preview fetchers, counted apart. */
  bots: number;
  series: { t: number; scans: number; unique_visitors: number; bots: number }[];
  devices: Record<string, number>;
  os: Record<string, number>;
  referrers: { host: string; scans: number }[];
}

const BUCKET_MS = { hour: 3_600_000, day: 86_400_000 } as const;

export async function linkStats(
  ctx: Ctx,
  scope: { tenantId: number; linkIds?: number[]; /** a query selecting link ids (for large sets) */ linkIdsQuery?: Expression<unknown> },
  opts: { from?: number; to?: number; bucket: 'hour' | 'day' },
): Promise<LinkStats> {
  const ms = BUCKET_MS[opts.bucket];
  if (!ms) throw new DomainError('VALIDATION', 'bucket must be hour or day', { field: 'bucket' });
  const to = opts.to ?? ctx.clock.now();
  const from = opts.from ?? to - (opts.bucket === 'hour' ? 48 : 30) * ms;
  if (!(from <= to)) throw new DomainError('VALIDATION', 'from must not be after to', { field: 'from' });
  if ((to - from) / ms > 5000) throw new DomainError('VALIDATION', `at most 5000 ${opts.bucket} buckets per query; narrow from/to`, { field: 'from' });
  if (scope.linkIds && scope.linkIds.length === 0) return { from, to, bucket: opts.bucket, scans: 0, unique_visitors: 0, bots: 0, series: [], devices: {}, os: {}, referrers: [] };
  await flushScans(ctx);
  const db = ctx.db.kysely;
  const base = () => {
    let q = db.selectFrom('link_scans').where('tenant_id', '=', scope.tenantId).where('at', '>=', from).where('at', '<', to);
    if (scope.linkIds) q = q.where('link_id', 'in', scope.linkIds);
    if (scope.linkIdsQuery) q = q.where(sql<boolean>`link_id in (${scope.linkIdsQuery})`);
    return q;
  };
  const bucketExpr = sql<number>`(at / ${sql.lit(ms)}) * ${sql.lit(ms)}`;
  const [series, totals, devices, oses, refs] = await Promise.all([
    base()
      .select([bucketExpr.as('t'), sql<number>`sum(case when bot = 0 then 1 else 0 end)`.as('scans'), sql<number>`count(distinct case when bot = 0 then visitor end)`.as('uv'), sql<number>`sum(bot)`.as('bots')])
      .groupBy(bucketExpr)
      .orderBy(bucketExpr)
      .execute(),
    base()
      .select([sql<number>`sum(case when bot = 0 then 1 else 0 end)`.as('scans'), sql<number>`count(distinct case when bot = 0 then visitor end)`.as('uv'), sql<number>`sum(bot)`.as('bots')])
      .executeTakeFirst(),
    base().where('bot', '=', 0).select(['device', sql<number>`count(*)`.as('n')]).groupBy('device').execute(),
    base().where('bot', '=', 0).select(['os', sql<number>`count(*)`.as('n')]).groupBy('os').execute(),
    base().where('bot', '=', 0).where('referrer_host', 'is not', null).select(['referrer_host', sql<number>`count(*)`.as('n')]).groupBy('referrer_host').orderBy(sql`count(*)`, 'desc').limit(20).execute(),
  ]);
  return {
    from,
    to,
    bucket: opts.bucket,
    scans: Number(totals?.scans ?? 0),
    unique_visitors: Number(totals?.uv ?? 0),
    bots: Number(totals?.bots ?? 0),
    series: series.map((r) => ({ t: Number(r.t), scans: Number(r.scans), unique_visitors: Number(r.uv), bots: Number(r.bots) })),
    devices: Object.fromEntries(devices.map((r) => [r.device, Number(r.n)])),
    os: Object.fromEntries(oses.map((r) => [r.os, Number(r.n)])),
    referrers: refs.map((r) => ({ host: r.referrer_host!, scans: Number(r.n) })),
  };
}
