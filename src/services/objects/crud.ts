/**
 * Writes on declared objects: add / set / del / setIf / delIf / batchAdd, with sub-table writes,
 * readonly / required / enum / type checks, role defaults and row filters. Every function takes the
 * executor it must use, so a caller can run one call or a whole batch in one transaction.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { hashPassword } from '../../core/crypto.js';
import { DomainError } from '../../core/errors.js';
import { Compiler, decToInt, normDate, type Node } from './expr.js';
import { aclFor, filterSql, intParam, ObjScope, requireOp, runQuery, scopeFor, type Caller, type Dialect } from './query.js';
import { FLAG_RE, PROP_RE, type Acl, type FieldDef, type ObjectDef, type Schema } from './schema.js';

export interface Exec {
  db: Kysely<any>;
  schema: Schema;
  dialect: Dialect;
  /** epoch ms of the call */
  now: number;
}

const bad = (msg: string, field?: string): never => {
  throw new DomainError('VALIDATION', msg, { field });
};

/** Parameters that travel with a call but are not fields. */
export const isReserved = (k: string): boolean => k.startsWith('_') || k === 'timestamp' || k === 'partnerId';

export function timeText(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** The reference escapes < and > in every value it stores (docs/bqp.md); so do we. */
const escapeHtml = (s: string): string => s.replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A request value → the stored value of field f. undefined = leave the field out. */
export function inValue(def: ObjectDef, f: FieldDef, raw: unknown, mode: 'add' | 'set'): unknown {
  if (raw === undefined) return undefined;
  if (raw === null || raw === '' || raw === 'null') return mode === 'add' ? undefined : null;
  let v: unknown = raw === 'empty' ? '' : raw;
  const name = `${def.name}.${f.name}`;
  switch (f.type) {
    case 'id':
      return bad(`\`${name}\` cannot be written`, f.name);
    case 'int':
    case 'flag': {
      if (v === '' ) return null;
      if (typeof v === 'boolean') v = v ? 1 : 0;
      const s = String(v).trim();
      if (!/^-?\d{1,15}$/.test(s)) bad(`\`${name}\` must be an integer`, f.name);
      v = Number(s);
      break;
    }
    case 'dec': {
      if (v === '') return null;
      if (typeof v !== 'string' && typeof v !== 'number') bad(`\`${name}\` must be a number`, f.name);
      const n = decToInt(v as string | number, 2);
      if (n === null) bad(`\`${name}\` must be a number`, f.name);
      v = n;
      break;
    }
    case 'real': {
      if (v === '') return null;
      const n = Number(v);
      if (typeof v === 'object' || !Number.isFinite(n)) bad(`\`${name}\` must be a number`, f.name);
      v = n;
      break;
    }
    case 'datetime':
    case 'date': {
      if (v === '') return null;
      const s = normDate(String(v), f.type);
      if (!(f.type === 'date' ? /^\d{4}-\d\d-\d\d$/ : /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/).test(s)) bad(`\`${name}\` must be a ${f.type === 'date' ? 'date' : 'date and time'}`, f.name);
      v = s;
      break;
    }
    case 'text': {
      const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
      v = escapeHtml(s);
      if (f.len > 0 && [...(v as string)].length > f.len) bad(`\`${name}\` is longer than ${f.len} characters`, f.name);
      break;
    }
  }
  const e = def.enums.get(f.name);
  if (e && v !== null && !(String(v) in e)) bad(`\`${name}\` must be one of ${Object.keys(e).join(', ')}`, f.name);
  return v;
}

function resolveDefault(v: string | number, caller: Caller, now: number): unknown {
  if (typeof v !== 'string' || !v.startsWith('$')) return v;
  if (v === '$now') return timeText(now);
  const k = v.slice(1) as keyof Caller['vars'];
  return caller.vars[k] ?? null;
}

interface Parsed {
  values: Record<string, unknown>;
  subs: [string, unknown][];
  given: number;
  /** flag_x / prop_x fields: letters or words to add (true) or remove (false) */
  bits: { flags: Map<string, boolean>; props: Map<string, boolean> };
}

function checkBits(def: ObjectDef, f: 'flags' | 'props', v: string | null): string | null {
  const len = def.fields.get(f)!.len;
  if (v !== null && len > 0 && v.length > len) bad(`\`${f}\` would be longer than ${len} characters`, f);
  return v;
}

/** A flags (letters) or props (words) value with bits set and cleared; null when nothing is left. */
export function applyBits(field: 'flags' | 'props', old: unknown, bits: Map<string, boolean>): string | null {
  const cur = typeof old === 'string' ? old : '';
  const items = field === 'flags' ? [...cur].filter((c) => c.trim()) : cur.split(/\s+/).filter(Boolean);
  for (const [b, on] of bits) {
    const at = items.indexOf(b);
    if (on && at < 0) items.push(b);
    if (!on) while (items.includes(b)) items.splice(items.indexOf(b), 1);
  }
  return items.length ? items.join(field === 'flags' ? '' : ' ') : null;
}

async function parseFields(x: Exec, def: ObjectDef, acl: Acl, body: Record<string, unknown>, mode: 'add' | 'set', allow: Set<string> = new Set()): Promise<Parsed> {
  const values: Record<string, unknown> = {};
  const subs: [string, unknown][] = [];
  const bits: Parsed['bits'] = { flags: new Map(), props: new Map() };
  let given = 0;
  for (const [k0, raw] of Object.entries(body)) {
    if (isReserved(k0) || k0 === 'id') continue;
    if (def.subobj.has(k0)) {
      subs.push([k0, raw]);
      continue;
    }
    const fm = def.fields.has(k0) ? null : FLAG_RE.exec(k0);
    const pm = def.fields.has(k0) || fm ? null : PROP_RE.exec(k0);
    const bit = fm ? (['flags', fm[1]] as const) : pm ? (['props', pm[1]] as const) : null;
    if (bit && def.fields.has(bit[0])) {
      if ((def.readonly.has(bit[0]) || acl.readonly.has(bit[0])) && !allow.has(bit[0])) throw new DomainError('FORBIDDEN', `set readonly field ${def.name}.\`${bit[0]}\``, { field: k0 });
      const v = raw === undefined || raw === null ? '' : String(raw).trim();
      if (v === '') continue;
      if (v !== '0' && v !== '1') bad(`\`${k0}\` must be 0 or 1`, k0);
      bits[bit[0]].set(bit[1], v === '1');
      given++;
      continue;
    }
    const f = def.fields.get(k0);
    if (!f) throw new DomainError('UNKNOWN_FIELD', `unknown field \`${k0}\` of ${def.name}`, { field: k0 });
    if ((def.readonly.has(k0) || acl.readonly.has(k0)) && !allow.has(k0)) {
      if (raw === undefined || (mode === 'add' && (raw === '' || raw === null))) continue;
      throw new DomainError('FORBIDDEN', `set readonly field ${def.name}.\`${k0}\``, { field: k0 });
    }
    const v = inValue(def, f, raw, mode);
    if (v === undefined) continue;
    given++;
    if (mode === 'set' && v === null && def.required.has(k0)) bad(`\`${def.name}.${k0}\` is required`, k0);
    if (def.passwords.has(k0) && typeof v === 'string' && v.length > 200) bad(`\`${def.name}.${k0}\` is longer than 200 characters`, k0);
    values[k0] = def.passwords.has(k0) && typeof v === 'string' && v !== '' ? await hashPassword(v) : v;
  }
  // on add the bits apply to the value given (or none); set applies them to the stored value
  if (mode === 'add') for (const f of ['flags', 'props'] as const) if (bits[f].size) values[f] = checkBits(def, f, applyBits(f, values[f], bits[f]));
  return { values, subs, given, bits };
}

export interface AddOptions {
  uniKey?: string;
  uniKeyMode?: string;
  /** internal: fields the caller may set although readonly (sub-table foreign keys) */
  allow?: Set<string>;
}

export async function addObj(x: Exec, def: ObjectDef, caller: Caller, body: Record<string, unknown>, opts: AddOptions = {}): Promise<number> {
  const acl = requireOp(def, caller, 'add');
  const p = await parseFields(x, def, acl, body, 'add', opts.allow);
  if (p.given === 0 && p.subs.length === 0) bad('no field found to be added');
  for (const [k, v] of Object.entries(acl.defaults)) {
    if (p.values[k] === undefined || def.readonly.has(k) || acl.readonly.has(k)) p.values[k] = resolveDefault(v, caller, x.now);
  }
  for (const r of def.required) if (p.values[r] === undefined || p.values[r] === null || p.values[r] === '') bad(`缺少参数 \`${r}\``);

  if (opts.uniKey) {
    let keys = opts.uniKey;
    const updateOnly = keys.endsWith('!');
    if (updateOnly) keys = keys.slice(0, -1);
    const names = keys.split(',').map((s) => s.trim()).filter(Boolean);
    if (!names.length || names.length > 10) bad('bad uniKey');
    const mode = opts.uniKeyMode || 'set';
    if (!['set', 'error', 'ignore'].includes(mode)) bad('uniKeyMode must be set, error or ignore');
    const conds: RawBuilder<unknown>[] = filterSql(def, acl, caller, '');
    for (const n of names) {
      if (!def.fields.has(n)) throw new DomainError('UNKNOWN_FIELD', `unknown field \`${n}\` in uniKey`);
      const v = p.values[n];
      conds.push(v === undefined || v === null ? sql`${sql.ref(n)} is null` : sql`${sql.ref(n)} = ${v}`);
    }
    const found = (await sql<{ id: number }>`select ${sql.ref('id')} from ${sql.table(def.table)} where ${sql.join(conds, sql` and `)} limit 1`.execute(x.db)).rows[0];
    if (found) {
      const id = Number(found.id);
      if (mode === 'error') bad('已存在重复记录');
      if (mode === 'set') await setObj(x, def, caller, id, body);
      return id;
    }
    if (updateOnly) {
      if (mode === 'ignore') return -1;
      bad('没有找到要更新的记录');
    }
  }

  const row = await x.db.insertInto(def.table).values(p.values).returning('id').executeTakeFirstOrThrow();
  const id = Number((row as { id: number }).id);
  for (const [name, items] of p.subs) await writeSub(x, def, caller, name, id, items, 'patch');
  if (def.statusLog && p.values[def.statusLog.field] != null) await writeStatusLog(x, def, caller, id, p.values[def.statusLog.field]);
  return id;
}

async function writeStatusLog(x: Exec, def: ObjectDef, caller: Caller, id: number, value: unknown): Promise<void> {
  const s = def.statusLog!;
  const child = x.schema.objects.get(s.obj)!;
  const vals: Record<string, unknown> = { [s.fk]: id, [s.action]: value };
  if (s.tm) vals[s.tm] = timeText(x.now);
  if (s.emp) vals[s.emp] = caller.vars.empId ?? null;
  await x.db.insertInto(child.table).values(vals).execute();
}

export async function setObj(x: Exec, def: ObjectDef, caller: Caller, id: number, body: Record<string, unknown>, submode = 'patch'): Promise<void> {
  const acl = requireOp(def, caller, 'set');
  const p = await parseFields(x, def, acl, body, 'set');
  const filter = filterSql(def, acl, caller, '');
  const sl = def.statusLog && def.statusLog.field in p.values ? def.statusLog : null;
  let old: unknown = undefined;
  const bitFields = (['flags', 'props'] as const).filter((f) => p.bits[f].size);
  if (bitFields.length) {
    // read-modify-write inside the call's transaction
    const r = (await sql<Record<string, unknown>>`select ${sql.join(bitFields.map((f) => sql.ref(f)))} from ${sql.table(def.table)} where ${sql.join([sql`${sql.ref('id')} = ${id}`, ...filter], sql` and `)}`.execute(x.db)).rows[0];
    if (!r) bad('操作对象不存在或无权限修改');
    for (const f of bitFields) p.values[f] = checkBits(def, f, applyBits(f, f in p.values ? p.values[f] : r![f], p.bits[f]));
  }
  if (filter.length || sl || p.subs.length) {
    const r = (await sql<Record<string, unknown>>`select ${sql.ref('id')}${sl ? sql`, ${sql.ref(sl.field)} as ${sql.id('s')}` : sql``} from ${sql.table(def.table)} where ${sql.join([sql`${sql.ref('id')} = ${id}`, ...filter], sql` and `)}`.execute(x.db)).rows[0];
    if (!r) {
      if (filter.length || p.subs.length) bad('操作对象不存在或无权限修改');
    } else old = r.s;
  }
  if (Object.keys(p.values).length) {
    let q = x.db.updateTable(def.table).set(p.values).where('id', '=', id);
    for (const f of filter) q = q.where(f as RawBuilder<boolean>);
    await q.execute();
  }
  for (const [name, items] of p.subs) await writeSub(x, def, caller, name, id, items, submode);
  if (sl && old !== undefined && p.values[sl.field] != null && p.values[sl.field] !== old) await writeStatusLog(x, def, caller, id, p.values[sl.field]);
}

async function writeSub(x: Exec, def: ObjectDef, caller: Caller, name: string, parentId: number, items: unknown, submode: string): Promise<void> {
  const s = def.subobj.get(name)!;
  const child = x.schema.objects.get(s.obj)!;
  let list = items;
  if (typeof list === 'string') {
    try {
      list = JSON.parse(list);
    } catch {
      bad(`\`${name}\` must be a JSON array`);
    }
  }
  if (!Array.isArray(list)) bad(`\`${name}\` must be an array`);
  const arr = list as unknown[];
  if (arr.length > 1000) bad(`too many \`${name}\` items`);
  const keep: number[] = [];
  for (const it of arr) {
    if (!it || typeof it !== 'object' || Array.isArray(it)) bad(`\`${name}\` items must be objects`);
    const o = it as Record<string, unknown>;
    const { id: rawId, _delete, ...rest } = o;
    if (rawId !== undefined && rawId !== null && rawId !== '') {
      const cid = intParam(rawId, `${name}.id`);
      const acl = requireOp(child, caller, _delete ? 'del' : 'set');
      const conds = [sql`${sql.ref('id')} = ${cid}`, sql`${sql.ref(s.fk)} = ${parentId}`, ...filterSql(child, acl, caller, '')];
      if (_delete) {
        await sql`delete from ${sql.table(child.table)} where ${sql.join(conds, sql` and `)}`.execute(x.db);
      } else {
        keep.push(cid);
        const p = await parseFields(x, child, acl, rest, 'set');
        delete p.values[s.fk];
        if (Object.keys(p.values).length) {
          let q = x.db.updateTable(child.table).set(p.values);
          for (const c of conds) q = q.where(c as RawBuilder<boolean>);
          await q.execute();
        }
      }
    } else {
      keep.push(await addObj(x, child, caller, { ...rest, [s.fk]: parentId }, { allow: new Set([s.fk]) }));
    }
  }
  if (submode === 'put') {
    const acl = requireOp(child, caller, 'del');
    const conds = [sql`${sql.ref(s.fk)} = ${parentId}`, ...filterSql(child, acl, caller, '')];
    if (keep.length) conds.push(sql`${sql.ref('id')} not in (${sql.join(keep)})`);
    await sql`delete from ${sql.table(child.table)} where ${sql.join(conds, sql` and `)}`.execute(x.db);
  }
}

export async function delObj(x: Exec, def: ObjectDef, caller: Caller, id: number, force: boolean): Promise<void> {
  const acl = requireOp(def, caller, 'del');
  const conds = [sql`${sql.ref('id')} = ${id}`, ...filterSql(def, acl, caller, '')];
  const r = await sql`delete from ${sql.table(def.table)} where ${sql.join(conds, sql` and `)}`.execute(x.db);
  if (!Number(r.numAffectedRows ?? 0) && !force) bad(`not found \`${def.name}.id\`=\`${id}\``);
}

/** `where id in (select t0.id … where <filter> and <cond>)`: cond may use virtual fields (joins). */
function condIds(x: Exec, def: ObjectDef, acl: Acl, caller: Caller, cond: Node): RawBuilder<unknown> {
  const scope = new ObjScope(x.schema, def, x.dialect);
  const where = [...filterSql(def, acl, caller), new Compiler(scopeFor(scope, new Map(), false, 'cond')).bool(cond).sql];
  return sql`${sql.ref('id')} in (select ${sql.ref('t0.id')} from ${sql.table(def.table)} as ${sql.id('t0')} ${scope.joinSql()} where ${sql.join(where, sql` and `)})`;
}

export async function setIf(x: Exec, def: ObjectDef, caller: Caller, cond: Node | null, body: Record<string, unknown>): Promise<number> {
  const acl = requireOp(def, caller, 'setIf');
  if (!cond) bad('setIf requires condition');
  const p = await parseFields(x, def, acl, body, 'set');
  if (p.subs.length) bad('setIf cannot write sub-tables');
  if (!Object.keys(p.values).length) bad('no field to set');
  const r = await x.db
    .updateTable(def.table)
    .set(p.values)
    .where(condIds(x, def, acl, caller, cond!) as RawBuilder<boolean>)
    .executeTakeFirst();
  return Number(r.numUpdatedRows ?? 0);
}

export async function delIf(x: Exec, def: ObjectDef, caller: Caller, cond: Node | null): Promise<number> {
  const acl = requireOp(def, caller, 'delIf');
  if (!cond) bad('delIf requires condition');
  const r = await sql`delete from ${sql.table(def.table)} where ${condIds(x, def, acl, caller, cond!)}`.execute(x.db);
  return Number(r.numAffectedRows ?? 0);
}

/** `title` = `name,-,addr` ("-" skips a column); rows TAB- or comma-separated, first line the header if no title. */
export function parseTable(text: string, title?: string): Record<string, string>[] {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/).filter((l) => l.trim() !== '');
  if (!lines.length) bad('no data to add');
  const sep = lines[0].includes('\t') ? '\t' : ',';
  const head = (title ?? lines.shift()!).split(title ? ',' : sep).map((s) => s.trim());
  if (lines.length > 10000) bad('more than 10000 rows');
  return lines.map((l) => {
    const cells = l.split(sep);
    const o: Record<string, string> = {};
    head.forEach((h, i) => {
      if (h && h !== '-') o[h] = (cells[i] ?? '').trim();
    });
    return o;
  });
}

