/**
 * The request log and usage aggregates (issue 8: "usage per app and per service, a request log").
 *
 * Every request answered on an API surface (the five dialects and the native REST API) becomes one
 * small object pushed into an in-process buffer by record(): no database access, no serialisation,
 * no await on the request path. A timer writes the buffer in batches (one transaction every
 * FLUSH_MS or FLUSH_AT rows), and close() writes what is left. The same transaction adds the batch
 * to the hourly aggregates (requests, errors, total duration per tenant/app/service/hour) with
 * `insert … on conflict … do update set n = n + excluded.n`, so several processes on one database
 * add up exactly; usage charts read the aggregates, never the raw log.
 *
 * The log keeps no secret: the route pattern (never the URL, never the query string), the status,
 * the symbolic error code, and the client address cut to its /24 (IPv4) or /48 (IPv6) prefix.
 * A sweeper drops rows past the retention horizon (and past the row cap), and aggregates past theirs.
 */
import type { Generated } from 'kysely';
import type { Ctx } from '../../core/context.js';
import { defineMigration } from '../../core/db/migrations.js';
import { BatchBuffer, insertStatements } from '../../core/db/batching.js';
import { DomainError } from '../../core/errors.js';
import { ipPrefix } from '../links/classify.js';

// ---------------------------------------------------------------------------------------------
// Tables

export interface RequestLogTable {
  id: Generated<number>;
  at: number;
  tenant_id: number | null;
  app_id: number | null;
  /** native | mininglamp | fangtang | cli | ulord | bqp */
  service: string;
  method: string;
  /** The route pattern (`/rest/v1/apps/:id`), or `(unmatched)` for a request no route took. */
  route: string;
  status: number;
  duration_us: number;
  ip_prefix: string;
  /** Symbolic error code (SIGN_INVALID, VALIDATION…) when the request failed with one. */
  error_code: string | null;
}

/** One row per tenant/app/service/UTC hour; 0 stands for "no tenant" / "no app" (unique keys need a value). */
export interface UsageHourlyTable {
  tenant_id: number;
  app_id: number;
  service: string;
  hour: number;
  requests: number;
  errors: number;
  duration_us: number;
}

declare module '../../core/db/schema.js' {
  interface DB {
    request_log: RequestLogTable;
    usage_hourly: UsageHourlyTable;
  }
}

defineMigration('0800_request_log', async (db, d) => {
  await d
    .id(db.schema.createTable('request_log'))
    .addColumn('at', d.big, (c) => c.notNull())
    .addColumn('tenant_id', d.big)
    .addColumn('app_id', d.big)
    .addColumn('service', 'text', (c) => c.notNull())
    .addColumn('method', 'text', (c) => c.notNull())
    .addColumn('route', 'text', (c) => c.notNull())
    .addColumn('status', 'integer', (c) => c.notNull())
    .addColumn('duration_us', d.big, (c) => c.notNull())
    .addColumn('ip_prefix', 'text', (c) => c.notNull())
    .addColumn('error_code', 'text')
    .execute();
  await db.schema.createIndex('request_log_at').on('request_log').columns(['at', 'id']).execute();
  await db.schema.createIndex('request_log_tenant_at').on('request_log').columns(['tenant_id', 'at', 'id']).execute();
  // no index by app: a filter by app also filters by the app's tenant (requestLog), and every index
  // costs each written row (~0.4 µs CPU on SQLite)

  await db.schema
    .createTable('usage_hourly')
    .addColumn('tenant_id', d.big, (c) => c.notNull())
    .addColumn('app_id', d.big, (c) => c.notNull())
    .addColumn('service', 'text', (c) => c.notNull())
    .addColumn('hour', d.big, (c) => c.notNull())
    .addColumn('requests', d.big, (c) => c.notNull())
    .addColumn('errors', d.big, (c) => c.notNull())
    .addColumn('duration_us', d.big, (c) => c.notNull())
    .addPrimaryKeyConstraint('usage_hourly_pk', ['tenant_id', 'app_id', 'service', 'hour'])
    .execute();
  await db.schema.createIndex('usage_hourly_hour').on('usage_hourly').columns(['hour']).execute();
});

// ---------------------------------------------------------------------------------------------
// Recording

/** What the HTTP layer hands over per request; the address is cut to its prefix at flush time. */
export interface RequestEvent {
  at: number;
  tenantId: number | null;
  appId: number | null;
  service: string;
  method: string;
  route: string;
  status: number;
  durationUs: number;
  ip: string;
  code: string | null;
}

