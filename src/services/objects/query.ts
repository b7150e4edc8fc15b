/**
 * Object queries: `res` / `gres` / `cond` / `gcond` / `orderby` / paging compiled into one
 * parameterised SELECT (plus a COUNT for `total` and one IN-query per sub-table).
 */
import { sql, type CompiledQuery, type Kysely, type RawBuilder } from 'kysely';
import { readRows } from '../../core/db/index.js';
import { DomainError } from '../../core/errors.js';
import { Compiler, decToInt, isBool, Parser, tokenize, type Compiled, type CompileScope, type Lit, type Node, type Resolved, type VType } from './expr.js';
import { FLAG_RE, PROP_RE, STD_OPS, type Acl, type FieldDef, type ObjectDef, type Role, type Schema, type SubobjDef } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

/** Who is calling, as far as objects care. */
export interface Caller {
  role: Role;
  loggedIn: boolean;
  vars: { uid?: number; empId?: number; adminId?: number };
}

export function fieldType(f: FieldDef): VType {
  switch (f.type) {
    case 'id':
    case 'int':
    case 'flag':
      return { k: 'num', scale: 0, real: false };
    case 'dec':
      return { k: 'num', scale: 2, real: false };
    case 'real':
      return { k: 'num', scale: 0, real: true };
    case 'datetime':
    case 'date':
      return { k: 'text', date: f.type };
    default:
      return { k: 'text', date: null };
  }
}

const bad = (msg: string): never => {
  throw new DomainError('VALIDATION', msg);
};

/** Converts a database value of type `t` to what the wire carries (decimals as fixed-point strings). */
export function outValue(v: unknown, t: VType): unknown {
  if (v === null || v === undefined) return null;
  if (t.k === 'num') {
    if (typeof v === 'bigint') v = Number(v);
    if (t.real) {
      const n = Number(v);
      return t.scale ? n / 10 ** t.scale : n;
    }
    if (t.scale > 0) return fmtScaled(v as number | string, t.scale);
    return Number(v);
  }
  if (t.k === 'bool') return Number(v) ? 1 : 0;
  return v;
}

function fmtScaled(v: number | string, scale: number): string {
  let s = String(v);
  if (!/^-?\d+$/.test(s)) s = String(Math.round(Number(v)));
  const neg = s.startsWith('-');
  if (neg) s = s.slice(1);
  s = s.padStart(scale + 1, '0');
  return `${neg ? '-' : ''}${s.slice(0, -scale)}.${s.slice(-scale)}`;
}

