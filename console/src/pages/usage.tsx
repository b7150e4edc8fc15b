/**
 * Usage (requests, errors, mean duration per service and per app, as stacked SVG charts) and the
 * request log (filters, cursor paging, auto-refresh), over GET /usage, /requests, /requests/facets.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { get } from '../api';
import { currentLang, fmtNumber, fmtTime, t, tr } from '../i18n';
import { useSession } from '../session';
import { Card, Err, Field, Loading, Table, Tabs, useLoad } from '../ui';
import { TenantPicker } from './common';

const L = {
  usageTitle: ['用量', 'Usage'],
  logTitle: ['请求日志', 'Request log'],
  perService: ['按服务', 'Per service'],
  perApp: ['按应用', 'Per app'],
  requests: ['请求数', 'Requests'],
  errors: ['错误', 'Errors'],
  errorRate: ['错误率', 'Error rate'],
  avgMs: ['平均耗时（毫秒）', 'Mean time (ms)'],
  r24h: ['24 小时', '24 hours'],
  r7d: ['7 天', '7 days'],
  r30d: ['30 天', '30 days'],
  r90d: ['90 天', '90 days'],
  custom: ['自定义', 'Custom'],
  from: ['开始', 'From'],
  to: ['结束', 'To'],
  byHour: ['按小时', 'Hourly'],
  byDay: ['按天', 'Daily'],
  bucket: ['粒度', 'Buckets'],
  noApp: ['（无应用：控制台会话、未认证）', '(no app: console sessions, unauthenticated)'],
  others: ['其他', 'others'],
  time: ['时间', 'Time'],
  app: ['应用', 'App'],
  method: ['方法', 'Method'],
  route: ['路由', 'Route'],
  duration: ['耗时', 'Duration'],
  client: ['客户端', 'Client'],
  errorCode: ['错误码', 'Error code'],
  statusClass: ['状态类别', 'Status class'],
  exactStatus: ['状态码', 'Status'],
  errorsOnly: ['只看失败', 'Failures only'],
  autoRefresh: ['自动刷新', 'Auto-refresh'],
  newest: ['最新', 'Newest'],
  apply: ['筛选', 'Filter'],
  reset: ['清除', 'Clear'],
  utc: ['时间桶按 UTC 划分', 'Buckets are UTC hours/days'],
} as const;

export const SERVICES = ['native', 'mininglamp', 'fangtang', 'cli', 'ulord', 'bqp'];
const COLORS = ['#c8102e', '#2563eb', '#15803d', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563', '#65a30d'];

interface Point {
  t: number;
  requests: number;
  errors: number;
  avg_ms: number;
}
interface Series {
  key: string;
  app_id: number | null;
  app_name: string | null;
  service: string | null;
  requests: number;
  errors: number;
  avg_ms: number;
  points: Point[];
}
interface Usage {
  from: number;
  to: number;
  bucket: 'hour' | 'day';
  buckets: number[];
  requests: number;
  errors: number;
  avg_ms: number;
  series: Series[];
}
interface LogEntry {
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
interface AppRow {
  id: number;
  name: string;
  tenant_id: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
type Preset = '24h' | '7d' | '30d' | '90d' | 'custom';
const PRESETS: Record<Exclude<Preset, 'custom'>, { ms: number; bucket: 'hour' | 'day' }> = {
  '24h': { ms: DAY, bucket: 'hour' },
  '7d': { ms: 7 * DAY, bucket: 'hour' },
  '30d': { ms: 30 * DAY, bucket: 'day' },
  '90d': { ms: 90 * DAY, bucket: 'day' },
};

/** `yyyy-mm-ddThh:mm` in local time, for datetime-local inputs. */
const localInput = (ms: number): string => {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
};
const fromInput = (s: string): number | undefined => (s ? new Date(s).getTime() : undefined);

function bucketLabel(ms: number, bucket: string): string {
  const d = new Date(ms);
  const lang = currentLang() === 'zh' ? 'zh-CN' : 'en-GB';
  return bucket === 'hour' ? d.toLocaleString(lang, { month: '2-digit', day: '2-digit', hour: '2-digit', hour12: false }) : d.toLocaleDateString(lang, { month: '2-digit', day: '2-digit' });
}