export const FLUSH_MS = 1000;
export const FLUSH_AT = 1000;
/** Past this many unwritten events (the database is far behind) new ones are counted and dropped. */
const BUFFER_MAX = 100_000;
const SWEEP_MS = 10 * 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

interface State {
  buffer: BatchBuffer<RequestEvent>;
  sweeper: NodeJS.Timeout | null;
  closed: boolean;
}

const states = new WeakMap<Ctx, State>();
function state(ctx: Ctx): State {
  let s = states.get(ctx);
  if (!s) states.set(ctx, (s = { buffer: new BatchBuffer({ flushMs: FLUSH_MS, flushAt: FLUSH_AT, max: BUFFER_MAX, store: (batch) => storeRequests(ctx, batch), warm: () => void ctx.db.batch([]) }), sweeper: null, closed: false }));
  return s;
}

/** The recorder of a platform: `push` is what the request path calls (a few hundred nanoseconds). */
export interface Recorder {
  push(e: RequestEvent): void;
}

/** Returns the platform's recorder; the HTTP layer keeps it and calls push() once per request. */
export function recorder(ctx: Ctx): Recorder {
  const b = state(ctx).buffer;
  return { push: (e) => b.push(e) };
}

/** Starts the retention sweeper (every process runs one; sweeping is idempotent). */
export function startUsage(ctx: Ctx): void {
  const s = state(ctx);
  s.closed = false;
  if (s.sweeper) return;
  s.sweeper = setInterval(() => void sweepRequests(ctx).catch((e) => ctx.log.error({ err: String(e) }, 'request log sweep failed')), SWEEP_MS);
  s.sweeper.unref();
}

/** Writes what is buffered and stops the timers. Requests answered afterwards are still buffered and written by the next flush. */
export async function stopUsage(ctx: Ctx): Promise<void> {
  const s = states.get(ctx);
  if (!s) return;
  if (s.sweeper) clearInterval(s.sweeper);
  s.sweeper = null;
  await flushRequests(ctx);
  if (s.buffer.dropped) ctx.log.warn({ dropped: s.buffer.dropped }, 'request log events dropped (the database was too far behind)');
  states.delete(ctx);
}

const LOG_COLS = ['at', 'tenant_id', 'app_id', 'service', 'method', 'route', 'status', 'duration_us', 'ip_prefix', 'error_code'] as const;
const AGG_COLS = ['tenant_id', 'app_id', 'service', 'hour', 'requests', 'errors', 'duration_us'] as const;
const LOG_HEAD = `insert into request_log (${LOG_COLS.join(',')})`;
/** PostgreSQL: the whole batch as one array per column (10 parameters, however many rows). */
const PG_LOG_INSERT =
  `${LOG_HEAD} ` +
  `select * from unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::integer[], $8::bigint[], $9::text[], $10::text[])`;
const AGG_HEAD = `insert into usage_hourly (${AGG_COLS.join(',')})`;
const AGG_TAIL =
  'on conflict (tenant_id, app_id, service, hour) do update set requests = usage_hourly.requests + excluded.requests, ' +
  'errors = usage_hourly.errors + excluded.errors, duration_us = usage_hourly.duration_us + excluded.duration_us';

/** A request counts as an error when it answered 4xx/5xx or carried an error code (some dialects answer errors with 200). */
export const isError = (status: number, code: string | null): boolean => status >= 400 || code !== null;

const prefixes = new Map<string, string>();
function prefixOf(ip: string): string {
  let p = prefixes.get(ip);
  if (p === undefined) {
    p = ipPrefix(ip);
    if (prefixes.size >= 10_000) prefixes.clear();
    prefixes.set(ip, p);
  }
  return p;
}

/** Writes every buffered event now (log rows and aggregates in one transaction). */
export async function flushRequests(ctx: Ctx): Promise<void> {
  await states.get(ctx)?.buffer.flush();
}