/** Splits a comma list, respecting (), {} and quotes. */
export function splitCols(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let q = '';
  let cur = '';
  for (const c of s) {
    if (q) {
      if (c === q) q = '';
    } else if (c === "'" || c === '"') q = c;
    else if (c === '(' || c === '{') depth++;
    else if (c === ')' || c === '}') depth--;
    else if (c === ',' && depth === 0) {
      out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== '');
}

export function aclFor(def: ObjectDef, c: Caller): Acl | null {
  if (c.role === 'admin') return def.acl.admin ?? { ops: new Set(STD_OPS), filter: [], readonly: new Set(), defaults: {} };
  return def.acl[c.role] ?? def.acl.guest ?? null;
}

/** The refusal when a call is not allowed: not logged in ⇒ NOT_LOGGED_IN, logged in ⇒ FORBIDDEN. */
export function deny(c: Caller, what: string): never {
  throw new DomainError(c.loggedIn ? 'FORBIDDEN' : 'NOT_LOGGED_IN', c.loggedIn ? `${what} is not allowed` : `${what} needs a login`);
}

export function requireOp(def: ObjectDef, c: Caller, op: string): Acl {
  const acl = aclFor(def, c);
  if (!acl || !acl.ops.has(op as never)) deny(c, `${def.name}.${op}`);
  return acl!;
}

/** Row filter of the caller's role (e.g. userId = the logged-in user), as SQL. */
export function filterSql(def: ObjectDef, acl: Acl, c: Caller, alias = 't0'): RawBuilder<unknown>[] {
  return acl.filter.map(([f, v]) => {
    const val = c.vars[v];
    if (val === undefined) deny(c, `${def.name}`);
    return sql`${sql.ref(alias ? `${alias}.${f}` : f)} = ${val}`;
  });
}

/** Runs a query: synchronously on the database's reader (SQLite, outside transactions), else through Kysely. */
export async function fetchRows(db: Kysely<any>, q: RawBuilder<unknown> | CompiledQuery): Promise<Record<string, unknown>[]> {
  return readRows(db, 'compile' in q ? q.compile(db) : q);
}

// ---------------------------------------------------------------------------------------------
// res / gres

export interface OutCol {
  name: string;
  sql: RawBuilder<unknown> | null; // null: placeholder column
  type: VType;
  agg: boolean;
  enumMap?: Map<string, string>;
  hidden?: boolean;
  /** the field a plain column shows */
  src?: string;
}

/** `param_<sub>` (bqp.md §1.5): what a call asks of one sub-table. */
export interface SubParams {
  res?: string;
  /** ANDed with the sub-table's link to its parent */
  cond?: Node | null;
  orderby?: string;
  wantOne?: boolean;
  /** rows per parent; only with disableSubobjOptimize */
  pagesz?: number;
}

export interface SubCol {
  name: string;
  sub: SubobjDef;
  res: string | null;
  one: boolean;
}

/** Time buckets (bqp.md §1.5): year, quarter, month, week, day of month, weekday (Mon=1), hour. */
export const TIME_BUCKETS = ['y', 'q', 'm', 'w', 'd', 'wd', 'h'] as const;

/**
 * The SQL of one time bucket over a date/datetime column stored as 'YYYY-MM-DD[ HH:MM:SS]' text.
 * PostgreSQL's constants are inlined numbers (sql.lit), never bound, so the same expression in SELECT
 * and GROUP BY is textually equal (PostgreSQL compares them so). `w` is MySQL week mode 5 / strftime %W: weeks start
 * on Monday, the days before the year's first Monday are week 0.
 */
function bucketSql(name: string, f: RawBuilder<unknown>, dialect: Dialect): RawBuilder<unknown> {
  const part = (from: number, len: number) => sql`cast(substr(${f}, ${sql.lit(from)}, ${sql.lit(len)}) as integer)`;
  const pg = dialect === 'postgres';
  const isodow = sql`cast(extract(isodow from cast(${f} as date)) as integer)`;
  switch (name) {
    case 'y':
      return part(1, 4);
    case 'q':
      return sql`((${part(6, 2)} + ${sql.lit(2)}) / ${sql.lit(3)})`;
    case 'm':
      return part(6, 2);
    case 'd':
      return part(9, 2);
    case 'h':
      return part(12, 2);
    case 'wd':
      // SQLite's format strings are bound (SQLite does not compare GROUP BY expressions textually)
      return pg ? isodow : sql`(((cast(strftime(${'%w'}, ${f}) as integer) + ${sql.lit(6)}) % ${sql.lit(7)}) + ${sql.lit(1)})`;
    default:
      return pg ? sql`((cast(extract(doy from cast(${f} as date)) as integer) + ${sql.lit(7)} - ${isodow}) / ${sql.lit(7)})` : sql`cast(strftime(${'%W'}, ${f}) as integer)`;
  }
}

export class ObjScope {
  joins = new Set<string>();
  /** the column time buckets are computed from (object's tmField or the request's) */
  private tm: { sql: RawBuilder<unknown>; date: 'date' | 'datetime' } | null = null;
  constructor(
    readonly schema: Schema,
    readonly def: ObjectDef,
    readonly dialect: Dialect,
    tmField: string | null = def.tmField,
  ) {
    if (tmField) {
      const r = this.column(tmField);
      if (!r || r.type.k !== 'text' || !r.type.date) bad(`tmField \`${tmField}\` must be a date or datetime field`);
      this.tm = { sql: r!.sql, date: (r!.type as { date: 'date' | 'datetime' }).date };
    }
  }

  private bucket(name: string): Resolved | null {
    if (!this.tm || !(TIME_BUCKETS as readonly string[]).includes(name)) return null;
    if (name === 'h' && this.tm.date === 'date') return null;
    return { sql: bucketSql(name, this.tm.sql, this.dialect), type: { k: 'num', scale: 0, real: false } };
  }

  /** A declared field or virtual field; hidden fields do not exist for clients. */
  column(name: string): Resolved | null {
    let n = name;
    if (!this.def.fields.has(n) && !this.def.vcols.has(n)) {
      const lower = n.toLowerCase();
      n = [...this.def.fields.keys(), ...this.def.vcols.keys()].find((k) => k.toLowerCase() === lower) ?? n;
    }
    const f = this.def.fields.get(n);
    if (f) {
      if (this.def.hidden.has(n)) return null;
      return { sql: sql.ref(`t0.${n}`), type: fieldType(f) };
    }
    const v = this.def.vcols.get(n);
    if (v) {
      this.joins.add(v.join);
      return { sql: sql.ref(`${v.join}.${v.field}`), type: fieldType(v.def) };
    }
    return this.bit(name) ?? this.bucket(name);
  }

  /**
   * `flag_x` / `prop_x`: 1 when the letter is in the `flags` field / the word in the space-separated
   * `props` field, else 0 (bqp.md §1.5). Case-sensitive (instr / strpos, not LIKE); values bound.
   */
  private bit(name: string): Resolved | null {
    const m = FLAG_RE.exec(name) ?? PROP_RE.exec(name);
    const field = name.startsWith('flag_') ? 'flags' : 'props';
    if (!m || !this.def.fields.has(field) || this.def.hidden.has(field)) return null;
    const col = sql`coalesce(${sql.ref(`t0.${field}`)}, ${''})`;
    const hay = field === 'flags' ? col : sql`(${' '} || ${col} || ${' '})`;
    const needle = field === 'flags' ? m[1] : ` ${m[1]} `;
    const pos = this.dialect === 'postgres' ? sql`strpos(${hay}, ${needle})` : sql`instr(${hay}, ${needle})`;
    return { sql: sql`(case when ${pos} > 0 then 1 else 0 end)`, type: { k: 'num', scale: 0, real: false } };
  }

  canonical(name: string): string {
    if (this.def.fields.has(name) || this.def.vcols.has(name)) return name;
    const lower = name.toLowerCase();
    return [...this.def.fields.keys(), ...this.def.vcols.keys()].find((k) => k.toLowerCase() === lower) ?? name;
  }

  joinSql(): RawBuilder<unknown> {
    const parts = [...this.joins].map((a) => {
      const j = this.def.joins.get(a)!;
      const t = this.schema.objects.get(j.obj)!;
      return sql`left join ${sql.table(t.table)} as ${sql.id(a)} on ${sql.ref(`${a}.id`)} = ${sql.ref(`t0.${j.on}`)}`;
    });
    return parts.length ? sql.join(parts, sql` `) : sql``;
  }
}

function parseEnumMap(s: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of s.split(';')) {
    if (!part.trim()) continue;
    const i = part.indexOf(':');
    if (i < 0) bad(`bad enum mapping ${JSON.stringify(part)}`);
    m.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return m;
}

/** Index of the first `=` outside quotes and brackets, or -1. */
function topLevelEq(s: string): number {
  let depth = 0;
  let q = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (q) {
      if (c === q) q = '';
    } else if (c === "'" || c === '"') q = c;
    else if (c === '(' || c === '{') depth++;
    else if (c === ')' || c === '}') depth--;
    else if (c === '=' && depth === 0) return i;
  }
  return -1;
}

