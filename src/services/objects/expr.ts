/**
 * The BQP expression language (`cond`, `gcond`, aggregates in `res`): a tokenizer, a parser into an
 * expression tree, and a compiler to Kysely `sql` fragments. Identifiers resolve only to declared
 * fields, virtual fields and aliases; every literal becomes a bind parameter; operators and keywords
 * come from fixed tables; function calls other than the aggregate whitelist, sub-queries, `union`,
 * comments and statement separators are refused with FORBIDDEN. Request text never reaches SQL.
 */
import { sql, type RawBuilder } from 'kysely';
import { DomainError } from '../../core/errors.js';

export const LIMITS = { length: 4000, tokens: 600, depth: 24, terms: 200 };

// ---------------------------------------------------------------------------------------------
// tokens

export type Tok =
  | { t: 'num'; v: string }
  | { t: 'str'; v: string }
  | { t: 'dq'; v: string } // "…": an alias if one is known, else a string (MySQL)
  | { t: 'id'; v: string }
  | { t: 'op'; v: string };

const FORBIDDEN_WORDS = new Set([
  'select', 'union', 'insert', 'update', 'delete', 'drop', 'alter', 'create', 'truncate', 'replace', 'exec', 'execute',
  'into', 'from', 'where', 'having', 'join', 'grant', 'revoke', 'attach', 'detach', 'pragma', 'vacuum', 'sleep',
  'benchmark', 'pg_sleep', 'load_file', 'outfile', 'dumpfile', 'information_schema', 'sqlite_master', 'pg_catalog',
  'declare', 'call', 'handler', 'waitfor', 'shutdown', 'copy', 'returning', 'limit', 'offset', 'procedure', 'set',
]);
export const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'is', 'null', 'like', 'between', 'true', 'false', 'distinct', 'as']);
export const AGGREGATES = new Set(['count', 'sum', 'avg', 'max', 'min', 'countif', 'sumif']);

const forbid = (what: string): never => {
  throw new DomainError('FORBIDDEN', `forbidden ${what}`);
};
const bad = (msg: string): never => {
  throw new DomainError('VALIDATION', msg);
};

