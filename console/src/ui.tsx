/** Small shared pieces: loading hooks, tables, forms, dialogs, inline SVG charts. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { errorText, fmtNumber, t } from './i18n';

export function useLoad<T>(fn: () => Promise<T>, deps: unknown[]): { data: T | undefined; error: unknown; loading: boolean; reload: () => void } {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const [tick, setTick] = useState(0);
  const seq = useRef(0);
  useEffect(() => {
    const n = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => n === seq.current && setState({ data, error: undefined, loading: false }),
      (error) => n === seq.current && setState({ data: undefined, error, loading: false }),
    );
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((x) => x + 1), []);
  return { ...state, reload };
}

/** Runs an action, keeping its error and busy state for the form that started it. */
export function useAction(): { busy: boolean; error: unknown; run: <T>(f: () => Promise<T>) => Promise<T | undefined>; clear: () => void } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const run = async <T,>(f: () => Promise<T>) => {
    setBusy(true);
    setError(undefined);
    try {
      return await f();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, clear: () => setError(undefined) };
}

export function Err({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      {errorText(error)}
    </div>
  );
}

export function Loading() {
  return <div class="muted">{t('loading')}</div>;
}

export interface Col<R> {
  label: string;
  render: (r: R) => ComponentChildren;
  class?: string;
}

export function Table<R>({ cols, rows, rowKey, testid, onRow }: { cols: Col<R>[]; rows: R[]; rowKey: (r: R) => string | number; testid?: string; onRow?: (r: R) => void }) {
  if (!rows.length) return <div class="empty">{t('empty')}</div>;
  return (
    <div class="table-wrap">
      <table data-testid={testid}>
        <thead>
          <tr>
            {cols.map((c) => (
              <th class={c.class}>{c.label}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={rowKey(r)} data-key={rowKey(r)} class={onRow ? 'clickable' : undefined} onClick={onRow ? () => onRow(r) : undefined}>
              {cols.map((c) => (
                <td class={c.class} data-label={c.label}>
                  {c.render(r)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function Field({ label, children, wide }: { label: string; children: ComponentChildren; wide?: boolean }) {
  return (
    <label class={wide ? 'field wide' : 'field'}>
      <span>{label}</span>
      {children}
    </label>
  );
}

export function Card({ title, children, actions, testid }: { title?: ComponentChildren; children: ComponentChildren; actions?: ComponentChildren; testid?: string }) {
  return (
    <section class="card" data-testid={testid}>
      {(title || actions) && (
        <header>
          {title && <h2>{title}</h2>}
          {actions && <div class="actions">{actions}</div>}
        </header>
      )}
      {children}
    </section>
  );
}

export function Modal({ title, onClose, children, testid }: { title: string; onClose: () => void; children: ComponentChildren; testid?: string }) {
  useEffect(() => {
    const f = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    addEventListener('keydown', f);
    return () => removeEventListener('keydown', f);
  }, [onClose]);
  return (
    <div class="modal-back" onClick={(e) => e.target === e.currentTarget && onClose()}>
      <div class="modal" role="dialog" aria-modal="true" aria-label={title} data-testid={testid}>
        <header>
          <h2>{title}</h2>
          <button type="button" class="icon" aria-label={t('close')} onClick={onClose}>
            ×
          </button>
        </header>
        {children}
      </div>
    </div>
  );
}

export function Copy({ text, testid }: { text: string; testid?: string }) {
  const [done, setDone] = useState(false);
  return (
    <span class="copy">
      <code data-testid={testid}>{text}</code>
      <button
        type="button"
        class="small"
        onClick={async () => {
          try {
            await navigator.clipboard.writeText(text);
            setDone(true);
          } catch {
            /* no clipboard: the text stays selectable */
          }
        }}
      >
        {done ? t('copied') : t('copy')}
      </button>
    </span>
  );
}

/** Paging buttons; without a total, `more` says whether a next page may exist (a full page came back). */
export function Pager({ page, size, total, more, onPage }: { page: number; size: number; total?: number; more?: boolean; onPage: (p: number) => void }) {
  const last = total === undefined ? (more === false ? page : undefined) : Math.max(1, Math.ceil(total / size));
  return (
    <div class="pager">
      <button type="button" disabled={page <= 1} onClick={() => onPage(page - 1)}>
        {t('prev')}
      </button>
      <span>{t('page', { n: page })}</span>
      {total !== undefined && <span class="muted">{t('total', { n: fmtNumber(total) })}</span>}
      <button type="button" disabled={last !== undefined && page >= last} onClick={() => onPage(page + 1)}>
        {t('next')}
      </button>
    </div>
  );
}

export function Meter({ value, max, label }: { value: number; max: number; label?: string }) {
  const pct = max > 0 ? Math.max(0, Math.min(100, (value / max) * 100)) : 0;
  return (
    <div class="meter" role="meter" aria-valuenow={value} aria-valuemin={0} aria-valuemax={max} aria-label={label}>
      <div style={{ width: `${pct}%` }} />
    </div>
  );
}

/** A bar chart in plain SVG: one bar a point, labels under the first, middle and last. */
export function BarChart({ points, height = 120, testid }: { points: { label: string; value: number }[]; height?: number; testid?: string }) {
  const w = 600;
  const max = Math.max(1, ...points.map((p) => p.value));
  const bw = points.length ? w / points.length : w;
  const show = new Set([0, Math.floor((points.length - 1) / 2), points.length - 1]);
  return (
    <svg class="chart" viewBox={`0 0 ${w} ${height + 18}`} preserveAspectRatio="none" role="img" data-testid={testid}>
      {points.map((p, i) => {
        const h = (p.value / max) * (height - 4);
        return (
          <g key={i}>
            <rect x={i * bw + 1} y={height - h} width={Math.max(1, bw - 2)} height={h} class="bar">
              <title>{`${p.label}: ${fmtNumber(p.value)}`}</title>
            </rect>
            {show.has(i) && (
              <text x={i * bw + bw / 2} y={height + 14} text-anchor="middle" class="axis">
                {p.label}
              </text>
            )}
          </g>
        );
      })}
      <line x1="0" x2={w} y1={height} y2={height} class="base" />
    </svg>
  );
}

export function Tabs<K extends string>({ tabs, value, onChange }: { tabs: [K, string][]; value: K; onChange: (k: K) => void }) {
  return (
    <div class="tabs" role="tablist">
      {tabs.map(([k, label]) => (
        <button type="button" role="tab" aria-selected={k === value} class={k === value ? 'on' : ''} onClick={() => onChange(k)}>
          {label}
        </button>
      ))}
    </div>
  );
}

/** Form submit handler that stops the page from reloading. */
export const onSubmit = (f: () => void) => (e: Event) => {
  e.preventDefault();
  f();
};
