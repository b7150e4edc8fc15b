/**
 * Declared objects: the schema file (YAML or JSON) that says which objects exist, their fields and
 * types, virtual fields, sub-tables, enums and per-role access rules. Loaded once, validated strictly
 * (a bad schema stops the server at start with a message naming the object and field).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

export type FieldType = 'id' | 'int' | 'dec' | 'real' | 'text' | 'datetime' | 'date' | 'flag';
export const ROLES = ['guest', 'user', 'employee', 'admin'] as const;
export type Role = (typeof ROLES)[number];
export const STD_OPS = ['add', 'get', 'set', 'del', 'query', 'setIf', 'delIf', 'batchAdd', 'dup', 'batchSet', 'batchDel'] as const;
export type Op = (typeof STD_OPS)[number];
/** Session variables a row filter or a default may name. */
export const SESSION_VARS = ['uid', 'empId', 'adminId'] as const;
export type SessionVar = (typeof SESSION_VARS)[number];

export interface FieldDef {
  name: string;
  type: FieldType;
  /** varchar length (text fields); 0 = unbounded text */
  len: number;
}

export interface Acl {
  /** standard operations and the object's declared methods the role may call */
  ops: Set<string>;
  filter: [field: string, v: SessionVar][];
  readonly: Set<string>;
  defaults: Record<string, string | number>;
}

export interface VcolDef {
  name: string;
  join: string;
  field: string;
  /** the joined field's definition */
  def: FieldDef;
  default: boolean;
}

export interface JoinDef {
  alias: string;
  obj: string;
  on: string;
}

export interface SubobjDef {
  name: string;
  obj: string;
  fk: string;
  res: string | null;
  orderby: string;
  wantOne: boolean;
  default: boolean;
}

export interface StatusLogDef {
  obj: string;
  fk: string;
  action: string;
  tm: string | null;
  emp: string | null;
  field: string;
}

/**
 * A declared object method (`Obj.<name>`, the reference's custom `api_<name>` methods, declaratively):
 * a query or get with parameters it requires, equality conditions taken from them (bound values,
 * ANDed with the call's own cond and the role's row filter) and query parameters it fixes.
 */
export interface MethodDef {
  name: string;
  op: 'query' | 'get';
  params: string[];
  where: [field: string, param: string][];
  set: Record<string, string>;
}

/** `flag_x` (one letter or digit of an object's `flags` field) and `prop_x` (one word of its space-separated `props` field). */
export const FLAG_RE = /^flag_([A-Za-z0-9])$/;
export const PROP_RE = /^prop_(\w{1,32})$/;

/** The query parameters a method may fix. */
export const METHOD_SET = ['res', 'cond', 'orderby', 'fmt', 'pagesz', 'gres', 'distinct'] as const;

export interface ObjectDef {
  name: string;
  table: string;
  fields: Map<string, FieldDef>;
  /** field names in declaration order */
  order: string[];
  required: Set<string>;
  readonly: Set<string>;
  hidden: Set<string>;
  passwords: Set<string>;
  enums: Map<string, Record<string, string>>;
  joins: Map<string, JoinDef>;
  vcols: Map<string, VcolDef>;
  subobj: Map<string, SubobjDef>;
  statusLog: StatusLogDef | null;
  acl: Partial<Record<Role, Acl>>;
  methods: Map<string, MethodDef>;
  maxPageSz: number;
  /** the date/datetime field the time buckets y q m w d wd h are computed from (`tmField=` overrides) */
  tmField: string | null;
}

export interface AuthDef {
  role: Role;
  session: Partial<Record<SessionVar, number>>;
  allowedAc: string[];
}

/** The built-in user actions `reg`, `genCode` and code logins (bqp.md §1.11). */
export interface LoginDef {
  /** `reg` creates users (open registration) */
  reg: boolean;
  /** `genCode(debug=1)` answers the code itself (development and tests only) */
  codeDebug: boolean;
  /** genCode POSTs {phone, code, type} here (your SMS gateway); null: codes are not sent anywhere */
  smsWebhook: string | null;
}