async function storeRequests(ctx: Ctx, batch: RequestEvent[]): Promise<void> {
  try {
    const pg = ctx.db.dialect === 'postgres';
    const params: unknown[] = [];
    const columns: unknown[][] = LOG_COLS.map(() => []);
    const agg = new Map<string, [number, number, string, number, number, number, number]>();
    for (const e of batch) {
      if (pg) {
        columns[0].push(e.at);
        columns[1].push(e.tenantId);
        columns[2].push(e.appId);
        columns[3].push(e.service);
        columns[4].push(e.method);
        columns[5].push(e.route);
        columns[6].push(e.status);
        columns[7].push(e.durationUs);
        columns[8].push(prefixOf(e.ip));
        columns[9].push(e.code);
      } else params.push(e.at, e.tenantId, e.appId, e.service, e.method, e.route, e.status, e.durationUs, prefixOf(e.ip), e.code);
      const hour = e.at - (e.at % HOUR);
      const key = `${e.tenantId ?? 0}|${e.appId ?? 0}|${e.service}|${hour}`;
      const a = agg.get(key);
      const err = isError(e.status, e.code) ? 1 : 0;
      if (a) {
        a[4]++;
        a[5] += err;
        a[6] += e.durationUs;
      } else agg.set(key, [e.tenantId ?? 0, e.appId ?? 0, e.service, hour, 1, err, e.durationUs]);
    }
    // Rows in one fixed order, so that two processes upserting overlapping keys lock them in the
    // same order (PostgreSQL) and cannot deadlock.
    const rows = [...agg.values()].sort((x, y) => x[0] - y[0] || x[1] - y[1] || (x[2] < y[2] ? -1 : x[2] > y[2] ? 1 : 0) || x[3] - y[3]);
    const dialect = ctx.db.dialect;
    const statements = [
      ...(pg ? [{ sql: PG_LOG_INSERT, parameters: columns }] : insertStatements(dialect, LOG_HEAD, LOG_COLS.length, params)),
      ...insertStatements(dialect, AGG_HEAD, AGG_COLS.length, rows.flat(), AGG_TAIL),
    ];
    // one transaction, on the database's batch writer (SQLite: its own thread, off the event loop)
    await ctx.db.batch(statements, { relaxed: true });
  } catch (e) {
    ctx.log.error({ err: String((e as Error)?.message ?? e), lost: batch.length }, 'could not store request log events');
  }
}

/** Deletes log rows past the horizon and past the row cap, and aggregates past theirs. Returns the rows deleted. */
export async function sweepRequests(ctx: Ctx): Promise<{ log: number; usage: number }> {
  const cfg = ctx.config.requestLog;
  const db = ctx.db.kysely;
  const now = ctx.clock.now();
  let log = 0;
  // In chunks, so a large backlog never holds the write lock for long.
  const chunked = async (where: (q: any) => any): Promise<number> => {
    let total = 0;
    for (;;) {
      const ids = db.selectFrom('request_log').select('id').$call(where).limit(5000);
      const r = await db.deleteFrom('request_log').where('id', 'in', ids).executeTakeFirst();
      const n = Number(r.numDeletedRows);
      total += n;
      if (n < 5000) return total;
    }
  };
  if (cfg.days > 0) log += await chunked((q) => q.where('at', '<', now - cfg.days * DAY));
  if (cfg.maxRows > 0) {
    const edge = await db.selectFrom('request_log').select('id').orderBy('id', 'desc').offset(cfg.maxRows).limit(1).executeTakeFirst();
    if (edge) log += await chunked((q) => q.where('id', '<=', Number(edge.id)));
  }
  let usage = 0;
  if (cfg.usageDays > 0) {
    const r = await db.deleteFrom('usage_hourly').where('hour', '<', now - cfg.usageDays * DAY).executeTakeFirst();
    usage = Number(r.numDeletedRows);
  }
  return { log, usage };
}

// ---------------------------------------------------------------------------------------------
// Reading

export interface Scope {
  /** undefined: every tenant (operators only). */
  tenantId: number | undefined;
}

export type Bucket = 'hour' | 'day';
const BUCKET_MS: Record<Bucket, number> = { hour: HOUR, day: DAY };

export interface UsageQuery {
  from?: number;
  to?: number;
  bucket: Bucket;
  group: 'app' | 'service';
  appId?: number;
  service?: string;
}

export interface UsageSeries {
  /** the app id (as text) or the service name; '0' = requests that authenticated as no app */
  key: string;
  app_id: number | null;
  app_name: string | null;
  service: string | null;
  requests: number;
  errors: number;
  avg_ms: number;
  points: { t: number; requests: number; errors: number; avg_ms: number }[];
}

export interface Usage {
  from: number;
  to: number;
  bucket: Bucket;
  group: 'app' | 'service';
  /** bucket starts (UTC), from the first bucket touching `from` to the last before `to` */
  buckets: number[];
  requests: number;
  errors: number;
  avg_ms: number;
  series: UsageSeries[];
}