/** At most `n` series; the rest summed into one "others" series. */
function topSeries(list: Series[], n: number): Series[] {
  if (list.length <= n) return list;
  const head = list.slice(0, n - 1);
  const tail = list.slice(n - 1);
  const points = tail[0].points.map((p, i) => ({ t: p.t, requests: tail.reduce((a, s) => a + s.points[i].requests, 0), errors: tail.reduce((a, s) => a + s.points[i].errors, 0), avg_ms: 0 }));
  const sum = (f: (s: Series) => number) => tail.reduce((a, s) => a + f(s), 0);
  return [...head, { key: '__others', app_id: null, app_name: tr(L.others), service: tr(L.others), requests: sum((s) => s.requests), errors: sum((s) => s.errors), avg_ms: 0, points }];
}

/** Stacked bars in plain SVG: one column a bucket, one colour a series; a tooltip per segment. */
export function StackedChart({ buckets, bucket, series, names, testid, height = 160 }: { buckets: number[]; bucket: string; series: Series[]; names: (s: Series) => string; testid?: string; height?: number }) {
  const w = 640;
  const left = 40;
  const totals = buckets.map((_, i) => series.reduce((a, s) => a + s.points[i].requests, 0));
  const max = Math.max(1, ...totals);
  const plotW = w - left;
  const bw = buckets.length ? plotW / buckets.length : plotW;
  const ticks = new Set([0, Math.floor((buckets.length - 1) / 2), buckets.length - 1]);
  return (
    <svg class="chart stacked" viewBox={`0 0 ${w} ${height + 18}`} preserveAspectRatio="none" role="img" data-testid={testid} aria-label={series.map((s) => `${names(s)}: ${s.requests}`).join(', ')}>
      <text x={left - 4} y={10} text-anchor="end" class="axis">
        {fmtNumber(max)}
      </text>
      <text x={left - 4} y={height} text-anchor="end" class="axis">
        0
      </text>
      {buckets.map((b, i) => {
        let y = height;
        return (
          <g key={b}>
            {series.map((s, k) => {
              const v = s.points[i].requests;
              if (!v) return null;
              const h = (v / max) * (height - 6);
              y -= h;
              return (
                <rect x={left + i * bw + 0.5} y={y} width={Math.max(1, bw - 1)} height={h} fill={COLORS[k % COLORS.length]} data-series={s.key} data-value={v}>
                  <title>{`${bucketLabel(b, bucket)} · ${names(s)}: ${fmtNumber(v)}${s.points[i].errors ? ` (${tr(L.errors)} ${fmtNumber(s.points[i].errors)})` : ''}`}</title>
                </rect>
              );
            })}
            {ticks.has(i) && (
              <text
                x={i === 0 ? left + i * bw : i === buckets.length - 1 ? left + (i + 1) * bw : left + i * bw + bw / 2}
                y={height + 14}
                text-anchor={i === 0 ? 'start' : i === buckets.length - 1 ? 'end' : 'middle'}
                class="axis"
              >
                {bucketLabel(b, bucket)}
              </text>
            )}
          </g>
        );
      })}
      <line x1={left} x2={w} y1={height} y2={height} class="base" />
    </svg>
  );
}

function SeriesTable({ series, names, testid }: { series: Series[]; names: (s: Series) => string; testid: string }) {
  return (
    <Table<Series>
      testid={testid}
      rowKey={(s) => s.key}
      rows={series}
      cols={[
        {
          label: '',
          render: (s) => (
            <span class="legend">
              <i style={{ background: COLORS[series.indexOf(s) % COLORS.length] }} />
              {names(s)}
            </span>
          ),
        },
        { label: tr(L.requests), render: (s) => <span data-testid={`requests-${s.key}`}>{fmtNumber(s.requests)}</span>, class: 'num' },
        { label: tr(L.errors), render: (s) => fmtNumber(s.errors), class: 'num' },
        { label: tr(L.errorRate), render: (s) => (s.requests ? `${((s.errors / s.requests) * 100).toFixed(1)}%` : '—'), class: 'num' },
        { label: tr(L.avgMs), render: (s) => (s.key === '__others' ? '—' : s.avg_ms.toFixed(2)), class: 'num' },
      ]}
    />
  );
}

