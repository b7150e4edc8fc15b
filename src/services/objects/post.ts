/**
 * Query post-processing that works on the rows a query returned (bqp.md §1.5, §1.9): `pivot`,
 * `hiddenFields` / `gresHidden`, `sumFields` and `fmt=tree`. Everything here sees only what the
 * caller's query already returned, so role filters and hidden fields apply before it runs.
 */
import { DomainError } from '../../core/errors.js';
import type { QueryResult } from './query.js';
import { FLAG_RE, PROP_RE } from './schema.js';

const bad = (msg: string, userMessage?: string): never => {
  throw new DomainError('VALIDATION', msg, userMessage ? { details: { userMessage } } : undefined);
};

export function rowsToObjects(r: QueryResult): Record<string, unknown>[] {
  const bits = r.cols.includes('flags') || r.cols.includes('props');
  return r.rows.map((row) => {
    const o = Object.fromEntries(r.cols.map((c, i) => [c, row[i]]));
    return bits ? withBits(o) : o;
  });
}

/**
 * A table (h/d, and the file exports) shows the `flag_x` / `prop_x` of its rows as extra columns
 * after the selected ones, in the order they first occur, 1 or null — as the reference's
 * objarr2table($rows, $fixedColCnt) does.
 */
export function withBitColumns(r: QueryResult): QueryResult {
  if (!r.cols.includes('flags') && !r.cols.includes('props')) return r;
  const objs = rowsToObjects(r);
  const extra: string[] = [];
  const seen = new Set(r.cols);
  for (const o of objs) for (const k of Object.keys(o)) if (!seen.has(k)) (seen.add(k), extra.push(k));
  if (!extra.length) return r;
  return { ...r, cols: [...r.cols, ...extra], rows: r.rows.map((row, i) => [...row, ...extra.map((k) => objs[i][k] ?? null)]) };
}

/**
 * A row as an object shows its `flags` letters as `flag_x: 1` and its `props` words as `prop_x: 1`
 * (bqp.md §1.5), beside the fields themselves (tables get them as columns: withBitColumns).
 */
export function withBits(o: Record<string, unknown>): Record<string, unknown> {
  const set = (k: string, re: RegExp) => {
    if (re.test(k)) o[k] ??= 1;
  };
  if (typeof o.flags === 'string') for (const c of o.flags) set(`flag_${c}`, FLAG_RE);
  if (typeof o.props === 'string') for (const w of o.props.split(/\s+/)) set(`prop_${w}`, PROP_RE);
  return o;
}

/** Drops the named result columns (hiddenFields=a,b). */
export function dropColumns(r: QueryResult, names: string[]): QueryResult {
  const drop = new Set(names);
  const keep = r.cols.map((c, i) => (drop.has(c) ? -1 : i)).filter((i) => i >= 0);
  if (keep.length === r.cols.length) return r;
  return { ...r, cols: keep.map((i) => r.cols[i]), rows: r.rows.map((row) => keep.map((i) => row[i])) };
}

const DEC = /^-?\d+\.\d+$/;