const avgMs = (durUs: number, n: number): number => (n ? Math.round(durUs / n / 10) / 100 : 0);

/** Usage from the hourly aggregates, per app or per service, in hourly or daily (UTC) buckets. */
export async function usage(ctx: Ctx, scope: Scope, q: UsageQuery): Promise<Usage> {
  const ms = BUCKET_MS[q.bucket];
  if (!ms) throw new DomainError('VALIDATION', 'bucket must be hour or day', { field: 'bucket' });
  const to = q.to ?? ctx.clock.now();
  const from = q.from ?? to - (q.bucket === 'hour' ? 48 : 30) * ms;
  if (!(from < to)) throw new DomainError('VALIDATION', 'from must be before to', { field: 'from' });
  if ((to - from) / ms > 2000) throw new DomainError('VALIDATION', `at most 2000 ${q.bucket} buckets per query; narrow from/to`, { field: 'from' });
  await flushRequests(ctx);
  const db = ctx.db.kysely;
  const first = from - (from % ms);
  let query = db
    .selectFrom('usage_hourly')
    .select(['app_id', 'service', 'hour', 'requests', 'errors', 'duration_us'])
    .where('hour', '>=', from - (from % HOUR))
    .where('hour', '<', to);
  if (scope.tenantId !== undefined) query = query.where('tenant_id', '=', scope.tenantId);
  if (q.appId !== undefined) query = query.where('app_id', '=', q.appId);
  if (q.service !== undefined) query = query.where('service', '=', q.service);
  const rows = await query.execute();
  const buckets: number[] = [];
  for (let t = first; t < to; t += ms) buckets.push(t);
  const index = new Map(buckets.map((t, i) => [t, i]));
  const series = new Map<string, { s: UsageSeries; dur: number[]; durTotal: number }>();
  let requests = 0;
  let errors = 0;
  let dur = 0;
  for (const r of rows) {
    const hour = Number(r.hour);
    const i = index.get(hour - (hour % ms));
    if (i === undefined) continue;
    const appId = Number(r.app_id);
    const key = q.group === 'app' ? String(appId) : r.service;
    let e = series.get(key);
    if (!e) {
      e = {
        s: {
          key,
          app_id: q.group === 'app' ? (appId || null) : null,
          app_name: null,
          service: q.group === 'service' ? r.service : null,
          requests: 0,
          errors: 0,
          avg_ms: 0,
          points: buckets.map((t) => ({ t, requests: 0, errors: 0, avg_ms: 0 })),
        },
        dur: buckets.map(() => 0),
        durTotal: 0,
      };
      series.set(key, e);
    }
    const n = Number(r.requests);
    const x = Number(r.errors);
    const d = Number(r.duration_us);
    const p = e.s.points[i];
    p.requests += n;
    p.errors += x;
    e.dur[i] += d;
    e.s.requests += n;
    e.s.errors += x;
    e.durTotal += d;
    requests += n;
    errors += x;
    dur += d;
  }
  const out = [...series.values()].map(({ s, dur: ds, durTotal }) => {
    s.points.forEach((p, i) => (p.avg_ms = avgMs(ds[i], p.requests)));
    s.avg_ms = avgMs(durTotal, s.requests);
    return s;
  });
  if (q.group === 'app') {
    const ids = out.map((s) => s.app_id).filter((x): x is number => x !== null);
    if (ids.length) {
      const names = new Map((await db.selectFrom('apps').select(['id', 'name']).where('id', 'in', ids).execute()).map((a) => [Number(a.id), a.name]));
      for (const s of out) if (s.app_id !== null) s.app_name = names.get(s.app_id) ?? null;
    }
  }
  out.sort((a, b) => b.requests - a.requests || (a.key < b.key ? -1 : 1));
  return { from, to, bucket: q.bucket, group: q.group, buckets, requests, errors, avg_ms: avgMs(dur, requests), series: out };
}

export interface LogQuery {
  from?: number;
  to?: number;
  appId?: number;
  service?: string;
  /** exact status */
  status?: number;
  /** 2, 3, 4 or 5: the status class */
  statusClass?: number;
  /** only failed requests (4xx/5xx or an error code) */
  errorsOnly?: boolean;
  errorCode?: string;
  route?: string;
  method?: string;
  cursor?: string;
  limit: number;
}