export async function batchAdd(x: Exec, def: ObjectDef, caller: Caller, rows: Record<string, unknown>[], opts: AddOptions): Promise<{ cnt: number; idList: number[] }> {
  requireOp(def, caller, 'batchAdd');
  if (!aclFor(def, caller)?.ops.has('add')) requireOp(def, caller, 'add');
  const idList: number[] = [];
  for (const r of rows) idList.push(await addObj(x, def, caller, r, opts));
  return { cnt: idList.length, idList };
}

/** A copy of one stored row: readonly fields take the role's defaults, passwords are not copied. */
async function copyRow(x: Exec, def: ObjectDef, acl: Acl, caller: Caller, src: Record<string, unknown>, fk: [string, number] | null): Promise<{ id: number; values: Record<string, unknown> }> {
  const values: Record<string, unknown> = {};
  for (const name of def.order) {
    if (name === 'id' || def.passwords.has(name)) continue;
    const readonly = def.readonly.has(name) || acl.readonly.has(name);
    values[name] = readonly && name in acl.defaults ? resolveDefault(acl.defaults[name], caller, x.now) : (src[name] ?? null);
  }
  if (fk) values[fk[0]] = fk[1];
  if (!Object.keys(values).length) bad(`${def.name} has no field to copy`);
  const row = await x.db.insertInto(def.table).values(values).returning('id').executeTakeFirstOrThrow();
  return { id: Number((row as { id: number }).id), values };
}