/** Range presets plus a custom from/to; answers the query range and bucket. */
function useRange() {
  const [preset, setPreset] = useState<Preset>('24h');
  const [custom, setCustom] = useState({ from: localInput(Date.now() - 7 * DAY), to: localInput(Date.now()), bucket: 'day' as 'hour' | 'day' });
  const [now, setNow] = useState(Date.now());
  const range = useMemo(() => {
    if (preset === 'custom') {
      const from = fromInput(custom.from);
      const to = fromInput(custom.to);
      return { from, to, bucket: custom.bucket };
    }
    const p = PRESETS[preset];
    return { from: now - p.ms, to: now, bucket: p.bucket };
  }, [preset, custom, now]);
  const picker = (
    <div class="filters" data-testid="range">
      <Tabs<Preset>
        tabs={[
          ['24h', tr(L.r24h)],
          ['7d', tr(L.r7d)],
          ['30d', tr(L.r30d)],
          ['90d', tr(L.r90d)],
          ['custom', tr(L.custom)],
        ]}
        value={preset}
        onChange={(p) => {
          setNow(Date.now());
          setPreset(p);
        }}
      />
      {preset === 'custom' && (
        <>
          <Field label={tr(L.from)}>
            <input type="datetime-local" name="from" value={custom.from} onChange={(e) => setCustom({ ...custom, from: e.currentTarget.value })} />
          </Field>
          <Field label={tr(L.to)}>
            <input type="datetime-local" name="to" value={custom.to} onChange={(e) => setCustom({ ...custom, to: e.currentTarget.value })} />
          </Field>
          <Field label={tr(L.bucket)}>
            <select name="bucket" value={custom.bucket} onChange={(e) => setCustom({ ...custom, bucket: e.currentTarget.value as 'hour' | 'day' })}>
              <option value="hour">{tr(L.byHour)}</option>
              <option value="day">{tr(L.byDay)}</option>
            </select>
          </Field>
        </>
      )}
    </div>
  );
  return { range, picker, refresh: () => setNow(Date.now()) };
}

export function UsagePage() {
  const { me, tenants } = useSession();
  const [tenant, setTenant] = useState<number | undefined>(me.operator ? undefined : me.tenant_id);
  const { range, picker, refresh } = useRange();
  const q = { tenant_id: tenant, from: range.from, to: range.to, bucket: range.bucket };
  const bySvc = useLoad(() => get<Usage>('/usage', { ...q, group: 'service' }), [JSON.stringify(q)]);
  const byApp = useLoad(() => get<Usage>('/usage', { ...q, group: 'app' }), [JSON.stringify(q)]);
  const svcName = (s: Series) => s.service ?? s.key;
  const appName = (s: Series) => (s.key === '__others' ? tr(L.others) : s.app_id === null ? tr(L.noApp) : `${s.app_name ?? '#' + s.app_id} (#${s.app_id})`);
  const u = bySvc.data;
  return (
    <>
      <h1>{tr(L.usageTitle)}</h1>
      <Card
        actions={
          <>
            <TenantPicker value={tenant} onChange={setTenant} />
            <button type="button" onClick={refresh}>
              {t('refresh')}
            </button>
          </>
        }
      >
        {picker}
        <Err error={bySvc.error ?? byApp.error} />
        {u && (
          <div class="figures" data-testid="usage-totals">
            <div>
              <b data-testid="usage-requests">{fmtNumber(u.requests)}</b>
              <span>{tr(L.requests)}</span>
            </div>
            <div>
              <b data-testid="usage-errors">{fmtNumber(u.errors)}</b>
              <span>{tr(L.errors)}</span>
            </div>
            <div>
              <b>{u.avg_ms.toFixed(2)}</b>
              <span>{tr(L.avgMs)}</span>
            </div>
          </div>
        )}
        <p class="muted">
          {tr(L.utc)}
          {tenant !== undefined && me.operator ? ` · ${tenants.find((x) => x.id === tenant)?.name ?? ''}` : ''}
        </p>
      </Card>
      <Card title={tr(L.perService)} testid="usage-services">
        {!bySvc.data ? (
          <Loading />
        ) : (
          <>
            <StackedChart testid="usage-service-chart" buckets={bySvc.data.buckets} bucket={bySvc.data.bucket} series={topSeries(bySvc.data.series, 9)} names={svcName} />
            <SeriesTable testid="usage-service-table" series={topSeries(bySvc.data.series, 9)} names={svcName} />
          </>
        )}
      </Card>
      <Card title={tr(L.perApp)} testid="usage-apps">
        {!byApp.data ? (
          <Loading />
        ) : (
          <>
            <StackedChart testid="usage-app-chart" buckets={byApp.data.buckets} bucket={byApp.data.bucket} series={topSeries(byApp.data.series, 8)} names={appName} />
            <SeriesTable testid="usage-app-table" series={topSeries(byApp.data.series, 8)} names={appName} />
          </>
        )}
      </Card>
    </>
  );
}

