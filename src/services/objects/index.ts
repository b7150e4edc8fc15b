/**
 * The objects service: declared objects (schema file), their tables, queries and writes, login
 * sessions of the objects' own users, uploaded files and the call log. No HTTP in here: the BQP
 * dialect parses requests into these calls and words the results.
 */
import { sql, type Kysely } from 'kysely';
import type { Ctx } from '../../core/context.js';
import { guardPassword } from '../../core/credentials/attempts.js';
import { BatchBuffer, insertStatements } from '../../core/db/batching.js';
import { prepared } from '../../core/db/index.js';
import { randomToken, sha256hex, verifyPassword } from '../../core/crypto.js';
import { DomainError } from '../../core/errors.js';
import { login as developerLogin, logout as developerLogout } from '../../services/accounts/index.js';
import { addObj, batchAdd, batchOp, delIf, delObj, dupObj, isReserved, setIf, setObj, timeText, type Exec } from './crud.js';
import { findFile, type FileRow } from './files.js';
import { syncSchema } from './ddl.js';
import type { Node } from './expr.js';
import { aclFor, andAll, col, condTree, deny, fetchRows, filterSql, intParam, lit, qsearchTree, requireOp, runQuery, splitCols, type Caller, type QueryResult, type SubParams } from './query.js';
import { dropColumns, makeTree, pivot, rowsToObjects, sumRow } from './post.js';
import { loadSchemaFile, ROLES, STD_OPS, type FieldType, type MethodDef, type ObjectDef, type Role, type Schema } from './schema.js';
import './tables.js';

export type { Caller, QueryResult } from './query.js';
export type { Schema } from './schema.js';

export const SESSION_MS = 30 * 24 * 3600 * 1000;
export type AppType = 'user' | 'emp' | 'admin';

/** What a call carries besides its name, already split by the dialect. */
export interface ObjParams {
  /** a plain parameter, URL first then body ("" counts as absent) */
  param(name: string): string | undefined;
  /** the POST fields (add/set) */
  body: Record<string, unknown>;
  cond: Node | null;
  gcond: Node | null;
  /** res_<sub> parameters */
  subRes: Record<string, string>;
  /** param_<sub> parameters */
  subParams?: Record<string, SubParams>;
  /** rows for batchAdd */
  rows?: Record<string, unknown>[];
}

export interface ObjectDescription {
  name: string;
  fields: { name: string; type: FieldType; length: number; required: boolean; readonly: boolean; readonlyFor: Role[]; hidden: boolean; password: boolean; enum: Record<string, string> | null; attachment: boolean }[];
  virtualFields: { name: string; type: FieldType; object: string; field: string; default: boolean }[];
  subObjects: { name: string; object: string; foreignKey: string; default: boolean }[];
  operations: Partial<Record<Role, string[]>>;
  rowFilters: Partial<Record<Role, Record<string, string>>>;
  maxPageSize: number;
}

export type ObjResult = { kind: 'data'; data: unknown } | { kind: 'query'; result: QueryResult; fmt: string };

export interface SessionData {
  app: AppType;
  uid?: number;
  empId?: number;
  adminId?: number;
  perms?: string;
}

export function callerOf(s: SessionData | null): Caller {
  if (!s) return { role: 'guest', loggedIn: false, vars: {} };
  if (s.app === 'admin') return { role: 'admin', loggedIn: true, vars: { adminId: s.adminId } };
  if (s.app === 'emp') return { role: 'employee', loggedIn: true, vars: { empId: s.empId } };
  return { role: 'user', loggedIn: true, vars: { uid: s.uid } };
}

/** Fields that hold ids of uploaded files, by JDCloud's naming: `attId`, `picId`, `atts`, `pics`, `logoPicId`, `shopPics`… */
export function isAttachmentField(name: string, type: FieldType): boolean {
  if (type === 'int') return /^(att|pic)Id$|[a-z](Att|Pic)Id$/.test(name);
  if (type === 'text') return /^(att|pic)s$|[a-z](Att|Pic)s$/.test(name);
  return false;
}

/** What the call log records of each call, in column order (an ApiLog object may declare fewer). */
const LOG_FIELDS = ['tm', 'addr', 'ua', 'app', 'ses', 'userId', 'ac', 't', 'retval', 'req', 'res', 'reqsz', 'ressz', 'ver'] as const;