export function tokenize(src: string, what = 'cond'): Tok[] {
  if (src.length > LIMITS.length) bad(`${what} is longer than ${LIMITS.length} characters`);
  const out: Tok[] = [];
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === "'" || c === '"') {
      let v = '';
      i++;
      for (;;) {
        if (i >= n) bad(`unterminated string in ${what}`);
        const d = src[i];
        if (d === '\\' && i + 1 < n) {
          const e = src[i + 1];
          v += e === 'n' ? '\n' : e === 't' ? '\t' : e === '0' ? '\0' : e;
          i += 2;
        } else if (d === c) {
          if (src[i + 1] === c) {
            v += c;
            i += 2;
          } else {
            i++;
            break;
          }
        } else {
          v += d;
          i++;
        }
      }
      out.push({ t: c === "'" ? 'str' : 'dq', v });
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(src.slice(i))!;
      if (/^[\p{L}_]/u.test(src[i + m[0].length] ?? '')) bad(`bad number in ${what}`);
      out.push({ t: 'num', v: m[0] });
      i += m[0].length;
    } else if (/[\p{L}_]/u.test(c)) {
      const m = /^[\p{L}_][\p{L}\p{N}_]*(?:\.[\p{L}_][\p{L}\p{N}_]*)?/u.exec(src.slice(i))!;
      const w = m[0];
      if (FORBIDDEN_WORDS.has(w.toLowerCase())) forbid(`\`${w}\` in param ${what}`);
      out.push({ t: 'id', v: w });
      i += w.length;
    } else {
      const two = src.slice(i, i + 2);
      if (two === '--' || two === '/*' || two === '*/' || c === ';' || c === '#' || c === '`') forbid(`SQL syntax \`${two === '--' || two === '/*' || two === '*/' ? two : c}\` in param ${what}`);
      if (two === '<=' || two === '>=' || two === '<>' || two === '!=') {
        out.push({ t: 'op', v: two });
        i += 2;
      } else if ('=<>(),+-*/%'.includes(c)) {
        out.push({ t: 'op', v: c });
        i++;
      } else bad(`unexpected character ${JSON.stringify(c)} in ${what}`);
    }
    if (out.length > LIMITS.tokens) bad(`${what} has more than ${LIMITS.tokens} tokens`);
  }
  // function calls: identifier directly followed by "("
  for (let k = 0; k + 1 < out.length; k++) {
    const a = out[k];
    const b = out[k + 1];
    if (a.t === 'id' && b.t === 'op' && b.v === '(') {
      const w = a.v.toLowerCase();
      if (!KEYWORDS.has(w) && !AGGREGATES.has(w)) forbid(`\`${a.v}\` in param ${what}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// tree

export type Lit = string | number | null | boolean;
export type Node =
  | { k: 'or' | 'and'; a: Node; b: Node }
  | { k: 'not'; a: Node }
  | { k: 'cmp'; op: string; a: Node; b: Node }
  | { k: 'isnull'; a: Node; neg: boolean }
  | { k: 'like'; a: Node; b: Node; neg: boolean }
  | { k: 'in'; a: Node; list: Node[]; neg: boolean }
  | { k: 'between'; a: Node; lo: Node; hi: Node; neg: boolean }
  | { k: 'arith'; op: string; a: Node; b: Node }
  | { k: 'neg'; a: Node }
  | { k: 'col'; name: string; quoted: boolean }
  | { k: 'lit'; v: Lit; quoted: boolean }
  | { k: 'agg'; fn: string; distinct: boolean; args: Node[]; star: boolean };

const BOOL = new Set(['or', 'and', 'not', 'cmp', 'isnull', 'like', 'in', 'between']);
export const isBool = (n: Node): boolean => BOOL.has(n.k) || (n.k === 'lit' && typeof n.v === 'boolean');

export class Parser {
  private i = 0;
  private depth = 0;
  terms = 0;
  constructor(
    private readonly toks: Tok[],
    private readonly what: string,
    private readonly allowAgg: boolean,
  ) {}

  get pos(): number {
    return this.i;
  }
  get done(): boolean {
    return this.i >= this.toks.length;
  }
  peek(o = 0): Tok | undefined {
    return this.toks[this.i + o];
  }
  private isKw(w: string, o = 0): boolean {
    const t = this.peek(o);
    return !!t && t.t === 'id' && t.v.toLowerCase() === w;
  }
  private isOp(v: string): boolean {
    const t = this.peek();
    return !!t && t.t === 'op' && t.v === v;
  }
  private eatKw(w: string): boolean {
    if (this.isKw(w)) {
      this.i++;
      return true;
    }
    return false;
  }
  private expectOp(v: string): void {
    if (!this.isOp(v)) bad(`expected "${v}" in ${this.what}`);
    this.i++;
  }
  private enter(): void {
    if (++this.depth > LIMITS.depth) bad(`${this.what} is nested deeper than ${LIMITS.depth}`);
  }
  private leaf(): void {
    if (++this.terms > LIMITS.terms) bad(`${this.what} has more than ${LIMITS.terms} terms`);
  }

  parseAll(): Node {
    if (this.toks.length === 0) bad(`empty ${this.what}`);
    const n = this.expr();
    if (!this.done) bad(`unexpected ${JSON.stringify(this.peek()!.v)} in ${this.what}`);
    return n;
  }

  expr(): Node {
    this.enter();
    let a = this.and();
    while (this.eatKw('or')) a = { k: 'or', a, b: this.and() };
    this.depth--;
    return a;
  }
  private and(): Node {
    let a = this.not();
    while (this.eatKw('and')) a = { k: 'and', a, b: this.not() };
    return a;
  }
  private not(): Node {
    if (this.eatKw('not')) {
      this.enter();
      const a = this.not();
      this.depth--;
      return { k: 'not', a };
    }
    return this.predicate();
  }
  private predicate(): Node {
    const a = this.additive();
    const t = this.peek();
    if (t?.t === 'op' && ['=', '<>', '!=', '<', '>', '<=', '>='].includes(t.v)) {
      this.i++;
      return { k: 'cmp', op: t.v === '!=' ? '<>' : t.v, a, b: this.additive() };
    }
    if (this.eatKw('is')) {
      const neg = this.eatKw('not');
      if (!this.eatKw('null')) bad(`IS must be followed by [NOT] NULL in ${this.what}`);
      return { k: 'isnull', a, neg };
    }
    let neg = false;
    if (this.isKw('not') && (this.isKw('like', 1) || this.isKw('in', 1) || this.isKw('between', 1))) {
      this.i++;
      neg = true;
    }
    if (this.eatKw('like')) return { k: 'like', a, b: this.additive(), neg };
    if (this.eatKw('in')) {
      this.expectOp('(');
      const list: Node[] = [];
      do list.push(this.additive());
      while (this.isOp(',') && ++this.i);
      this.expectOp(')');
      return { k: 'in', a, list, neg };
    }
    if (this.eatKw('between')) {
      const lo = this.additive();
      if (!this.eatKw('and')) bad(`BETWEEN needs AND in ${this.what}`);
      return { k: 'between', a, lo, hi: this.additive(), neg };
    }
    return a;
  }
  additive(): Node {
    let a = this.mult();
    for (;;) {
      const t = this.peek();
      if (t?.t === 'op' && (t.v === '+' || t.v === '-')) {
        this.i++;
        a = { k: 'arith', op: t.v, a, b: this.mult() };
      } else return a;
    }
  }
  private mult(): Node {
    let a = this.unary();
    for (;;) {
      const t = this.peek();
      if (t?.t === 'op' && (t.v === '*' || t.v === '/' || t.v === '%')) {
        this.i++;
        a = { k: 'arith', op: t.v, a, b: this.unary() };
      } else return a;
    }
  }
  private unary(): Node {
    if (this.isOp('-')) {
      this.i++;
      this.enter();
      const a = this.unary();
      this.depth--;
      if (a.k === 'lit' && typeof a.v === 'number') return { k: 'lit', v: -a.v, quoted: false };
      return { k: 'neg', a };
    }
    if (this.isOp('+')) {
      this.i++;
      return this.unary();
    }
    return this.primary();
  }
  private primary(): Node {
    const t = this.peek();
    if (!t) return bad(`${this.what} ends too early`);
    if (t.t === 'op' && t.v === '(') {
      this.i++;
      this.enter();
      const n = this.expr();
      this.depth--;
      this.expectOp(')');
      return n;
    }
    this.i++;
    this.leaf();
    if (t.t === 'num') {
      const v = Number(t.v);
      if (!Number.isFinite(v)) bad(`bad number in ${this.what}`);
      return { k: 'lit', v: /^\d+$/.test(t.v) && !Number.isSafeInteger(v) ? t.v : v, quoted: false };
    }
    if (t.t === 'str') return { k: 'lit', v: t.v, quoted: true };
    if (t.t === 'dq') return { k: 'col', name: t.v, quoted: true };
    if (t.t === 'op') return bad(`unexpected "${t.v}" in ${this.what}`);
    const w = t.v.toLowerCase();
    if (w === 'null') return { k: 'lit', v: null, quoted: false };
    if (w === 'true' || w === 'false') return { k: 'lit', v: w === 'true', quoted: false };
    if (AGGREGATES.has(w) && this.isOp('(')) {
      if (!this.allowAgg) forbid(`aggregate \`${t.v}\` in param ${this.what}`);
      this.i++;
      this.enter();
      const node: Node = { k: 'agg', fn: w, distinct: false, args: [], star: false };
      if (w === 'count' && this.isOp('*')) {
        this.i++;
        node.star = true;
      } else {
        if (w === 'countif' || w === 'sumif') {
          node.args.push(this.expr());
          if (this.isOp(',')) {
            this.i++;
            node.distinct = this.eatKw('distinct');
            node.args.push(this.additive());
          } else if (w === 'sumif') bad('SUMIF needs a condition and a field');
        } else {
          node.distinct = this.eatKw('distinct');
          node.args.push(this.additive());
        }
      }
      this.expectOp(')');
      this.depth--;
      return node;
    }
    if (KEYWORDS.has(w)) bad(`unexpected ${t.v.toUpperCase()} in ${this.what}`);
    return { k: 'col', name: t.v, quoted: false };
  }
}

