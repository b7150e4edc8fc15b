/** Scan analytics as the links service reports them: totals, a time series, devices, systems, referrers. */
import { useState } from 'preact/hooks';
import { get } from '../api';
import { currentLang, fmtNumber, tr } from '../i18n';
import { BarChart, Card, Err, Loading, Tabs, useLoad } from '../ui';

export interface Stats {
  from: number;
  to: number;
  bucket: string;
  scans: number;
  unique_visitors: number;
  bots: number;
  series: { t: number; scans: number; unique_visitors: number; bots: number }[];
  devices: Record<string, number>;
  os: Record<string, number>;
  referrers: { host: string; scans: number }[];
}

const L = {
  scans: ['扫描次数', 'Scans'],
  visitors: ['独立访客', 'Unique visitors'],
  bots: ['机器人', 'Bots'],
  devices: ['设备', 'Devices'],
  os: ['系统', 'Systems'],
  referrers: ['来源', 'Referrers'],
  day: ['按天（30 天）', 'By day (30 days)'],
  hour: ['按小时（48 小时）', 'By hour (48 hours)'],
  title: ['扫描统计', 'Scan statistics'],
} as const;

function label(t: number, bucket: string): string {
  const d = new Date(t);
  const lang = currentLang() === 'zh' ? 'zh-CN' : 'en-GB';
  return bucket === 'hour' ? d.toLocaleString(lang, { hour: '2-digit', day: '2-digit', hour12: false }) : d.toLocaleDateString(lang, { month: '2-digit', day: '2-digit' });
}

function Breakdown({ title, counts }: { title: string; counts: [string, number][] }) {
  const max = Math.max(1, ...counts.map((c) => c[1]));
  return (
    <div class="breakdown">
      <h3>{title}</h3>
      {counts.length ? (
        counts.slice(0, 8).map(([k, v]) => (
          <div class="bd-row">
            <span class="bd-key">{k || '—'}</span>
            <span class="bd-bar">
              <span style={{ width: `${(v / max) * 100}%` }} />
            </span>
            <span class="num">{fmtNumber(v)}</span>
          </div>
        ))
      ) : (
        <div class="muted">—</div>
      )}
    </div>
  );
}

/** path: a stats endpoint answering Stats (e.g. /links/<code>/stats); query: extra parameters. */
export function StatsPanel({ path, query = {}, title }: { path: string; query?: Record<string, string | number | undefined>; title?: string }) {
  const [bucket, setBucket] = useState<'day' | 'hour'>('day');
  const stats = useLoad(() => get<Stats>(path, { ...query, bucket }), [path, bucket, JSON.stringify(query)]);
  const s = stats.data;
  return (
    <Card title={title ?? tr(L.title)} testid="stats">
      <Tabs
        tabs={[
          ['day', tr(L.day)],
          ['hour', tr(L.hour)],
        ]}
        value={bucket}
        onChange={setBucket}
      />
      <Err error={stats.error} />
      {!s ? (
        <Loading />
      ) : (
        <>
          <div class="figures">
            <div>
              <b data-testid="stat-scans">{fmtNumber(s.scans)}</b>
              <span>{tr(L.scans)}</span>
            </div>
            <div>
              <b>{fmtNumber(s.unique_visitors)}</b>
              <span>{tr(L.visitors)}</span>
            </div>
            <div>
              <b>{fmtNumber(s.bots)}</b>
              <span>{tr(L.bots)}</span>
            </div>
          </div>
          <BarChart testid="scan-chart" points={s.series.map((p) => ({ label: label(p.t, s.bucket), value: p.scans }))} />
          <div class="breakdowns">
            <Breakdown title={tr(L.devices)} counts={Object.entries(s.devices).sort((a, b) => b[1] - a[1])} />
            <Breakdown title={tr(L.os)} counts={Object.entries(s.os).sort((a, b) => b[1] - a[1])} />
            <Breakdown title={tr(L.referrers)} counts={s.referrers.map((r) => [r.host, r.scans] as [string, number])} />
          </div>
        </>
      )}
    </Card>
  );
}