const sessionByHash = prepared<{ id: string }, { data: string; expires_at: number; app: string }>((db, p) => db.selectFrom('bqp_sessions').select(['data', 'expires_at', 'app']).where('id', '=', p.id));

/** A query's output format: `fmt`, or its legacy spelling `_fmt` ("" is the h/d table). */
export const queryFmt = (param: (name: string) => string | undefined): string => param('fmt') ?? param('_fmt') ?? '';

/** easyui's `sort=a,b&order=asc,desc` as an orderby (each item is then checked like any orderby). */
function sortOrder(sort: string | undefined, order: string | undefined): string | undefined {
  if (sort === undefined) return undefined;
  const dirs = (order ?? '').split(',');
  return sort
    .split(',')
    .map((f, i) => (dirs[i]?.trim() ? `${f.trim()} ${dirs[i].trim()}` : f.trim()))
    .join(',');
}

const SESSIONS_TOPIC = 'bqp-sessions';
const SESSION_CACHE_MS = 1000;

export class ObjectsService {
  /** The call log: one insert (one commit, on the database's batch writer) per 250 ms or 400 calls. */
  private readonly callLog = new BatchBuffer<unknown[]>({ flushMs: 250, flushAt: 400, max: Infinity, store: (batch) => this.storeLog(batch), warm: () => void this.ctx.db.batch([]) });

  /**
   * Session look-ups by token, kept in process for SESSION_CACHE_MS (unknown tokens too). Logout and
   * password changes clear it here and, through the bus, on every other server; a lost invalidation
   * is bounded by SESSION_CACHE_MS. Expiry is checked on every use.
   */
  private readonly sessions = new Map<string, { at: number; row: { data: SessionData; expires: number; app: string } | null }>();

  constructor(
    readonly ctx: Ctx,
    readonly schema: Schema,
  ) {
    ctx.bus.subscribe(SESSIONS_TOPIC, () => this.sessions.clear(), () => this.sessions.clear());
  }

  private dropSessions(): void {
    this.sessions.clear();
    this.ctx.bus.publish(SESSIONS_TOPIC, '*');
  }


  static load(ctx: Ctx): ObjectsService {
    return new ObjectsService(ctx, loadSchemaFile(ctx.config.bqpSchema));
  }

  async close(): Promise<void> {
    await this.flushLog();
  }

  sync(): Promise<string[]> {
    return syncSchema(this.ctx.db, this.schema);
  }

  exec(db: Kysely<any> = this.ctx.db.kysely as unknown as Kysely<any>): Exec {
    return { db, schema: this.schema, dialect: this.ctx.db.dialect, now: this.ctx.clock.now() };
  }

  /** Runs fn in one transaction (writes) or directly (reads). */
  async run<T>(write: boolean, fn: (x: Exec) => Promise<T>): Promise<T> {
    if (!write) return fn(this.exec());
    return this.ctx.db.tx((trx) => fn(this.exec(trx as unknown as Kysely<any>)));
  }

  /** Whether `Obj.op` only reads (get, query, a declared method): run outside a write transaction. */
  readsOnly(obj: string, op: string): boolean {
    return op === 'get' || op === 'query' || !!this.schema.objects.get(obj)?.methods.has(op);
  }

  object(name: string, caller: Caller): ObjectDef {
    const def = this.schema.objects.get(name);
    if (!def) deny(caller, name);
    return def!;
  }