export function parseExpr(src: string, what: string, allowAgg: boolean): Node {
  return new Parser(tokenize(src, what), what, allowAgg).parseAll();
}

// ---------------------------------------------------------------------------------------------
// compiler

/** num: a number with `scale` decimal digits stored as an integer (decimals are hundredths). */
export type VType = { k: 'num'; scale: number; real: boolean } | { k: 'text'; date: 'datetime' | 'date' | null } | { k: 'null' } | { k: 'bool' };

export interface Resolved {
  sql: RawBuilder<unknown>;
  type: VType;
  agg?: boolean;
}

export interface CompileScope {
  dialect: 'sqlite' | 'postgres';
  what: string;
  /** Resolves a column name or alias (inAgg: inside an aggregate's argument). */
  resolve(name: string, quoted: boolean, inAgg: boolean): Resolved | null;
  allowAgg: boolean;
}

export interface Compiled {
  sql: RawBuilder<unknown>;
  type: VType;
  agg: boolean;
}

const CMP: Record<string, string> = { '=': '=', '<>': '<>', '<': '<', '>': '>', '<=': '<=', '>=': '>=' };
const ARITH: Record<string, string> = { '+': '+', '-': '-', '*': '*', '/': '/', '%': '%' };

/** Parses a decimal literal into an integer with `scale` digits, exactly (no float rounding). */
export function decToInt(v: string | number, scale: number): number | null {
  const s = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : '') : v.trim();
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(s.includes('e') || s.includes('E') ? Number(s).toFixed(scale + 2) : s);
  if (!m || (m[2] === '' && !m[3])) return null;
  const frac = (m[3] ?? '').padEnd(scale + 1, '0');
  let n = Number((m[2] || '0') + frac.slice(0, scale));
  if (Number(frac[scale]) >= 5) n += 1; // half up on the first dropped digit
  if (!Number.isSafeInteger(n)) return null;
  return m[1] === '-' ? -n : n;
}