/**
 * `Obj.dup(id=100[,101…])`: copies each row the caller can see, and the rows of its list sub-tables
 * (not `wantOne` ones, not the status log: the copy gets its own first log entry). All or nothing:
 * an id the caller cannot see, or a sub-table the caller may not add to, fails the whole call.
 */
export async function dupObj(x: Exec, def: ObjectDef, caller: Caller, ids: number[]): Promise<number[]> {
  const acl = requireOp(def, caller, 'dup');
  if (!ids.length || ids.length > 100) bad('dup needs 1 to 100 ids');
  const subs = [...def.subobj.values()].filter((s) => !s.wantOne && !(def.statusLog && def.statusLog.obj === s.obj && def.statusLog.fk === s.fk));
  const subAcls = subs.map((s) => {
    const child = x.schema.objects.get(s.obj)!;
    return { s, child, acl: requireOp(child, caller, 'add') };
  });
  const out: number[] = [];
  for (const id of ids) {
    const src = (await sql<Record<string, unknown>>`select * from ${sql.table(def.table)} where ${sql.join([sql`${sql.ref('id')} = ${id}`, ...filterSql(def, acl, caller, '')], sql` and `)}`.execute(x.db)).rows[0];
    if (!src) bad(`not found \`${def.name}.id\`=\`${id}\``);
    const copy = await copyRow(x, def, acl, caller, src, null);
    for (const { s, child, acl: cacl } of subAcls) {
      const rows = (await sql<Record<string, unknown>>`select * from ${sql.table(child.table)} where ${sql.join([sql`${sql.ref(s.fk)} = ${id}`, ...filterSql(child, cacl, caller, '')], sql` and `)} order by ${sql.ref('id')}`.execute(x.db)).rows;
      if (rows.length > 1000) bad(`\`${s.name}\` has more than 1000 rows to copy`);
      for (const r of rows) await copyRow(x, child, cacl, caller, r, [s.fk, copy.id]);
    }
    if (def.statusLog && copy.values[def.statusLog.field] != null) await writeStatusLog(x, def, caller, copy.id, copy.values[def.statusLog.field]);
    out.push(copy.id);
  }
  return out;
}