  /**
   * One object call. `perm` is the operation the caller's role must be allowed: the call's own, or
   * the declared method's that runs this query or get (methodCall).
   */
  async objectCall(x: Exec, caller: Caller, objName: string, op: string, p: ObjParams, perm: string = op): Promise<ObjResult> {
    const def = this.object(objName, caller);
    const data = (d: unknown): ObjResult => ({ kind: 'data', data: d });
    const idParam = () => {
      const v = p.param('id');
      if (v === undefined) throw new DomainError('VALIDATION', '缺少参数`id`');
      return intParam(v, 'id');
    };
    const getOne = async (id: number, res: string | undefined, op: string = perm) => {
      const r = await runQuery(x.db, this.schema, x.dialect, def, caller, { op, res, cond: { k: 'cmp', op: '=', a: col('id'), b: lit(id) }, pagesz: 1, subRes: p.subRes, subParams: p.subParams, disableSubobjOptimize: p.param('disableSubobjOptimize') === '1', orderby: '' });
      if (!r.rows.length) throw new DomainError('VALIDATION', `not found \`${def.name}.id\`=\`${id}\``);
      return rowsToObjects(r)[0];
    };
    switch (op) {
      case 'get':
        return data(await getOne(idParam(), p.param('res')));
      case 'add': {
        const id = await addObj(x, def, caller, p.body, { uniKey: p.param('uniKey'), uniKeyMode: p.param('uniKeyMode') });
        if (p.param('res') && id > 0) return data(await getOne(id, p.param('res'), 'query').catch(() => getOne(id, p.param('res'))));
        return data(id);
      }
      case 'set':
        await setObj(x, def, caller, idParam(), p.body, p.param('submode') ?? 'patch');
        return data('OK');
      case 'del':
        await delObj(x, def, caller, idParam(), p.param('force') === '1');
        return data('OK');
      case 'setIf':
        return data(await setIf(x, def, caller, p.cond, p.body));
      case 'delIf':
        return data(await delIf(x, def, caller, p.cond));
      case 'batchAdd':
        return data(await batchAdd(x, def, caller, p.rows ?? [], { uniKey: p.param('uniKey'), uniKeyMode: p.param('uniKeyMode') }));
      case 'dup': {
        const v = p.param('id');
        if (v === undefined) throw new DomainError('VALIDATION', '缺少参数`id`');
        return data(await dupObj(x, def, caller, v.split(',').map((s) => intParam(s, 'id'))));
      }
      case 'batchSet':
      case 'batchDel':
        return data(await batchOp(x, def, caller, op, p.cond, p.body, p.param('submode') ?? 'patch'));
      case 'query': {
        // legacy spellings (bqp.md §1.5): _fmt, rows / _pagesz, _pagekey, easyui's sort + order
        const fmt = queryFmt(p.param);
        const num = (n: string) => {
          const v = p.param(n);
          return v === undefined ? null : intParam(v, n);
        };
        let pagesz = num('pagesz') ?? num('rows') ?? num('_pagesz');
        if (fmt === 'one' || fmt === 'one?') pagesz = 1;
        else if (pagesz === null && /^(array|hash|multihash|tree)/.test(fmt)) pagesz = -1;
        const qs = p.param('qsearch');
        const cond = andAll([p.cond, qs === undefined ? null : qsearchTree(qs)]);
        const tmField = p.param('tmField');
        let result = await runQuery(x.db, this.schema, x.dialect, def, caller, {
          op: perm,
          res: p.param('res'),
          gres: p.param('gres'),
          cond,
          gcond: p.gcond,
          orderby: p.param('orderby') ?? sortOrder(p.param('sort'), p.param('order')),
          pagesz: pagesz ?? undefined,
          pagekey: num('pagekey') ?? num('_pagekey'),
          page: num('page'),
          subRes: p.subRes,
          subParams: p.subParams,
          disableSubobjOptimize: p.param('disableSubobjOptimize') === '1',
          distinct: p.param('distinct') === '1',
          tmField,
        });
        result = await this.postProcess(x, def, caller, p, result, { cond, tmField, fmt });
        if (fmt === 'tree') return data(makeTree(rowsToObjects(result), p.param('treeFields')));
        return { kind: 'query', result, fmt };
      }
      default: {
        const m = def.methods.get(op);
        if (!m || perm !== op) throw new DomainError('VALIDATION', `bad ac: ${objName}.${op}`);
        return this.methodCall(x, caller, def, m, p);
      }
    }
  }