/** 'YYYY-M-D[ H:M[:S]]' → canonical 'YYYY-MM-DD HH:MM:SS' (or 'YYYY-MM-DD' for dates); other text unchanged. */
export function normDate(v: string, kind: 'datetime' | 'date'): string {
  const m = /^(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?(?:\.\d+)?)?$/.exec(v.trim());
  if (!m) return v;
  const p = (x: string | undefined) => (x ?? '0').padStart(2, '0');
  const d = `${m[1]}-${p(m[2])}-${p(m[3])}`;
  return kind === 'date' ? d : `${d} ${p(m[4])}:${p(m[5])}:${p(m[6])}`;
}

export class Compiler {
  private inAgg = 0;
  constructor(private readonly s: CompileScope) {}

  bool(n: Node): Compiled {
    const c = this.node(n);
    if (c.type.k !== 'bool') bad(`${this.s.what} must be a condition`);
    return c;
  }

  value(n: Node): Compiled {
    const c = this.node(n);
    if (c.type.k === 'bool') bad(`a condition cannot be used as a value in ${this.s.what}`);
    return c;
  }

  private lit(v: Lit, want: VType | null): Compiled {
    if (v === null) return { sql: sql`null`, type: { k: 'null' }, agg: false };
    // PostgreSQL refuses NUL in text; refused on both engines alike
    if (typeof v === 'string' && v.includes('\0')) bad(`a NUL character in ${this.s.what}`);
    if (typeof v === 'boolean') return { sql: sql.lit(v ? 1 : 0), type: { k: 'num', scale: 0, real: false }, agg: false };
    if (want?.k === 'num') {
      if (want.real) {
        const x = Number(v);
        if (String(v).trim() === '' || !Number.isFinite(x)) bad(`${JSON.stringify(v)} is not a number (${this.s.what})`);
        return { sql: sql`${x}`, type: want, agg: false };
      }
      const x = decToInt(v, want.scale);
      if (x === null) bad(`${JSON.stringify(v)} is not a number (${this.s.what})`);
      return { sql: sql`${x}`, type: want, agg: false };
    }
    if (want?.k === 'text') {
      const s = String(v);
      return { sql: sql`${want.date ? normDate(s, want.date) : s}`, type: want, agg: false };
    }
    if (typeof v === 'number') {
      return { sql: sql`${v}`, type: { k: 'num', scale: 0, real: !Number.isInteger(v) }, agg: false };
    }
    return { sql: sql`${v}`, type: { k: 'text', date: null }, agg: false };
  }