export interface LogEntry {
  id: number;
  at: number;
  tenant_id: number | null;
  app_id: number | null;
  service: string;
  method: string;
  route: string;
  status: number;
  duration_ms: number;
  ip_prefix: string;
  error_code: string | null;
}

/** The cursor of a page: the (at, id) of its last row, as `<at>.<id>`. */
function parseCursor(c: string): { at: number; id: number } {
  const m = /^(\d{1,15})\.(\d{1,15})$/.exec(c);
  if (!m) throw new DomainError('VALIDATION', 'cursor is not one this API returned', { field: 'cursor' });
  return { at: Number(m[1]), id: Number(m[2]) };
}

/** The request log, newest first, filtered, a page at a time (pass next_cursor back for the next page). */
export async function requestLog(ctx: Ctx, scope: Scope, q: LogQuery): Promise<{ items: LogEntry[]; next_cursor: string | null }> {
  if (q.from !== undefined && q.to !== undefined && !(q.from < q.to)) throw new DomainError('VALIDATION', 'from must be before to', { field: 'from' });
  await flushRequests(ctx);
  let tenantId = scope.tenantId;
  if (tenantId === undefined && q.appId !== undefined) {
    // rows of an app carry its tenant: narrowing to it lets the (tenant_id, at) index serve the query
    const app = await ctx.db.kysely.selectFrom('apps').select('tenant_id').where('id', '=', q.appId).executeTakeFirst();
    if (app) tenantId = Number(app.tenant_id);
  }
  let query = ctx.db.kysely.selectFrom('request_log').selectAll();
  if (tenantId !== undefined) query = query.where('tenant_id', '=', tenantId);
  if (q.from !== undefined) query = query.where('at', '>=', q.from);
  if (q.to !== undefined) query = query.where('at', '<', q.to);
  if (q.appId !== undefined) query = query.where('app_id', '=', q.appId);
  if (q.service !== undefined) query = query.where('service', '=', q.service);
  if (q.status !== undefined) query = query.where('status', '=', q.status);
  if (q.statusClass !== undefined) query = query.where('status', '>=', q.statusClass * 100).where('status', '<', q.statusClass * 100 + 100);
  if (q.errorsOnly) query = query.where((eb) => eb.or([eb('status', '>=', 400), eb('error_code', 'is not', null)]));
  if (q.errorCode !== undefined) query = query.where('error_code', '=', q.errorCode);
  if (q.route !== undefined) query = query.where('route', '=', q.route);
  if (q.method !== undefined) query = query.where('method', '=', q.method);
  if (q.cursor !== undefined) {
    const c = parseCursor(q.cursor);
    query = query.where((eb) => eb.or([eb('at', '<', c.at), eb.and([eb('at', '=', c.at), eb('id', '<', c.id)])]));
  }
  const rows = await query.orderBy('at', 'desc').orderBy('id', 'desc').limit(q.limit + 1).execute();
  const more = rows.length > q.limit;
  const items = rows.slice(0, q.limit).map((r) => ({
    id: Number(r.id),
    at: Number(r.at),
    tenant_id: r.tenant_id === null ? null : Number(r.tenant_id),
    app_id: r.app_id === null ? null : Number(r.app_id),
    service: r.service,
    method: r.method,
    route: r.route,
    status: Number(r.status),
    duration_ms: Math.round(Number(r.duration_us) / 10) / 100,
    ip_prefix: r.ip_prefix,
    error_code: r.error_code,
  }));
  const last = items[items.length - 1];
  return { items, next_cursor: more && last ? `${last.at}.${last.id}` : null };
}

/** Distinct values seen in the log of a scope (for filter pickers): services, routes, error codes. */
export async function logFacets(ctx: Ctx, scope: Scope, since: number): Promise<{ services: string[]; routes: string[]; error_codes: string[] }> {
  await flushRequests(ctx);
  const db = ctx.db.kysely;
  const distinct = async (col: 'service' | 'route' | 'error_code') => {
    let q = db.selectFrom('request_log').select(col).distinct().where('at', '>=', since).where(col, 'is not', null);
    if (scope.tenantId !== undefined) q = q.where('tenant_id', '=', scope.tenantId);
    return (await q.orderBy(col).limit(500).execute()).map((r) => String((r as Record<string, unknown>)[col]));
  };
  return { services: await distinct('service'), routes: await distinct('route'), error_codes: await distinct('error_code') };
}