  /** A declared method: its op with the parameters it fixes and the conditions it takes from the call, under its own permission. */
  private methodCall(x: Exec, caller: Caller, def: ObjectDef, m: MethodDef, p: ObjParams): Promise<ObjResult> {
    requireOp(def, caller, m.name);
    for (const n of m.params) if (p.param(n) === undefined) throw new DomainError('VALIDATION', `缺少参数\`${n}\``);
    const where: Node[] = m.where.map(([field, n]) => ({ k: 'cmp', op: '=', a: col(field), b: lit(p.param(n)!) }));
    const fixed = m.set;
    const cond = andAll([p.cond, fixed.cond === undefined ? null : condTree(fixed.cond), ...where]);
    return this.objectCall(x, caller, def.name, m.op, { ...p, param: (n) => (n in fixed ? fixed[n] : p.param(n)), cond }, m.name);
  }

  // --- schema and rows, for the native API and the console -------------------------------------

  /** What a declared object looks like: fields with their rules, virtual fields, sub-tables, operations per role. */
  describe(def: ObjectDef): ObjectDescription {
    const ops: Partial<Record<Role, string[]>> = {};
    const filters: Partial<Record<Role, Record<string, string>>> = {};
    for (const role of ROLES) {
      const acl = aclFor(def, { role, loggedIn: role !== 'guest', vars: {} });
      ops[role] = acl ? [...STD_OPS, ...def.methods.keys()].filter((o) => acl.ops.has(o)) : [];
      if (acl?.filter.length) filters[role] = Object.fromEntries(acl.filter);
    }
    return {
      name: def.name,
      fields: def.order.map((n) => {
        const f = def.fields.get(n)!;
        const readonlyFor = ROLES.filter((r) => def.acl[r]?.readonly.has(n));
        return {
          name: n,
          type: f.type,
          length: f.len,
          required: def.required.has(n),
          readonly: def.readonly.has(n) || n === 'id',
          readonlyFor,
          hidden: def.hidden.has(n),
          password: def.passwords.has(n),
          enum: def.enums.get(n) ?? null,
          attachment: isAttachmentField(n, f.type),
        };
      }),
      virtualFields: [...def.vcols.values()].map((v) => ({ name: v.name, type: v.def.type, object: def.joins.get(v.join)!.obj, field: v.field, default: v.default })),
      subObjects: [...def.subobj.values()].map((x) => ({ name: x.name, object: x.obj, foreignKey: x.fk, default: x.default })),
      operations: ops,
      rowFilters: filters,
      maxPageSize: def.maxPageSz,
    };
  }

  /**
   * Reads rows of an object through the BQP query path (the caller's role rules, hidden fields,
   * `cond` compiled to parameterised SQL): `cursor` is the previous page's `next`; the first page
   * also counts the total.
   */
  async browse(caller: Caller, name: string, q: { cond?: string; orderby?: string; res?: string; limit?: number; cursor?: string }): Promise<{ cols: string[]; rows: Record<string, unknown>[]; next: string | null; total: number | null }> {
    if (!this.schema.objects.has(name)) throw new DomainError('NOT_FOUND', `no declared object ${name}`);
    if (q.cursor !== undefined && !/^[1-9]\d{0,14}$/.test(q.cursor)) throw new DomainError('VALIDATION', 'cursor is not one this list gave out', { field: 'cursor' });
    const params: Record<string, string | undefined> = { res: q.res || undefined, orderby: q.orderby || undefined, pagesz: String(q.limit ?? 50), pagekey: q.cursor ?? '0' };
    const r = await this.objectCall(this.exec(), caller, name, 'query', { param: (n) => params[n], body: {}, cond: condTree(q.cond || undefined), gcond: null, subRes: {} });
    if (r.kind !== 'query') throw new Error('query answered no rows');
    const { cols, rows, nextkey, total } = r.result;
    return { cols, rows: rows.map((row) => Object.fromEntries(cols.map((c, i) => [c, row[i]]))), next: nextkey === undefined ? null : String(nextkey), total: total ?? null };
  }