  private pair(a: Node, b: Node): [Compiled, Compiled] {
    if (a.k === 'lit' && b.k === 'lit') return [this.lit(a.v, null), this.lit(b.v, null)];
    if (a.k === 'lit') {
      const cb = this.value(b);
      return [this.lit(a.v, cb.type.k === 'null' ? null : cb.type), cb];
    }
    const ca = this.value(a);
    if (b.k === 'lit') return [ca, this.lit(b.v, ca.type.k === 'null' ? null : ca.type)];
    const cb = this.value(b);
    return this.align(ca, cb);
  }

  /** Brings two numbers to the same scale. */
  private align(a: Compiled, b: Compiled): [Compiled, Compiled] {
    if (a.type.k === 'num' && b.type.k === 'num' && a.type.scale !== b.type.scale) {
      const up = (c: Compiled, by: number): Compiled => ({ ...c, sql: sql`(${c.sql} * ${sql.lit(10 ** by)})`, type: { ...(c.type as { k: 'num'; real: boolean }), k: 'num', scale: c.type.k === 'num' ? c.type.scale + by : by } });
      if (a.type.scale < b.type.scale) return [up(a, b.type.scale - a.type.scale), b];
      return [a, up(b, a.type.scale - b.type.scale)];
    }
    return [a, b];
  }

  private node(n: Node): Compiled {
    switch (n.k) {
      case 'or':
      case 'and': {
        const a = this.bool(n.a);
        const b = this.bool(n.b);
        return { sql: n.k === 'or' ? sql`(${a.sql} or ${b.sql})` : sql`(${a.sql} and ${b.sql})`, type: { k: 'bool' }, agg: a.agg || b.agg };
      }
      case 'not': {
        const a = this.bool(n.a);
        return { sql: sql`(not ${a.sql})`, type: { k: 'bool' }, agg: a.agg };
      }
      case 'cmp': {
        const [a, b] = this.pair(n.a, n.b);
        return { sql: sql`(${a.sql} ${sql.raw(CMP[n.op])} ${b.sql})`, type: { k: 'bool' }, agg: a.agg || b.agg };
      }
      case 'isnull': {
        const a = this.value(n.a);
        return { sql: n.neg ? sql`(${a.sql} is not null)` : sql`(${a.sql} is null)`, type: { k: 'bool' }, agg: a.agg };
      }
      case 'like': {
        const a = this.value(n.a);
        const b = n.b.k === 'lit' ? this.lit(n.b.v === null ? null : String(n.b.v), { k: 'text', date: null }) : this.value(n.b);
        const op = this.s.dialect === 'postgres' ? (n.neg ? 'not ilike' : 'ilike') : n.neg ? 'not like' : 'like';
        const left = this.s.dialect === 'postgres' && a.type.k !== 'text' ? sql`cast(${a.sql} as text)` : a.sql;
        // PostgreSQL treats \ as LIKE's escape character (and refuses a pattern ending in one); SQLite
        // has none. ESCAPE '' makes both engines read a backslash as itself.
        const esc = this.s.dialect === 'postgres' ? sql` escape ${''}` : sql``;
        return { sql: sql`(${left} ${sql.raw(op)} ${b.sql}${esc})`, type: { k: 'bool' }, agg: a.agg || b.agg };
      }
      case 'in': {
        const a = this.value(n.a);
        const items = n.list.map((x) => (x.k === 'lit' ? this.lit(x.v, a.type.k === 'null' ? null : a.type) : this.align(a, this.value(x))[1]));
        const list = sql.join(items.map((x) => x.sql));
        return { sql: n.neg ? sql`(${a.sql} not in (${list}))` : sql`(${a.sql} in (${list}))`, type: { k: 'bool' }, agg: a.agg };
      }
      case 'between': {
        const [a, lo] = this.pair(n.a, n.lo);
        const [, hi] = this.pair(n.a, n.hi);
        return { sql: n.neg ? sql`(${a.sql} not between ${lo.sql} and ${hi.sql})` : sql`(${a.sql} between ${lo.sql} and ${hi.sql})`, type: { k: 'bool' }, agg: a.agg };
      }
      case 'neg': {
        const a = this.value(n.a);
        if (a.type.k !== 'num') bad(`minus needs a number (${this.s.what})`);
        return { sql: sql`(- ${a.sql})`, type: a.type, agg: a.agg };
      }
      case 'arith': {
        let [a, b] = this.pair(n.a, n.b);
        if (a.type.k !== 'num' && a.type.k !== 'null') bad(`arithmetic needs numbers (${this.s.what})`);
        if (b.type.k !== 'num' && b.type.k !== 'null') bad(`arithmetic needs numbers (${this.s.what})`);
        const sa = a.type.k === 'num' ? a.type : { k: 'num' as const, scale: 0, real: false };
        const sb = b.type.k === 'num' ? b.type : { k: 'num' as const, scale: 0, real: false };
        const real = sa.real || sb.real;
        if (n.op === '*') return { sql: sql`(${a.sql} * ${b.sql})`, type: { k: 'num', scale: sa.scale + sb.scale, real }, agg: a.agg || b.agg };
        if (n.op === '/') {
          const dbl = this.s.dialect === 'postgres' ? sql`cast(${a.sql} as double precision)` : sql`cast(${a.sql} as real)`;
          const scale = Math.max(0, sa.scale - sb.scale);
          const num = sa.scale < sb.scale ? sql`(${dbl} * ${sql.lit(10 ** (sb.scale - sa.scale))})` : dbl;
          return { sql: sql`(${num} / ${b.sql})`, type: { k: 'num', scale, real: true }, agg: a.agg || b.agg };
        }
        if (a.type.k === 'num' && b.type.k === 'num') [a, b] = this.align(a, b);
        const scale = Math.max(sa.scale, sb.scale);
        return { sql: sql`(${a.sql} ${sql.raw(ARITH[n.op])} ${b.sql})`, type: { k: 'num', scale, real }, agg: a.agg || b.agg };
      }
      case 'col': {
        const r = this.s.resolve(n.name, n.quoted, this.inAgg > 0);
        if (!r) {
          if (n.quoted) return this.lit(n.name, null); // "text" is a string in MySQL
          throw new DomainError('UNKNOWN_FIELD', `unknown field \`${n.name}\` in ${this.s.what}`);
        }
        return { sql: r.sql, type: r.type, agg: !!r.agg };
      }
      case 'lit':
        return this.lit(n.v, null);
      case 'agg': {
        this.inAgg++;
        try {
          return this.agg(n);
        } finally {
          this.inAgg--;
        }
      }
    }
  }