/** a + b for result cells: numbers add, fixed-point decimal strings add exactly and keep their scale. */
export function addCells(a: unknown, b: unknown): unknown {
  if (a === null || a === undefined) return b;
  if (b === null || b === undefined) return a;
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  const sa = String(a);
  const sb = String(b);
  if ((DEC.test(sa) || /^-?\d+$/.test(sa)) && (DEC.test(sb) || /^-?\d+$/.test(sb))) {
    const scale = Math.max(sa.split('.')[1]?.length ?? 0, sb.split('.')[1]?.length ?? 0);
    const toInt = (s: string) => {
      const [i, f = ''] = s.replace('-', '').split('.');
      const v = BigInt(i + f.padEnd(scale, '0'));
      return s.startsWith('-') ? -v : v;
    };
    const sum = toInt(sa) + toInt(sb);
    if (scale === 0) return typeof a === 'number' || typeof b === 'number' ? Number(sum) : String(sum);
    const neg = sum < 0n;
    const digits = (neg ? -sum : sum).toString().padStart(scale + 1, '0');
    return `${neg ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  }
  const na = Number(a);
  const nb = Number(b);
  return Number.isFinite(na) && Number.isFinite(nb) ? na + nb : a;
}

/**
 * pivot (JDCloud `pivot()`): the last `cnt` columns are the values; the `gcols` columns turn into
 * column names (values joined with "-", "(null)" when empty); the remaining columns identify a row.
 * Equal (row, column) pairs add up. The first row carries every generated column (null where
 * empty), so the header is complete. `sumField` appends a column with the row's total.
 */
export function pivot(r: QueryResult, gcolsText: string, cnt = 1, sumField?: string): QueryResult {
  if (!r.rows.length) return r;
  const gcols = gcolsText.split(',').map((s) => s.trim()).filter(Boolean);
  if (!gcols.length) bad('pivot needs a column', '未指定分组列');
  if (!Number.isInteger(cnt) || cnt < 1 || cnt >= r.cols.length) bad('pivotCnt must be at least 1 and leave other columns', '参数不正确');
  const ycolAt = r.cols.length - cnt;
  const gIdx = gcols.map((g) => {
    const i = r.cols.indexOf(g);
    if (i < 0 || i >= ycolAt) bad(`bad pivot column ${g}: not a column of the result`, `分组列不正确: ${g}`);
    return i;
  });
  const xIdx = r.cols.slice(0, ycolAt).map((_c, i) => i).filter((i) => !gIdx.includes(i));
  const xNames = xIdx.map((i) => r.cols[i]);
  const rows = new Map<string, { x: unknown[]; cells: Map<string, unknown> }>();
  const heads: string[] = [];
  const seen = new Set<string>();
  for (const row of r.rows) {
    const xv = xIdx.map((i) => row[i]);
    const xk = JSON.stringify(xv);
    const g = gIdx.map((i) => (row[i] === null || row[i] === undefined ? '' : String(row[i]))).join('-') || '(null)';
    if (!seen.has(g)) {
      if (xNames.includes(g) || g === sumField) bad(`pivot column \`${g}\` clashes with a result column`, '参数不正确');
      seen.add(g);
      heads.push(g);
      if (heads.length > 1000) bad('pivot makes more than 1000 columns', '参数不正确');
    }
    const y = cnt === 1 ? row[ycolAt] : row.slice(ycolAt);
    let entry = rows.get(xk);
    if (!entry) rows.set(xk, (entry = { x: xv, cells: new Map() }));
    const old = entry.cells.get(g);
    if (old === undefined) entry.cells.set(g, y);
    else entry.cells.set(g, cnt === 1 ? addCells(old, y) : (old as unknown[]).map((v, i) => addCells(v, (y as unknown[])[i])));
  }
  const cols = [...xNames, ...heads, ...(sumField ? [sumField] : [])];
  const out = [...rows.values()].map(({ x, cells }) => {
    const vals = heads.map((h) => (cells.has(h) ? cells.get(h) : null));
    if (sumField) {
      const present = vals.filter((v) => v !== null);
      vals.push(cnt === 1 ? present.reduce((a: unknown, b) => addCells(a, b), null) : Array.from({ length: cnt }, (_v, i) => present.reduce((a: unknown, b) => addCells(a, (b as unknown[])[i]), null)));
    }
    return [...x, ...vals];
  });
  return { ...r, cols, rows: out };
}

/** sumFields=a,b: appends a row "合计" with the column sums (a `stat` value of the same name wins). */
export function sumRow(r: QueryResult, fieldsText: string): QueryResult {
  if (r.rows.length <= 1) return r;
  const fields = fieldsText.split(',').map((s) => s.trim()).filter(Boolean);
  const row: unknown[] = r.cols.map(() => null);
  for (const f of fields) {
    const i = r.cols.indexOf(f);
    if (i < 0) bad(`sumFields: \`${f}\` is not a column of the result`);
    row[i] = r.stat && f in r.stat ? r.stat[f] : r.rows.reduce((a: unknown, x) => addCells(a, typeof x[i] === 'number' || (typeof x[i] === 'string' && /^-?\d+(\.\d+)?$/.test(x[i] as string)) ? x[i] : 0), 0);
  }
  if (!fields.includes(r.cols[0])) row[0] = '合计';
  return { ...r, rows: [...r.rows, row] };
}

/**
 * fmt=tree: rows {id, fatherId} nested into `children` (treeFields=id,fatherId,children renames).
 * A row whose father is not in the result is a root; rows keep the query's order; a row in a cycle
 * becomes a root where the cycle is met, so no row is lost. `children` is present only when non-empty.
 */
export function makeTree(objs: Record<string, unknown>[], fields = 'id,fatherId,children'): Record<string, unknown>[] {
  const [idF = 'id', fatherF = 'fatherId', childF = 'children'] = fields.split(',').map((s) => s.trim() || undefined);
  const byId = new Map<string, Record<string, unknown>>();
  for (const o of objs) {
    if (!(idF in o)) bad(`fmt=tree needs the column \`${idF}\``);
    if (!(fatherF in o)) bad(`fmt=tree needs the column \`${fatherF}\``);
    const k = String(o[idF]);
    if (!byId.has(k)) byId.set(k, o);
  }
  const roots: Record<string, unknown>[] = [];
  const placed = new Set<Record<string, unknown>>();
  const broken = new Set<Record<string, unknown>>();
  for (const o of objs) {
    const f = o[fatherF];
    const father = f === null || f === undefined ? undefined : byId.get(String(f));
    // follow the father chain: a cycle back to o makes o a root
    let cyc = false;
    for (let p = father, n = 0; p && !broken.has(p) && n <= objs.length; n++) {
      if (p === o) {
        cyc = true;
        break;
      }
      const pf = p[fatherF];
      p = pf === null || pf === undefined ? undefined : byId.get(String(pf));
    }
    if (cyc) broken.add(o);
    if (!father || father === o || cyc || placed.has(o)) roots.push(o);
    else ((father[childF] ??= []) as unknown[]).push(o);
    placed.add(o);
  }
  return roots;
}