  /**
   * Writes one row as `Obj.set` does (the caller's role rules: readonly, required, enum, type, row
   * filter, status log) in one transaction, and answers the row as `browse` reads it.
   */
  async edit(caller: Caller, name: string, id: number, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const def = this.schema.objects.get(name);
    if (!def) throw new DomainError('NOT_FOUND', `no declared object ${name}`);
    const acl = requireOp(def, caller, 'set');
    const keys = Object.keys(body);
    if (!keys.length) throw new DomainError('VALIDATION', 'no field to set');
    for (const k of keys) {
      if (k === 'id') throw new DomainError('FORBIDDEN', `set readonly field ${def.name}.\`id\``, { field: k });
      if (isReserved(k) || def.subobj.has(k)) throw new DomainError('UNKNOWN_FIELD', `unknown field \`${k}\` of ${def.name}`, { field: k });
    }
    await this.run(true, async (x) => {
      const found = await sql`select ${sql.ref('id')} from ${sql.table(def.table)} where ${sql.join([sql`${sql.ref('id')} = ${id}`, ...filterSql(def, acl, caller, '')], sql` and `)}`.execute(x.db);
      if (!found.rows.length) throw new DomainError('NOT_FOUND', `no ${def.name} row ${id}`);
      await setObj(x, def, caller, id, body);
    });
    if (!aclFor(def, caller)?.ops.has('query')) return { id };
    return (await this.browse(caller, name, { cond: `id=${id}`, limit: 1 })).rows[0] ?? { id };
  }

  /**
   * An uploaded file that a row of object `name` refers to through one of its attachment fields
   * (`attId`, `picId`, `pics`…, see isAttachmentField); `thumb` gives its thumbnail. null: no such
   * file, or no row of this object refers to it (the caller's row filter applies).
   */
  async attachment(caller: Caller, name: string, id: number, thumb: boolean): Promise<{ row: FileRow; etag: string } | null> {
    const def = this.schema.objects.get(name);
    if (!def) throw new DomainError('NOT_FOUND', `no declared object ${name}`);
    const acl = requireOp(def, caller, 'query');
    const fields = def.order.filter((n) => isAttachmentField(n, def.fields.get(n)!.type) && !def.hidden.has(n));
    if (!fields.length) return null;
    const refs = fields.map((n) =>
      def.fields.get(n)!.type === 'int'
        ? sql`${sql.ref(n)} = ${id}`
        : sql`(',' || replace(${sql.ref(n)}, ' ', '') || ',') like ${`%,${id},%`}`,
    );
    const db = this.ctx.db.kysely as unknown as Kysely<any>;
    const hit = await sql`select ${sql.ref('id')} from ${sql.table(def.table)} where ${sql.join([sql`(${sql.join(refs, sql` or `)})`, ...filterSql(def, acl, caller, '')], sql` and `)} limit 1`.execute(db);
    if (!hit.rows.length) return null;
    return findFile(this.ctx, { id, thumb });
  }

  /** hiddenFields / gresHidden, pivot, statRes, sumFields — in the reference's order. */
  private async postProcess(x: Exec, def: ObjectDef, caller: Caller, p: ObjParams, r: QueryResult, o: { cond: import('./expr.js').Node | null; tmField?: string; fmt: string }): Promise<QueryResult> {
    const hide: string[] = [];
    const hf = p.param('hiddenFields');
    if (hf !== undefined && hf !== '0') hide.push(...hf.split(',').map((s) => s.trim()).filter(Boolean));
    const gres = p.param('gres');
    if (gres && p.param('gresHidden') === '1') hide.push(...r.cols.slice(0, splitCols(gres).length));
    if (hide.length) r = dropColumns(r, hide);
    const pv = p.param('pivot');
    if (pv) {
      const cnt = p.param('pivotCnt');
      r = pivot(r, pv, cnt === undefined ? 1 : intParam(cnt, 'pivotCnt'), p.param('pivotSumField'));
    }
    const statRes = p.param('statRes');
    if (statRes && (o.fmt === '' || o.fmt === 'list')) {
      const s = await runQuery(x.db, this.schema, x.dialect, def, caller, { res: statRes, cond: o.cond, pagesz: 1, aggOnly: true, tmField: o.tmField });
      r = { ...r, stat: Object.fromEntries(s.cols.map((c, i) => [c, s.rows[0]?.[i] ?? null])) };
    }
    const sf = p.param('sumFields');
    if (sf && !pv) r = sumRow(r, sf);
    return r;
  }

  // --- sessions --------------------------------------------------------------------------------