interface LogFilters {
  from: string;
  to: string;
  app_id: string;
  service: string;
  status_class: string;
  status: string;
  error_code: string;
  route: string;
  errors: boolean;
}
const NO_FILTERS: LogFilters = { from: '', to: '', app_id: '', service: '', status_class: '', status: '', error_code: '', route: '', errors: false };
const PAGE = 50;

export function RequestLogPage() {
  const { me } = useSession();
  const [tenant, setTenant] = useState<number | undefined>(me.operator ? undefined : me.tenant_id);
  const [form, setForm] = useState<LogFilters>(NO_FILTERS);
  const [applied, setApplied] = useState<LogFilters>(NO_FILTERS);
  // cursors of the pages visited: [undefined (newest), c1, c2, …]
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [auto, setAuto] = useState(false);
  const page = cursors.length;
  const query = {
    tenant_id: tenant,
    from: fromInput(applied.from),
    to: fromInput(applied.to),
    app_id: applied.app_id || undefined,
    service: applied.service || undefined,
    status_class: applied.status ? undefined : applied.status_class || undefined,
    status: applied.status || undefined,
    error_code: applied.error_code.trim() || undefined,
    route: applied.route.trim() || undefined,
    errors: applied.errors || undefined,
    cursor: cursors[cursors.length - 1],
    limit: PAGE,
  };
  const log = useLoad(() => get<{ items: LogEntry[]; next_cursor: string | null }>('/requests', query), [JSON.stringify(query)]);
  const facets = useLoad(() => get<{ services: string[]; routes: string[]; error_codes: string[] }>('/requests/facets', { tenant_id: tenant }), [tenant]);
  const apps = useLoad(() => get<AppRow[]>('/apps', { tenant_id: tenant }), [tenant]);
  const appNames = useMemo(() => new Map((apps.data ?? []).map((a) => [a.id, a.name])), [apps.data]);

  // auto-refresh: the newest page, every 5 s, while the toggle is on
  useEffect(() => {
    if (!auto) return;
    const h = setInterval(() => {
      if (cursors.length === 1) log.reload();
    }, 5000);
    return () => clearInterval(h);
  }, [auto, cursors.length]);

  const apply = (f: LogFilters) => {
    setApplied(f);
    setCursors([undefined]);
  };
  const set = (k: keyof LogFilters, v: string | boolean) => setForm({ ...form, [k]: v });
  const statusBadge = (s: number, code: string | null) => <span class={s >= 400 || code ? 'badge bad' : 'badge ok'}>{s}</span>;

  return (
    <>
      <h1>{tr(L.logTitle)}</h1>
      <Card
        actions={
          <>
            <TenantPicker
              value={tenant}
              onChange={(v) => {
                setTenant(v);
                setCursors([undefined]);
              }}
            />
            <label class="check">
              <input type="checkbox" data-testid="auto-refresh" checked={auto} onChange={(e) => setAuto(e.currentTarget.checked)} />
              {tr(L.autoRefresh)}
            </label>
            <button type="button" data-testid="log-refresh" onClick={() => (cursors.length === 1 ? log.reload() : setCursors([undefined]))}>
              {t('refresh')}
            </button>
          </>
        }
      >
        <form
          class="form-grid"
          data-testid="log-filters"
          onSubmit={(e) => {
            e.preventDefault();
            apply(form);
          }}
        >
          <Field label={tr(L.from)}>
            <input type="datetime-local" name="from" value={form.from} onChange={(e) => set('from', e.currentTarget.value)} />
          </Field>
          <Field label={tr(L.to)}>
            <input type="datetime-local" name="to" value={form.to} onChange={(e) => set('to', e.currentTarget.value)} />
          </Field>
          <Field label={tr(L.app)}>
            <select name="app_id" value={form.app_id} onChange={(e) => set('app_id', e.currentTarget.value)}>
              <option value="">{t('all')}</option>
              {(apps.data ?? []).map((a) => (
                <option value={a.id}>
                  #{a.id} · {a.name}
                </option>
              ))}
            </select>
          </Field>
          <Field label={t('service')}>
            <select name="service" value={form.service} onChange={(e) => set('service', e.currentTarget.value)}>
              <option value="">{t('all')}</option>
              {SERVICES.map((s) => (
                <option value={s}>{s}</option>
              ))}
            </select>
          </Field>
          <Field label={tr(L.statusClass)}>
            <select name="status_class" value={form.status_class} onChange={(e) => set('status_class', e.currentTarget.value)}>
              <option value="">{t('all')}</option>
              {['2xx', '3xx', '4xx', '5xx'].map((c) => (
                <option value={c}>{c}</option>
              ))}
            </select>
          </Field>
          <Field label={tr(L.exactStatus)}>
            <input name="status" type="number" min={100} max={599} value={form.status} onInput={(e) => set('status', e.currentTarget.value)} />
          </Field>
          <Field label={tr(L.errorCode)}>
            <input name="error_code" list="log-error-codes" maxLength={60} value={form.error_code} onInput={(e) => set('error_code', e.currentTarget.value.toUpperCase())} />
            <datalist id="log-error-codes">
              {(facets.data?.error_codes ?? []).map((c) => (
                <option value={c} />
              ))}
            </datalist>
          </Field>
          <Field label={tr(L.route)}>
            <input name="route" list="log-routes" maxLength={500} value={form.route} onInput={(e) => set('route', e.currentTarget.value)} />
            <datalist id="log-routes">
              {(facets.data?.routes ?? []).map((r) => (
                <option value={r} />
              ))}
            </datalist>
          </Field>
          <label class="check">
            <input type="checkbox" name="errors" checked={form.errors} onChange={(e) => set('errors', e.currentTarget.checked)} />
            {tr(L.errorsOnly)}
          </label>
          <div class="form-actions">
            <button type="submit" class="primary">
              {tr(L.apply)}
            </button>
            <button
              type="button"
              onClick={() => {
                setForm(NO_FILTERS);
                apply(NO_FILTERS);
              }}
            >
              {tr(L.reset)}
            </button>
          </div>
        </form>
      </Card>
      <Card>
        <Err error={log.error} />
        {!log.data ? (
          <Loading />
        ) : (
          <Table<LogEntry>
            testid="request-log"
            rowKey={(r) => r.id}
            rows={log.data.items}
            cols={[
              { label: tr(L.time), render: (r) => fmtTime(r.at) },
              ...(me.operator ? [{ label: t('tenant'), render: (r: LogEntry) => r.tenant_id ?? '—' }] : []),
              { label: tr(L.app), render: (r) => (r.app_id === null ? '—' : `${appNames.get(r.app_id) ?? ''} #${r.app_id}`) },
              { label: t('service'), render: (r) => <span data-col="service">{r.service}</span> },
              { label: tr(L.method), render: (r) => r.method },
              { label: tr(L.route), render: (r) => <code class="clip" data-col="route">{r.route}</code> },
              { label: t('status'), render: (r) => statusBadge(r.status, r.error_code) },
              { label: tr(L.errorCode), render: (r) => <span data-col="error">{r.error_code ?? ''}</span> },
              { label: tr(L.duration), render: (r) => `${r.duration_ms.toFixed(2)} ms`, class: 'num' },
              { label: tr(L.client), render: (r) => r.ip_prefix },
            ]}
          />
        )}
        <div class="pager">
          <button type="button" disabled={page <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>
            {t('prev')}
          </button>
          <span>{t('page', { n: page })}</span>
          <button type="button" data-testid="log-next" disabled={!log.data?.next_cursor} onClick={() => log.data?.next_cursor && setCursors([...cursors, log.data.next_cursor])}>
            {t('next')}
          </button>
          {page > 1 && (
            <button type="button" onClick={() => setCursors([undefined])}>
              {tr(L.newest)}
            </button>
          )}
        </div>
      </Card>
    </>
  );
}