export interface Schema {
  objects: Map<string, ObjectDef>;
  auth: { basic: AuthDef | null; sign: AuthDef | null };
  login: LoginDef;
  apiLog: string | null;
  maxPageSz: number;
  source: string;
}

export class SchemaError extends Error {}

const NAME_RE = /^[\p{L}_][\p{L}\p{N}_]{0,62}$/u;
const OBJ_RE = /^[A-Z][A-Za-z0-9_]{0,62}$/;

/** Type of a field from its declaration, following JDCloud's upglib parseFieldDef (bqp.md §3.2). */
export function parseFieldDecl(decl: string): FieldDef {
  const s = decl.trim();
  const tag = /^([\p{L}\p{N}_]+)\((\w+)\)$/u.exec(s);
  if (s === 'id') return { name: 'id', type: 'id', len: 0 };
  if (tag) {
    const [, name, t] = tag;
    const byTag: Record<string, [FieldType, number]> = {
      s: ['text', 20],
      m: ['text', 50],
      l: ['text', 255],
      t: ['text', 0],
      tt: ['text', 0],
      n: ['dec', 0],
      i: ['int', 0],
      tm: ['datetime', 0],
      date: ['date', 0],
      flag: ['flag', 0],
    };
    if (/^\d+$/.test(t)) return check({ name, type: 'text', len: Math.min(Number(t), 65535) });
    const r = byTag[t];
    if (!r) throw new SchemaError(`unknown type tag (${t}) in field ${JSON.stringify(decl)}`);
    return check({ name, type: r[0], len: r[1] });
  }
  const suffix = /^([\p{L}\p{N}_]+)([&@#!])$/u.exec(s);
  if (suffix) {
    const t: FieldType = suffix[2] === '&' ? 'int' : suffix[2] === '@' ? 'dec' : 'real';
    return check({ name: suffix[1], type: t, len: 0 });
  }
  return check({ name: s, ...inferType(s) });
}

function check(f: FieldDef): FieldDef {
  if (!NAME_RE.test(f.name)) throw new SchemaError(`bad field name ${JSON.stringify(f.name)}`);
  return f;
}

function inferType(name: string): { type: FieldType; len: number } {
  let n = name.replace(/[^\p{L}]+$/u, '');
  n = n.charAt(0).toUpperCase() + n.slice(1);
  if (/(Price|Qty|Total|Amount)$/.test(n)) return { type: 'dec', len: 0 };
  if (/(Id|Cnt|编号)$/.test(n)) return { type: 'int', len: 0 };
  if (/(Tm|时间)$/.test(n)) return { type: 'datetime', len: 0 };
  if (/(Dt|日期)$/.test(n)) return { type: 'date', len: 0 };
  if (/^是否/.test(n) || /Flag$/.test(n)) return { type: 'flag', len: 0 };
  return { type: 'text', len: 50 };
}

const asList = (v: unknown, what: string): string[] => {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return v.split(/[,\s，]+/).filter(Boolean);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw new SchemaError(`${what} must be a list of names`);
};

const asObj = (v: unknown, what: string): Record<string, any> => {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new SchemaError(`${what} must be a mapping`);
  return v as Record<string, any>;
};

function parseAuth(v: unknown, what: string): AuthDef | null {
  if (v === undefined || v === null) return null;
  const o = asObj(v, what);
  const role = (o.role ?? 'employee') as Role;
  if (!ROLES.includes(role)) throw new SchemaError(`${what}.role must be one of ${ROLES.join(', ')}`);
  const session: AuthDef['session'] = {};
  for (const [k, x] of Object.entries(asObj(o.session, `${what}.session`))) {
    if (!SESSION_VARS.includes(k as SessionVar) || !Number.isInteger(x)) throw new SchemaError(`${what}.session.${k} must be an integer session variable`);
    session[k as SessionVar] = x;
  }
  return { role, session, allowedAc: asList(o.allowedAc ?? ['*'], `${what}.allowedAc`) };
}

function parseLogin(v: unknown): LoginDef {
  const o = asObj(v, 'login');
  const hook = o.smsWebhook ?? null;
  if (hook !== null && (typeof hook !== 'string' || !/^https?:\/\/\S+$/.test(hook))) throw new SchemaError('login.smsWebhook must be an http(s) URL');
  return { reg: !!o.reg, codeDebug: !!o.codeDebug, smsWebhook: hook };
}

export function parseSchema(raw: unknown, source = '(inline)'): Schema {
  const root = asObj(raw, 'schema');
  const maxPageSz = Number(root.maxPageSz ?? 1000);
  if (!Number.isInteger(maxPageSz) || maxPageSz < 1 || maxPageSz > 10000) throw new SchemaError('maxPageSz must be 1..10000');
  const objects = new Map<string, ObjectDef>();
  for (const [name, o] of Object.entries(asObj(root.objects, 'objects'))) {
    if (!OBJ_RE.test(name)) throw new SchemaError(`object name ${JSON.stringify(name)} must start with an upper-case letter`);
    objects.set(name, parseObject(name, asObj(o, name), maxPageSz));
  }
  const schema: Schema = {
    objects,
    auth: { basic: parseAuth(root.auth?.basic, 'auth.basic'), sign: parseAuth(root.auth?.sign, 'auth.sign') },
    apiLog: root.apiLog ?? null,
    maxPageSz,
    source,
    login: parseLogin(root.login),
  };
  // cross-object references
  for (const o of objects.values()) {
    for (const j of o.joins.values()) {
      const t = objects.get(j.obj);
      if (!t) throw new SchemaError(`${o.name}.joins.${j.alias}: no object ${j.obj}`);
      if (!o.fields.has(j.on)) throw new SchemaError(`${o.name}.joins.${j.alias}: no field ${j.on}`);
    }
    for (const v of o.vcols.values()) {
      const j = o.joins.get(v.join);
      if (!j) throw new SchemaError(`${o.name}.vcols.${v.name}: no join ${v.join}`);
      const f = objects.get(j.obj)!.fields.get(v.field);
      if (!f || objects.get(j.obj)!.hidden.has(v.field)) throw new SchemaError(`${o.name}.vcols.${v.name}: no visible field ${j.obj}.${v.field}`);
      v.def = { ...f, name: v.name };
    }
    for (const s of o.subobj.values()) {
      const t = objects.get(s.obj);
      if (!t) throw new SchemaError(`${o.name}.subobj.${s.name}: no object ${s.obj}`);
      if (!t.fields.has(s.fk)) throw new SchemaError(`${o.name}.subobj.${s.name}: ${s.obj} has no field ${s.fk}`);
    }
    if (o.statusLog) {
      const t = objects.get(o.statusLog.obj);
      if (!t) throw new SchemaError(`${o.name}.statusLog: no object ${o.statusLog.obj}`);
      for (const f of [o.statusLog.fk, o.statusLog.action, o.statusLog.tm, o.statusLog.emp]) if (f && !t.fields.has(f)) throw new SchemaError(`${o.name}.statusLog: ${t.name} has no field ${f}`);
    }
  }
  if (schema.apiLog) {
    const l = objects.get(schema.apiLog);
    if (!l) throw new SchemaError(`apiLog: no object ${schema.apiLog}`);
    for (const f of ['tm', 'addr', 'ac']) if (!l.fields.has(f)) throw new SchemaError(`apiLog object ${l.name} needs a field ${f}`);
  }
  return schema;
}

function parseObject(name: string, o: Record<string, any>, maxPageSz: number): ObjectDef {
  const fields = new Map<string, FieldDef>();
  const order: string[] = [];
  const decls = asList(o.fields, `${name}.fields`);
  if (!decls.includes('id')) decls.unshift('id');
  for (const d of decls) {
    let f: FieldDef;
    try {
      f = parseFieldDecl(d);
    } catch (e) {
      throw new SchemaError(`${name}: ${(e as Error).message}`);
    }
    if (fields.has(f.name)) throw new SchemaError(`${name}: field ${f.name} declared twice`);
    fields.set(f.name, f);
    order.push(f.name);
  }
  for (const [f, t] of Object.entries(asObj(o.types, `${name}.types`))) {
    if (!fields.has(f)) throw new SchemaError(`${name}.types: no field ${f}`);
    fields.set(f, parseFieldDecl(`${f}(${t})`));
  }
  const names = (k: string) => {
    const l = new Set(asList(o[k], `${name}.${k}`));
    for (const f of l) if (!fields.has(f)) throw new SchemaError(`${name}.${k}: no field ${f}`);
    return l;
  };
  const enums = new Map<string, Record<string, string>>();
  for (const [f, m] of Object.entries(asObj(o.enum, `${name}.enum`))) {
    if (!fields.has(f)) throw new SchemaError(`${name}.enum: no field ${f}`);
    enums.set(f, Object.fromEntries(Object.entries(asObj(m, `${name}.enum.${f}`)).map(([k, v]) => [k, String(v)])));
  }
  const joins = new Map<string, JoinDef>();
  for (const [alias, j] of Object.entries(asObj(o.joins, `${name}.joins`))) {
    if (!/^[a-z]\w{0,15}$/.test(alias) || alias === 't0') throw new SchemaError(`${name}.joins: bad alias ${alias}`);
    joins.set(alias, { alias, obj: String(j.obj), on: String(j.on) });
  }
  const vcols = new Map<string, VcolDef>();
  for (const [v, d] of Object.entries(asObj(o.vcols, `${name}.vcols`))) {
    if (!NAME_RE.test(v) || fields.has(v)) throw new SchemaError(`${name}.vcols: bad or duplicate name ${v}`);
    vcols.set(v, { name: v, join: String(d.join), field: String(d.field), def: { name: v, type: 'text', len: 0 }, default: !!d.default });
  }
  const subobj = new Map<string, SubobjDef>();
  for (const [s, d] of Object.entries(asObj(o.subobj, `${name}.subobj`))) {
    if (!NAME_RE.test(s) || fields.has(s) || vcols.has(s)) throw new SchemaError(`${name}.subobj: bad or duplicate name ${s}`);
    subobj.set(s, { name: s, obj: String(d.obj), fk: String(d.fk), res: d.res ? String(d.res) : null, orderby: String(d.orderby ?? 'id'), wantOne: !!d.wantOne, default: !!d.default });
  }
  let statusLog: StatusLogDef | null = null;
  if (o.statusLog) {
    const s = asObj(o.statusLog, `${name}.statusLog`);
    statusLog = { obj: String(s.obj), fk: String(s.fk), action: String(s.action ?? 'action'), tm: s.tm ? String(s.tm) : null, emp: s.emp ? String(s.emp) : null, field: String(s.field ?? 'status') };
    if (!fields.has(statusLog.field)) throw new SchemaError(`${name}.statusLog: no field ${statusLog.field}`);
  }
  const methods = new Map<string, MethodDef>();
  for (const [m, raw] of Object.entries(asObj(o.methods, `${name}.methods`))) {
    const at = `${name}.methods.${m}`;
    if (!/^[a-z]\w{0,62}$/.test(m) || (STD_OPS as readonly string[]).includes(m)) throw new SchemaError(`${at}: a method name starts lower-case and is not a standard operation`);
    const d = asObj(raw, at);
    const op = String(d.op ?? 'query');
    if (op !== 'query' && op !== 'get') throw new SchemaError(`${at}.op: query or get`);
    const params = asList(d.params, `${at}.params`);
    const where: MethodDef['where'] = [];
    for (const [f, v] of Object.entries(asObj(d.where, `${at}.where`))) {
      if (!fields.has(f)) throw new SchemaError(`${at}.where: no field ${f}`);
      if (!params.includes(String(v))) throw new SchemaError(`${at}.where.${f}: ${String(v)} is not one of the method's params`);
      where.push([f, String(v)]);
    }
    const set: Record<string, string> = {};
    for (const [k, v] of Object.entries(asObj(d.set, `${at}.set`))) {
      if (!(METHOD_SET as readonly string[]).includes(k)) throw new SchemaError(`${at}.set: ${k} cannot be fixed (${METHOD_SET.join(', ')})`);
      set[k] = String(v);
    }
    methods.set(m, { name: m, op, params, where, set });
  }
  const acl: ObjectDef['acl'] = {};
  for (const [role, a] of Object.entries(asObj(o.acl, `${name}.acl`))) {
    if (!ROLES.includes(role as Role)) throw new SchemaError(`${name}.acl: unknown role ${role}`);
    const ao = asObj(a, `${name}.acl.${role}`);
    const ops = ao.ops === '*' || ao.ops === undefined ? new Set<string>([...STD_OPS, ...methods.keys()]) : new Set(asList(ao.ops, `${name}.acl.${role}.ops`));
    for (const op of ops) if (!(STD_OPS as readonly string[]).includes(op) && !methods.has(op)) throw new SchemaError(`${name}.acl.${role}: unknown operation ${op}`);
    const filter: Acl['filter'] = [];
    for (const [f, v] of Object.entries(asObj(ao.filter, `${name}.acl.${role}.filter`))) {
      if (!fields.has(f)) throw new SchemaError(`${name}.acl.${role}.filter: no field ${f}`);
      if (!SESSION_VARS.includes(v)) throw new SchemaError(`${name}.acl.${role}.filter.${f}: must name a session variable (${SESSION_VARS.join(', ')})`);
      filter.push([f, v as SessionVar]);
    }
    const readonly = new Set(asList(ao.readonly, `${name}.acl.${role}.readonly`));
    const defaults = asObj(ao.defaults, `${name}.acl.${role}.defaults`);
    for (const f of [...readonly, ...Object.keys(defaults)]) if (!fields.has(f)) throw new SchemaError(`${name}.acl.${role}: no field ${f}`);
    acl[role as Role] = { ops, filter, readonly, defaults };
  }
  const passwords = names('password');
  // a password field holds a scrypt hash (about 100 characters), whatever length its name suggests
  for (const f of passwords) fields.set(f, { ...fields.get(f)!, type: 'text', len: 0 });
  const tmField = o.tmField === undefined || o.tmField === null ? null : String(o.tmField);
  if (tmField !== null && !['datetime', 'date'].includes(fields.get(tmField)?.type ?? '')) throw new SchemaError(`${name}.tmField: ${tmField} is not a date or datetime field`);
  const table = String(o.table ?? `bqp_${name}`);
  if (!NAME_RE.test(table)) throw new SchemaError(`${name}.table: bad table name ${JSON.stringify(table)}`);
  const mp = Number(o.maxPageSz ?? maxPageSz);
  return {
    name,
    table,
    fields,
    order,
    required: names('required'),
    readonly: names('readonly'),
    hidden: names('hidden'),
    passwords,
    enums,
    joins,
    vcols,
    subobj,
    statusLog,
    acl,
    methods,
    maxPageSz: Number.isInteger(mp) && mp > 0 ? Math.min(mp, 10000) : maxPageSz,
    tmField,
  };
}

export function loadSchemaFile(path: string): Schema {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new SchemaError(`cannot read BQP schema ${path}: ${(e as Error).message}`);
  }
  const raw = /\.json$/i.test(path) ? JSON.parse(text) : parseYaml(text);
  try {
    return parseSchema(raw, path);
  } catch (e) {
    throw new SchemaError(`${path}: ${(e as Error).message}`);
  }
}