/** One res/gres item: `expr [[AS] alias][=enum map]`. */
function parseItem(scope: ObjScope, item: string, what: 'res' | 'gres'): OutCol {
  let text = item;
  let enumMap: Map<string, string> | undefined;
  const eq = topLevelEq(item);
  // `=` inside aggregates (countif(status='CR')) sits in brackets; a top-level one starts an enum map
  if (eq >= 0) {
    text = item.slice(0, eq);
    enumMap = parseEnumMap(item.slice(eq + 1));
  }
  const toks = tokenize(text, what);
  const p = new Parser(toks, what, what === 'res');
  if (toks.length === 0) bad(`bad property \`${item}\``);
  const n = p.additive();
  const rest = toks.slice(p.pos);
  let alias: string | null = null;
  if (rest.length && rest[0].t === 'id' && rest[0].v.toLowerCase() === 'as') rest.shift();
  if (rest.length === 1 && (rest[0].t === 'id' || rest[0].t === 'dq' || rest[0].t === 'str')) alias = rest[0].v;
  else if (rest.length) bad(`bad property \`${item}\``);
  if (alias !== null && !alias.trim()) bad(`bad alias in \`${item}\``);
  if (n.k === 'col' && !n.quoted) {
    if (n.name.includes('.')) bad(`bad property \`${n.name}\``);
    const r = scope.column(n.name);
    if (!r) throw new DomainError('UNKNOWN_FIELD', `unknown field \`${n.name}\` in ${what}`);
    return { name: alias ?? scope.canonical(n.name), sql: r.sql, type: r.type, agg: false, enumMap, src: scope.canonical(n.name) };
  }
  if (n.k === 'lit' && n.v === null) {
    if (!alias) bad(`null needs an alias in ${what}`);
    return { name: alias!, sql: null, type: { k: 'null' }, agg: false, enumMap };
  }
  if (n.k === 'agg' && what === 'res') {
    if (!alias) bad(`aggregate \`${item}\` needs an alias`);
    const c = new Compiler(scopeFor(scope, new Map(), true, 'res')).value(n);
    return { name: alias!, sql: c.sql, type: c.type, agg: true, enumMap };
  }
  return bad(`bad property \`${item}\``);
}