  async login(app: AppType, uname: string | undefined, pwd: string | undefined): Promise<{ token: string; expires: number; session: SessionData; info: Record<string, unknown> }> {
    if (!uname) throw new DomainError('VALIDATION', '缺少参数`uname`');
    if (!pwd) throw new DomainError('VALIDATION', '缺少参数`pwd`');
    let session: SessionData;
    let info: Record<string, unknown> = {};
    if (app === 'admin') {
      try {
        const r = await developerLogin(this.ctx, uname, pwd);
        await developerLogout(this.ctx, r.token);
        if (r.developer.role !== 'admin') throw new DomainError('SECRET_INVALID', 'not an administrator');
        session = { app, adminId: r.developer.id };
        info = { id: r.developer.id, uname: r.developer.username };
      } catch (e) {
        if (e instanceof DomainError && e.code !== 'VALIDATION' && e.code !== 'RATE_LIMITED') throw new DomainError('SECRET_INVALID', '用户名或密码错误');
        throw e;
      }
    } else {
      const def = this.schema.objects.get(app === 'emp' ? 'Employee' : 'User');
      if (!def) throw new DomainError('VALIDATION', `no ${app === 'emp' ? 'Employee' : 'User'} object declared`);
      const byPhone = /^\d/.test(uname) && def.fields.has('phone');
      // failures count towards the account's lock-out (core/credentials/attempts)
      const row = await guardPassword(this.ctx, `bqp:${app}`, uname, ['SECRET_INVALID'], async () => {
        const found = (await sql<{ id: number; pwd: string | null; perms?: string }>`select ${sql.ref('id')}, ${sql.ref('pwd')}${def.fields.has('perms') ? sql`, ${sql.ref('perms')}` : sql``} from ${sql.table(def.table)} where ${sql.ref(byPhone ? 'phone' : 'uname')} = ${uname} limit 1`.execute(this.ctx.db.kysely)).rows[0];
        const ok = found?.pwd ? await verifyPassword(pwd, found.pwd) : false;
        if (!found || !ok) throw new DomainError('SECRET_INVALID', '手机号或密码错误');
        return found;
      });
      const id = Number(row.id);
      session = app === 'emp' ? { app, empId: id, perms: row.perms ?? 'emp' } : { app, uid: id };
      const r = await runQuery(this.ctx.db.kysely as unknown as Kysely<any>, this.schema, this.ctx.db.dialect, def, { role: 'admin', loggedIn: true, vars: {} }, { op: 'get', res: '*', cond: { k: 'cmp', op: '=', a: { k: 'col', name: 'id', quoted: false }, b: { k: 'lit', v: id, quoted: false } }, pagesz: 1 });
      info = Object.fromEntries(r.cols.map((c, i) => [c, r.rows[0]?.[i]]));
    }
    const token = await this.openSession(session);
    return { token, expires: SESSION_MS / 1000, session, info };
  }

  /** A new login session; returns its token (the `{app}id` cookie). */
  async openSession(session: SessionData, db: Kysely<any> = this.ctx.db.kysely as unknown as Kysely<any>): Promise<string> {
    const token = randomToken(24);
    const now = this.ctx.clock.now();
    await db
      .insertInto('bqp_sessions')
      .values({ id: sha256hex(token), app: session.app, data: JSON.stringify(session), created_at: now, expires_at: now + SESSION_MS })
      .execute();
    return token;
  }