export const BATCH_OP_MAX = 10000;

/**
 * `batchSet` / `batchDel`: the ids the caller's role filter and `cond` select, then one `set` / `del`
 * per row, so per-row rules run (readonly, required, enums, status log). All or nothing: the first
 * failing row fails the call (the caller's transaction rolls back) with its id in the message.
 */
export async function batchOp(x: Exec, def: ObjectDef, caller: Caller, op: 'batchSet' | 'batchDel', cond: Node | null, body: Record<string, unknown>, submode = 'patch'): Promise<number> {
  const acl = requireOp(def, caller, op);
  requireOp(def, caller, op === 'batchSet' ? 'set' : 'del');
  if (!cond) bad(`${op} requires condition`);
  if (op === 'batchSet' && !Object.keys(body).some((k) => !isReserved(k) && k !== 'id')) bad('no field to set');
  const scope = new ObjScope(x.schema, def, x.dialect);
  const where = [...filterSql(def, acl, caller), new Compiler(scopeFor(scope, new Map(), false, 'cond')).bool(cond!).sql];
  const ids = (await sql<{ id: number }>`select ${sql.ref('t0.id')} as ${sql.id('id')} from ${sql.table(def.table)} as ${sql.id('t0')} ${scope.joinSql()} where ${sql.join(where, sql` and `)} order by ${sql.ref('t0.id')} limit ${BATCH_OP_MAX + 1}`.execute(x.db)).rows.map((r) => Number(r.id));
  if (ids.length > BATCH_OP_MAX) bad(`${op} works on at most ${BATCH_OP_MAX} rows; narrow cond or use ${op === 'batchSet' ? 'setIf' : 'delIf'}`);
  for (const id of ids) {
    try {
      if (op === 'batchSet') await setObj(x, def, caller, id, body, submode);
      else await delObj(x, def, caller, id, false);
    } catch (e) {
      if (e instanceof DomainError) {
        const um = typeof e.details?.userMessage === 'string' ? e.details.userMessage : e.message;
        throw new DomainError(e.code, `batch failed at id=${id}: ${e.message}`, { details: { userMessage: `批量处理失败, id=${id}: ${um}` }, cause: e });
      }
      throw e;
    }
  }
  return ids.length;
}