export function scopeFor(scope: ObjScope, aliases: Map<string, OutCol>, allowAgg: boolean, what: string): CompileScope {
  return {
    dialect: scope.dialect,
    what,
    allowAgg,
    resolve(name, quoted, inAgg) {
      const a = aliases.get(name);
      if (a && a.sql && !(inAgg && a.agg)) {
        if (a.agg && !allowAgg) bad(`aggregate alias \`${name}\` can only be used in gcond`);
        return { sql: a.sql, type: a.type, agg: a.agg };
      }
      if (quoted) return null;
      // in gcond (HAVING) a plain column must be a group column (found above) or sit inside an aggregate
      if (what === 'gcond' && !inAgg) throw new DomainError('UNKNOWN_FIELD', `\`${name}\` in gcond is neither a gres column nor an aggregate alias`);
      if (name.includes('.')) {
        const [t, f] = name.split('.');
        if (t !== 't0') bad(`bad property \`${name}\``);
        return scope.column(f);
      }
      return scope.column(name);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// cond in object / array form (bqp.md §1.7)

export const lit = (v: Lit): Node => ({ k: 'lit', v, quoted: typeof v === 'string' });
export const col = (name: string): Node => ({ k: 'col', name, quoted: false });

function objValueCond(key: string, raw: unknown): Node | null {
  let field = key;
  let keyOp: string | null = null;
  const km = /^(.+?)\s*(>=|<=|<>|!=|=|>|<)$/.exec(key);
  if (km) {
    field = km[1];
    keyOp = km[2] === '!=' ? '<>' : km[2];
  }
  if (!/^[\p{L}_][\p{L}\p{N}_]*$/u.test(field)) bad(`bad field name \`${key}\` in cond`);
  if (raw === null || raw === undefined || raw === '') return null;
  if (typeof raw === 'number' || typeof raw === 'boolean') return { k: 'cmp', op: keyOp ?? '=', a: col(field), b: lit(raw) };
  if (typeof raw !== 'string') bad(`cond value for \`${key}\` must be a string or number`);
  const v = raw as string;
  if (keyOp) return { k: 'cmp', op: keyOp, a: col(field), b: lit(v) };
  const parts = v.split(/\s+(AND|OR)\s+/i);
  if (parts.length > 1) {
    if (parts.length > 40) bad('too many terms in cond');
    let node = one(field, parts[0]);
    for (let i = 1; i < parts.length; i += 2) {
      const b = one(field, parts[i + 1]);
      node = parts[i].toUpperCase() === 'AND' ? { k: 'and', a: node, b } : { k: 'or', a: node, b };
    }
    return node;
  }
  return one(field, v);
}

function one(field: string, v: string): Node {
  const s = v.trim();
  if (s === 'null') return { k: 'isnull', a: col(field), neg: false };
  if (s === '!null') return { k: 'isnull', a: col(field), neg: true };
  if (s === 'empty') return { k: 'cmp', op: '=', a: col(field), b: lit('') };
  const inm = /^(NOT\s+)?IN\s+(.*)$/i.exec(s);
  if (inm) {
    const items = inm[2].split(',').map((x) => x.trim()).filter((x) => x !== '');
    if (!items.length || items.length > 200) bad('IN needs 1 to 200 values');
    return { k: 'in', a: col(field), list: items.map((x) => lit(x)), neg: !!inm[1] };
  }
  const like = /^(!?)~(.*)$/.exec(s);
  if (like) {
    let p = like[2];
    p = p.includes('*') ? p.replace(/\*/g, '%') : `%${p}%`;
    return { k: 'like', a: col(field), b: lit(p), neg: like[1] === '!' };
  }
  const op = /^(>=|<=|<>|!=|>|<|=|!)\s*(.*)$/.exec(s);
  if (op) {
    const o = op[1] === '!' || op[1] === '!=' ? '<>' : op[1];
    return { k: 'cmp', op: o, a: col(field), b: lit(op[2]) };
  }
  return { k: 'cmp', op: '=', a: col(field), b: lit(s) };
}

/** Any accepted shape of `cond` → one tree (or null when empty). */
const parsedConds = new Map<string, Node>();
function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

export function condTree(c: unknown, what = 'cond'): Node | null {
  if (c === undefined || c === null || c === '') return null;
  if (typeof c === 'number') return { k: 'cmp', op: '=', a: col('id'), b: lit(c) };
  if (typeof c === 'string') {
    if (/^\s*\d+\s*$/.test(c)) return { k: 'cmp', op: '=', a: col('id'), b: lit(Number(c)) };
    // Clients repeat the same conditions: parsed trees are kept by text (frozen: nothing may change a shared tree).
    const key = what + '\u0000' + c;
    const hit = parsedConds.get(key);
    if (hit) return hit;
    const p = new Parser(tokenize(c, what), what, what === 'gcond');
    const n = p.parseAll();
    if (!isBool(n)) bad(`${what} must be a condition`);
    if (c.length <= 2000) {
      if (parsedConds.size >= 1000) parsedConds.delete(parsedConds.keys().next().value!);
      parsedConds.set(key, deepFreeze(n));
    }
    return n;
  }
  if (Array.isArray(c)) {
    if (c.length > 50) bad(`too many ${what} parts`);
    return andAll(c.map((x) => condTree(x, what)));
  }
  if (typeof c === 'object') {
    const o = c as Record<string, unknown>;
    const entries = Object.entries(o).filter(([k]) => k !== '_or');
    if (entries.length > 100) bad(`too many ${what} fields`);
    const nodes = entries.map(([k, v]) => objValueCond(k, v)).filter((x): x is Node => x !== null);
    if (!nodes.length) return null;
    const orMode = o._or === 1 || o._or === '1' || o._or === true;
    return nodes.reduce((a, b) => (orMode ? { k: 'or', a, b } : { k: 'and', a, b }));
  }
  return bad(`bad ${what}`);
}

export function andAll(parts: (Node | null)[]): Node | null {
  const xs = parts.filter((x): x is Node => x !== null);
  if (!xs.length) return null;
  return xs.reduce((a, b) => ({ k: 'and', a, b }));
}

// ---------------------------------------------------------------------------------------------
// the query

export interface QueryInput {
  res?: string;
  gres?: string;
  cond?: Node | null;
  gcond?: Node | null;
  orderby?: string;
  pagesz?: number;
  pagekey?: number | null;
  page?: number | null;
  /** extra res for sub-tables: res_<name> */
  subRes?: Record<string, string>;
  /** per sub-table parameters: param_<name> (by the name the sub-table has in the answer) */
  subParams?: Record<string, SubParams>;
  /** param_<name> may page its sub-table (one query per parent row instead of one IN query) */
  disableSubobjOptimize?: boolean;
  /** the operation checked against the role's rules (get is a one-row query) */
  op?: string;
  /** internal: also select this field as `_fk` (sub-table fetches) */
  fkCol?: string;
  /** no paging at all (sub-table fetches, fmt=array exports of internal callers) */
  unpaged?: boolean;
  /** SELECT DISTINCT (offset paging; order by result columns only) */
  distinct?: boolean;
  /** the date field of the time buckets, instead of the object's tmField */
  tmField?: string;
  /** every res item must be an aggregate (statRes) */
  aggOnly?: boolean;
}

export interface QueryResult {
  cols: string[];
  rows: unknown[][];
  nextkey?: number;
  total?: number;
  /** statRes: aggregates over every row the cond selects */
  stat?: Record<string, unknown>;
}

const ORDER_RE = /^\s*(?:(\w+)\.)?([\p{L}\p{N}_]+|"[^"]+")(?:\s+(asc|desc))?\s*$/iu;

interface Plan {
  main: CompiledQuery;
  total: CompiledQuery | null;
  shape: { src: number | null; col: OutCol }[];
  convs: VType[];
  subs: SubCol[];
  nextMode: 'key' | 'page' | null;
  limit: number | null;
  pageNo: number;
}

/** Compiled plans by everything that shapes their SQL: the same call is parsed and compiled once. */
const plans = new Map<string, Plan>();
const PLAN_CACHE = 500;

export async function runQuery(db: Kysely<any>, schema: Schema, dialect: Dialect, def: ObjectDef, caller: Caller, q: QueryInput, depth = 0): Promise<QueryResult> {
  const key = JSON.stringify([schema.source, def.name, dialect, caller, q]);
  let plan = plans.get(key);
  if (plan) {
    plans.delete(key);
    plans.set(key, plan);
  } else {
    plan = planQuery(db, schema, dialect, def, caller, q);
    if (key.length <= 8192) {
      if (plans.size >= PLAN_CACHE) plans.delete(plans.keys().next().value!);
      plans.set(key, plan);
    }
  }
  const { shape, convs, subs, nextMode, limit, pageNo } = plan;
  const rowsRaw = await fetchRows(db, plan.main);
  const rows: unknown[][] = rowsRaw.map((r) =>
    shape.map(({ src, col }) => {
      if (src === null) return null;
      let v = outValue(r[`c${src}`], convs[src]);
      if (col.enumMap && v !== null && v !== undefined) {
        const m = col.enumMap;
        v = String(v)
          .split(',')
          .map((x) => m.get(x) ?? x)
          .join(',');
      }
      return v;
    }),
  );
  const names = shape.map((s) => s.col.name);

  // sub-tables
  if (subs.length && rowsRaw.length) {
    const keys = rowsRaw.map((r) => Number(r._k));
    for (const s of subs) {
      const sp = q.subParams?.[s.name];
      if (sp?.pagesz !== undefined && !q.disableSubobjOptimize) bad(`\`pagesz\` in param_${s.name} needs disableSubobjOptimize=1 (sub-tables are fetched for all rows at once)`);
      const vals = await fetchSub(db, schema, dialect, caller, s, keys, sp?.res ?? q.subRes?.[s.name], sp, depth);
      const one = sp?.wantOne ?? s.one;
      rows.forEach((row, i) => {
        const list = vals.get(keys[i]) ?? [];
        row.push(one ? (list[0] ?? null) : list);
      });
    }
  }
  if (subs.length) names.push(...subs.map((s) => s.name));

  const out: QueryResult = { cols: names, rows };
  if (nextMode && limit !== null && rowsRaw.length === limit) {
    if (nextMode === 'key') out.nextkey = Number(rowsRaw[rowsRaw.length - 1]._k);
    else out.nextkey = pageNo + 1;
  }
  if (plan.total) {
    const r = (await fetchRows(db, plan.total))[0] as { n: number | string };
    out.total = Number(r.n);
  }
  return out;
}

function planQuery(db: Kysely<any>, schema: Schema, dialect: Dialect, def: ObjectDef, caller: Caller, q: QueryInput): Plan {
  const acl = requireOp(def, caller, q.op ?? 'query');
  const scope = new ObjScope(schema, def, dialect, q.tmField ?? def.tmField);
  const distinct = !!q.distinct;

  // gres, res
  const group: OutCol[] = q.gres ? splitCols(q.gres).map((x) => parseItem(scope, x, 'gres')) : [];
  const cols: OutCol[] = [...group];
  const subs: SubCol[] = [];
  const resText = q.res ?? (q.gres ? '' : '*');
  const items = splitCols(resText);
  const hasStar = items.some((x) => x === '*' || x === 't0.*');
  for (const it of items) {
    if (it === '*' || it === 't0.*') {
      for (const name of def.order) if (!def.hidden.has(name)) cols.push({ name, sql: sql.ref(`t0.${name}`), type: fieldType(def.fields.get(name)!), agg: false });
      if (it === '*') {
        for (const v of def.vcols.values()) if (v.default) cols.push({ ...parseItem(scope, v.name, 'res') });
        for (const s of def.subobj.values()) if (s.default) subs.push({ name: s.name, sub: s, res: null, one: s.wantOne });
      }
      continue;
    }
    const sm = /^([@%]?)([\p{L}_][\p{L}\p{N}_]*)(?:=\{(.*)\})?(?:\s+(?:as\s+)?"?([^"]+)"?)?$/iu.exec(it);
    if (sm && def.subobj.has(sm[2])) {
      const s = def.subobj.get(sm[2])!;
      subs.push({ name: sm[4] ?? s.name, sub: s, res: sm[3] ?? null, one: sm[1] === '%' || (sm[1] !== '@' && s.wantOne) });
      continue;
    }
    const c = parseItem(scope, it, 'res');
    if (hasStar && !(sm && def.vcols.has(sm[2]))) bad(`\`${it}\` MUST be virtual column when \`res\` has \`*\``);
    cols.push(c);
  }
  if (q.fkCol) cols.push({ name: '_fk', sql: sql.ref(`t0.${q.fkCol}`), type: { k: 'num', scale: 0, real: false }, agg: false });
  const aggregate = group.length > 0 || cols.some((c) => c.agg);
  if (q.aggOnly && cols.some((c) => !c.agg)) bad('statRes accepts aggregates only (e.g. `count(*) cnt, sum(amount) total`)');
  if (distinct && subs.length) bad('distinct cannot be used with sub-tables');
  if (aggregate) {
    for (const c of cols.slice(group.length)) {
      if (!c.agg && c.sql && !group.some((g) => g.src === c.src)) bad(`\`${c.name}\` must be listed in gres when res has aggregates`);
    }
  }
  if (aggregate && subs.length) bad('sub-tables cannot be used with aggregates');
  const aliases = new Map<string, OutCol>();
  for (const c of cols) aliases.set(c.name, c);

  // where
  const where: RawBuilder<unknown>[] = filterSql(def, acl, caller);
  if (q.cond) where.push(new Compiler(scopeFor(scope, new Map([...aliases].filter(([, c]) => !c.agg)), false, 'cond')).bool(q.cond).sql);
  let having: RawBuilder<unknown> | null = null;
  if (q.gcond) {
    if (!aggregate) bad('gcond needs gres or an aggregate in res');
    const gAliases = new Map(aliases);
    for (const g of group) if (g.src && !gAliases.has(g.src)) gAliases.set(g.src, g);
    having = new Compiler(scopeFor(scope, gAliases, true, 'gcond')).bool(q.gcond).sql;
  }

  // order
  const selected = cols.filter((c) => c.sql);
  const selIndex = new Map(selected.map((c, i) => [c, i]));
  const order: RawBuilder<unknown>[] = [];
  let keyset: 'asc' | 'desc' | null = null;
  if (q.orderby && q.orderby.trim()) {
    const parts = q.orderby.split(',');
    if (parts.length > 10) bad('too many orderby items');
    parts.forEach((part, i) => {
      const m = ORDER_RE.exec(part);
      if (!m) bad(`bad property \`${part.trim()}\` in orderby`);
      if (m![1] && m![1] !== 't0') bad(`bad property \`${part.trim()}\` in orderby`);
      const quoted = m![2].startsWith('"');
      const name = quoted ? m![2].slice(1, -1) : m![2];
      const dir = (m![3] ?? 'asc').toLowerCase() as 'asc' | 'desc';
      const a = m![1] ? undefined : aliases.get(name);
      let expr: RawBuilder<unknown>;
      if (a && a.sql) expr = sql.ref(`c${selIndex.get(a)}`);
      else {
        if (aggregate || distinct) bad(`orderby \`${name}\` must be a column of the result in ${distinct ? 'a distinct' : 'an aggregate'} query`);
        const r = quoted ? null : scope.column(name);
        if (!r) throw new DomainError('UNKNOWN_FIELD', `unknown field \`${name}\` in orderby`);
        expr = r.sql;
      }
      if (i === 0 && !aggregate && !distinct && scope.canonical(name) === 'id' && (!a || a.name === 'id')) keyset = dir;
      const nulls = dialect === 'postgres' ? (dir === 'asc' ? sql.raw(' nulls first') : sql.raw(' nulls last')) : sql.raw('');
      order.push(sql`${expr} ${sql.raw(dir)}${nulls}`);
    });
  } else if (distinct) {
    // a stable order for offset paging: every result column, left to right
    selected.forEach((_c, i) => order.push(sql`${sql.ref(`c${i}`)} asc`));
  } else if (!aggregate) {
    order.push(sql`${sql.ref('t0.id')} asc`);
    keyset = 'asc';
  }

  // paging
  const maxPage = def.maxPageSz;
  let pagesz = q.pagesz ?? 20;
  if (pagesz === 0) pagesz = 20;
  if (pagesz < 0 || pagesz > maxPage) pagesz = maxPage;
  let limit: number | null = pagesz;
  let offset = 0;
  let wantTotal = false;
  let nextMode: 'key' | 'page' | null = null;
  let pageNo = 1;
  if (q.unpaged) {
    limit = null;
    keyset = null;
  } else if (q.page != null) {
    keyset = null;
    pageNo = Math.max(1, q.page);
    wantTotal = true;
    nextMode = 'page';
  } else if (keyset) {
    nextMode = 'key';
    if (q.pagekey === 0) wantTotal = true;
    else if (q.pagekey != null) where.push(sql`${sql.ref('t0.id')} ${sql.raw(keyset === 'asc' ? '>' : '<')} ${q.pagekey}`);
  } else {
    nextMode = 'page';
    if (q.pagekey === 0) wantTotal = true;
    pageNo = q.pagekey && q.pagekey > 0 ? q.pagekey : 1;
  }
  if (nextMode === 'page' && limit !== null) offset = (pageNo - 1) * limit;

  const whereSql = where.length ? sql`where ${sql.join(where, sql` and `)}` : sql``;
  const groupSql = group.length ? sql`group by ${sql.join(group.map((g) => g.sql!))}` : sql``;
  const havingSql = having ? sql`having ${having}` : sql``;
  const selectList = selected.map((c, i) => sql`${c.sql} as ${sql.id(`c${i}`)}`);
  const needKey = !aggregate && !distinct;
  if (needKey) selectList.push(sql`${sql.ref('t0.id')} as ${sql.id('_k')}`);
  if (!selectList.length) bad('res selects no columns');
  const joins = scope.joinSql();
  const from = sql`from ${sql.table(def.table)} as ${sql.id('t0')} ${joins}`;
  const orderSql = order.length ? sql`order by ${sql.join(order)}` : sql``;
  const limitSql = limit === null ? sql`` : offset ? sql`limit ${limit} offset ${offset}` : sql`limit ${limit}`;
  const selectKw = distinct ? sql`select distinct` : sql`select`;
  const main = sql`${selectKw} ${sql.join(selectList)} ${from} ${whereSql} ${groupSql} ${havingSql} ${orderSql} ${limitSql}`;
  const convs = selected.map((c) => c.type);
  const shape: { src: number | null; col: OutCol }[] = cols.map((c) => ({ src: selIndex.has(c) ? selIndex.get(c)! : null, col: c }));
  let total: RawBuilder<unknown> | null = null;
  if (wantTotal) {
    const cw = where.length ? sql`where ${sql.join(where, sql` and `)}` : sql``;
    total = distinct
      ? sql`select count(*) as ${sql.id('n')} from (select distinct ${sql.join(selectList)} ${from} ${cw} ${groupSql} ${havingSql}) as ${sql.id('_t')}`
      : aggregate
        ? sql`select count(*) as ${sql.id('n')} from (select 1 as ${sql.id('x')} ${from} ${cw} ${groupSql} ${havingSql}) as ${sql.id('_t')}`
        : sql`select count(*) as ${sql.id('n')} ${from} ${cw}`;
  }
  return { main: main.compile(db), total: total ? total.compile(db) : null, shape, convs, subs, nextMode, limit, pageNo };
}

/**
 * The rows of one sub-table for the given parent keys, by key: one `IN (…)` query per 500 parents,
 * or — when `param_<sub>` pages it (pagesz, with disableSubobjOptimize) — one query per parent.
 */
async function fetchSub(db: Kysely<any>, schema: Schema, dialect: Dialect, caller: Caller, s: SubCol, keys: number[], resParam: string | undefined, sp: SubParams | undefined, depth: number): Promise<Map<number, Record<string, unknown>[]>> {
  if (depth > 2) bad('sub-tables are nested too deep');
  const child = schema.objects.get(s.sub.obj)!;
  const res = resParam ?? s.res ?? s.sub.res ?? '*';
  const orderby = sp?.orderby ?? s.sub.orderby;
  const out = new Map<number, Record<string, unknown>[]>();
  const perParent = sp?.pagesz !== undefined;
  const step = perParent ? 1 : 500;
  for (let i = 0; i < keys.length; i += step) {
    const chunk = keys.slice(i, i + step);
    const link: Node = perParent ? { k: 'cmp', op: '=', a: col(s.sub.fk), b: lit(chunk[0]) } : { k: 'in', a: col(s.sub.fk), list: chunk.map((k) => lit(k)), neg: false };
    const cond = andAll([link, sp?.cond ?? null])!;
    const r = await runQuery(db, schema, dialect, child, caller, perParent ? { res, fkCol: s.sub.fk, cond, orderby, pagesz: sp!.pagesz } : { res, fkCol: s.sub.fk, cond, orderby, unpaged: true }, depth + 1);
    const fkAt = r.cols.lastIndexOf('_fk');
    for (const row of r.rows) {
      const o: Record<string, unknown> = {};
      r.cols.forEach((c, j) => {
        if (j !== fkAt) o[c] = row[j];
      });
      const k = Number(row[fkAt]);
      (out.get(k) ?? out.set(k, []).get(k)!).push(o);
    }
  }
  return out;
}

/** Integer id from a request parameter, or VALIDATION. */
export function intParam(v: unknown, name: string): number {
  const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : '';
  if (!/^-?\d{1,15}$/.test(s)) bad(`bad integer parameter \`${name}\``);
  return Number(s);
}

export { decToInt };
export type { Compiled };

/**
 * `qsearch=f1,f2*,f3!:term1 term2` (bqp.md §1.5): every term must match (AND), in any of the fields
 * (OR). A term with `*` is a LIKE pattern as written; otherwise it is "contains", "starts with" for
 * a field ending in `*`, "equals" for one ending in `!`. Fields resolve like cond fields.
 */
export function qsearchTree(qs: string): Node | null {
  const i = qs.indexOf(':');
  if (i <= 0) bad('bad qsearch format: `field1,field2:text`');
  const fields = qs
    .slice(0, i)
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);
  const terms = qs
    .slice(i + 1)
    .trim()
    .split(/\s+/)
    .filter(Boolean);
  if (!terms.length) return null;
  if (!fields.length || fields.length > 20) bad('qsearch needs 1 to 20 fields');
  if (terms.length > 10) bad('qsearch accepts at most 10 terms');
  const parsed = fields.map((f) => {
    const mode = f.endsWith('*') ? '*' : f.endsWith('!') ? '!' : '';
    const name = mode ? f.slice(0, -1) : f;
    if (!/^[\p{L}_][\p{L}\p{N}_]*$/u.test(name)) bad(`bad field name \`${f}\` in qsearch`);
    return { name, mode };
  });
  const perTerm = terms.map((t) => {
    if (t.length > 200) bad('qsearch term is too long');
    const ors = parsed.map(({ name, mode }): Node => {
      if (t.includes('*')) return { k: 'like', a: col(name), b: lit(t.replace(/\*/g, '%')), neg: false };
      if (mode === '!') return { k: 'cmp', op: '=', a: col(name), b: lit(t) };
      return { k: 'like', a: col(name), b: lit(mode === '*' ? `${t}%` : `%${t}%`), neg: false };
    });
    return ors.reduce((a, b) => ({ k: 'or', a, b }));
  });
  return andAll(perTerm);
}