  private agg(n: Extract<Node, { k: 'agg' }>): Compiled {
    if (!this.s.allowAgg) forbid(`aggregate \`${n.fn}\` in param ${this.s.what}`);
    const inner = (x: Node) => {
      const c = this.value(x);
      if (c.agg) bad(`aggregates cannot be nested (${this.s.what})`);
      return c;
    };
    const dist = n.distinct ? sql.raw('distinct ') : sql.raw('');
    const int: VType = { k: 'num', scale: 0, real: false };
    switch (n.fn) {
      case 'count':
        if (n.star) return { sql: sql`count(*)`, type: int, agg: true };
        return { sql: sql`count(${dist}${inner(n.args[0]).sql})`, type: int, agg: true };
      case 'countif': {
        const c = this.bool(n.args[0]);
        if (c.agg) bad(`aggregates cannot be nested (${this.s.what})`);
        const f = n.args[1] ? inner(n.args[1]).sql : sql.lit(1);
        return { sql: sql`count(${dist}case when ${c.sql} then ${f} end)`, type: int, agg: true };
      }
      case 'sumif': {
        const c = this.bool(n.args[0]);
        const f = inner(n.args[1]);
        if (f.type.k !== 'num') bad(`SUMIF needs a number (${this.s.what})`);
        return { sql: sql`sum(case when ${c.sql} then ${f.sql} else 0 end)`, type: f.type, agg: true };
      }
      case 'sum':
      case 'avg': {
        const f = inner(n.args[0]);
        if (f.type.k !== 'num' && f.type.k !== 'null') bad(`${n.fn.toUpperCase()} needs a number (${this.s.what})`);
        const t: VType = f.type.k === 'num' ? { ...f.type, real: f.type.real || n.fn === 'avg' } : int;
        return { sql: n.fn === 'sum' ? sql`sum(${dist}${f.sql})` : sql`avg(${dist}${f.sql})`, type: t, agg: true };
      }
      default: {
        const f = inner(n.args[0]);
        return { sql: n.fn === 'max' ? sql`max(${f.sql})` : sql`min(${f.sql})`, type: f.type, agg: true };
      }
    }
  }
}