  /** Ends every session of one user / employee (after a password change). */
  async closeSessionsOf(app: AppType, id: number, db: Kysely<any> = this.ctx.db.kysely as unknown as Kysely<any>): Promise<void> {
    // session data is written by openSession with a fixed key order: {"app":…,"uid":N} / {"app":…,"empId":N,…}
    const data = app === 'emp' ? sql`${sql.ref('data')} like ${`{"app":"emp","empId":${id},%`}` : sql`${sql.ref('data')} = ${JSON.stringify({ app, uid: id })}`;
    await sql`delete from ${sql.table('bqp_sessions')} where ${sql.ref('app')} = ${app} and ${data}`.execute(db);
    this.dropSessions();
  }

  async session(app: AppType, token: string | undefined): Promise<SessionData | null> {
    if (!token || token.length > 100) return null;
    const now = this.ctx.clock.now();
    let hit = this.sessions.get(token);
    if (!hit || now - hit.at >= SESSION_CACHE_MS) {
      const [r] = await sessionByHash(this.ctx.db.kysely, { id: sha256hex(token) });
      hit = { at: now, row: r ? { data: Object.freeze(JSON.parse(r.data) as SessionData), expires: Number(r.expires_at), app: r.app } : null };
      if (this.sessions.size >= 10_000) this.sessions.clear();
      this.sessions.set(token, hit);
    }
    const r = hit.row;
    return !r || r.app !== app || r.expires <= now ? null : r.data;
  }

  async logout(token: string | undefined): Promise<void> {
    if (!token) return;
    await this.ctx.db.kysely.deleteFrom('bqp_sessions').where('id', '=', sha256hex(token)).execute();
    this.dropSessions();
  }

  /** The logged-in user's / employee's record, as `Obj.get` shows it. */
  async whoami(s: SessionData | null, caller: Caller): Promise<Record<string, unknown>> {
    if (!s) throw new DomainError('NOT_LOGGED_IN', '未登录');
    if (s.app === 'admin') return { id: s.adminId };
    const def = this.schema.objects.get(s.app === 'emp' ? 'Employee' : 'User');
    const id = s.app === 'emp' ? s.empId : s.uid;
    if (!def || id === undefined || id < 0) return { id };
    void caller;
    const r = await runQuery(this.ctx.db.kysely as unknown as Kysely<any>, this.schema, this.ctx.db.dialect, def, { role: 'admin', loggedIn: true, vars: {} }, { op: 'get', res: '*', cond: { k: 'cmp', op: '=', a: { k: 'col', name: 'id', quoted: false }, b: { k: 'lit', v: id, quoted: false } }, pagesz: 1 });
    if (!r.rows.length) return { id };
    return Object.fromEntries(r.cols.map((c, i) => [c, r.rows[0][i]]));
  }

  // --- call log --------------------------------------------------------------------------------

  /** Queues one call for the ApiLog object; written in batches off the request path. */
  logCall(e: { tm: number; addr: string; ua?: string; app: string; ses?: string; userId?: number | null; ac: string; t: number; retval: number; req: string; res: string; reqsz: number; ressz: number; ver?: string }): void {
    const name = this.schema.apiLog;
    if (!name) return;
    const cut = (s: string | undefined, n: number) => (s === undefined ? null : s.length > n ? s.slice(0, n) : s);
    const all: Record<(typeof LOG_FIELDS)[number], unknown> = {
      tm: timeText(e.tm),
      addr: cut(e.addr, 50),
      ua: cut(e.ua, 255),
      app: cut(e.app, 50),
      ses: cut(e.ses, 50),
      userId: e.userId ?? null,
      ac: cut(e.ac, 50),
      t: e.t,
      retval: e.retval,
      req: cut(e.req, 2000),
      res: cut(e.res, 2000),
      reqsz: e.reqsz,
      ressz: e.ressz,
      ver: cut(e.ver, 50),
    };
    const values = this.logTable().cols.map((k) => all[k]);
    this.callLog.push(values);
  }

  private logTab: { cols: (typeof LOG_FIELDS)[number][]; head: string } | null = null;
  /** The call log's columns (the fields the ApiLog object declares) and its insert head, built once. */
  private logTable(): NonNullable<ObjectsService['logTab']> {
    if (this.logTab) return this.logTab;
    const def = this.schema.objects.get(this.schema.apiLog!)!;
    const cols = LOG_FIELDS.filter((k) => def.fields.has(k));
    const q = (id: string) => `"${id.replace(/"/g, '""')}"`;
    return (this.logTab = { cols, head: `insert into ${q(def.table)} (${cols.map(q).join(',')})` });
  }

  /** Writes what the call log has buffered; resolves when it is stored (or reported lost). */
  flushLog(): Promise<void> {
    return this.callLog.flush();
  }

  private async storeLog(batch: unknown[][]): Promise<void> {
    const t = this.logTable();
    try {
      // one relaxed transaction on the database's batch writer (SQLite: its own thread, off the event loop)
      await this.ctx.db.batch(insertStatements(this.ctx.db.dialect, t.head, t.cols.length, batch.flat()), { relaxed: true });
    } catch (err) {
      this.ctx.log.warn({ err: String(err) }, 'bqp call log write failed');
    }
  }
}
