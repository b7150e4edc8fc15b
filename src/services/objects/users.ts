/**
 * The built-in user actions of JDCloud's login plugin (bqp.md §1.11): `reg` (open registration),
 * `genCode` (a verification code for a phone, sent through the configured SMS webhook) and `chpwd`
 * (change the password with the old one or a code; reset it while logged out with phone + code).
 * Codes are stored hashed, live 5 minutes, are single-use and die after 5 wrong guesses; one code
 * per phone per minute. A password change ends the user's other sessions.
 */
import { randomInt } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { guardPassword } from '../../core/credentials/attempts.js';
import { hashPassword, safeEqual, sha256hex, verifyPassword } from '../../core/crypto.js';
import { DomainError } from '../../core/errors.js';
import { addObj, timeText } from './crud.js';
import type { AppType, ObjectsService, SessionData } from './index.js';
import { runQuery, type Caller } from './query.js';
import type { ObjectDef } from './schema.js';

const CODE_TTL_MS = 5 * 60_000;
const CODE_INTERVAL_MS = 60_000;
const CODE_TRIES = 5;
/** `chpwd(oldpwd=_none)` is allowed this long after registration */
const FRESH_MS = 3600_000;
const SYSTEM: Caller = { role: 'admin', loggedIn: true, vars: {} };

const fail = (code: ConstructorParameters<typeof DomainError>[0], msg: string): never => {
  throw new DomainError(code, msg);
};

function accountDef(svc: ObjectsService, app: AppType): ObjectDef {
  if (app === 'admin') fail('FORBIDDEN', '管理员帐号请在控制台管理');
  const def = svc.schema.objects.get(app === 'emp' ? 'Employee' : 'User');
  if (!def) fail('VALIDATION', `no ${app === 'emp' ? 'Employee' : 'User'} object declared`);
  if (!def!.passwords.has('pwd')) fail('VALIDATION', `${def!.name}.pwd is not declared as a password field`);
  return def!;
}

function checkPassword(pwd: string | undefined): string {
  if (!pwd) fail('VALIDATION', '缺少参数`pwd`');
  if (pwd!.length < 4 || pwd!.length > 200) fail('VALIDATION', '密码长度须为4到200个字符');
  return pwd!;
}

const PHONE = /^\d{11}$/;

// --- codes -----------------------------------------------------------------------------------------

export async function genCode(svc: ObjectsService, app: AppType, phone: string | undefined, type = 'd6', debug = false): Promise<{ code: string } | null> {
  if (!phone) fail('VALIDATION', '缺少参数`phone`');
  if (!PHONE.test(phone!)) fail('VALIDATION', '手机号须为11位数字');
  if (type !== 'd6' && type !== 'w4') fail('VALIDATION', 'type must be d6 or w4');
  const cfg = svc.schema.login;
  const answer = debug && cfg.codeDebug;
  if (!cfg.smsWebhook && !answer) fail('UNAVAILABLE', '短信通道未配置');
  const db = svc.ctx.db.kysely;
  const now = svc.ctx.clock.now();
  const id = sha256hex(`${app}:${phone}`);
  const old = await db.selectFrom('bqp_codes').select(['created_at']).where('id', '=', id).executeTakeFirst();
  if (old && Number(old.created_at) > now - CODE_INTERVAL_MS && !answer) fail('RATE_LIMITED', '发送太频繁，请一分钟后再试');
  const code = type === 'd6' ? String(randomInt(0, 1_000_000)).padStart(6, '0') : Array.from({ length: 4 }, () => 'ABCDEFGHJKLMNPQRSTUVWXYZ'[randomInt(0, 24)]).join('');
  await db.deleteFrom('bqp_codes').where('id', '=', id).execute();
  await db.insertInto('bqp_codes').values({ id, code_hash: sha256hex(code.toUpperCase()), created_at: now, expires_at: now + CODE_TTL_MS, tries: 0 }).execute();
  if (cfg.smsWebhook) {
    try {
      const r = await fetch(cfg.smsWebhook, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ phone, code, type, app }), signal: AbortSignal.timeout(5000) });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
    } catch (e) {
      await db.deleteFrom('bqp_codes').where('id', '=', id).execute();
      svc.ctx.log.warn({ err: String(e) }, 'bqp genCode: the SMS webhook failed');
      fail('UNAVAILABLE', '短信发送失败，请稍后再试');
    }
  }
  return answer ? { code } : null;
}

/** Checks and uses up a code; wrong codes count against it. */
export async function useCode(svc: ObjectsService, app: AppType, phone: string, code: string): Promise<void> {
  const db = svc.ctx.db.kysely;
  const id = sha256hex(`${app}:${phone}`);
  const row = await db.selectFrom('bqp_codes').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || Number(row.expires_at) <= svc.ctx.clock.now() || Number(row.tries) >= CODE_TRIES) fail('SECRET_INVALID', '验证码错误或已过期');
  if (!safeEqual(row!.code_hash, sha256hex(code.trim().toUpperCase()))) {
    await db.updateTable('bqp_codes').set({ tries: Number(row!.tries) + 1 }).where('id', '=', id).execute();
    fail('SECRET_INVALID', '验证码错误或已过期');
  }
  await db.deleteFrom('bqp_codes').where('id', '=', id).execute();
}

// --- reg / chpwd ----------------------------------------------------------------------------------------

async function info(svc: ObjectsService, def: ObjectDef, id: number): Promise<Record<string, unknown>> {
  const cond = { k: 'cmp', op: '=', a: { k: 'col', name: 'id', quoted: false }, b: { k: 'lit', v: id, quoted: false } } as const;
  const r = await runQuery(svc.ctx.db.kysely as unknown as Kysely<any>, svc.schema, svc.ctx.db.dialect, def, SYSTEM, { op: 'get', res: '*', cond, pagesz: 1 });
  return Object.fromEntries(r.cols.map((c, i) => [c, r.rows[0]?.[i]]));
}

export interface LoginResult {
  token: string;
  expires: number;
  session: SessionData;
  info: Record<string, unknown>;
}

/** Creates a User (uname and/or phone, pwd, name) and logs it in. */
export async function register(svc: ObjectsService, app: AppType, p: { uname?: string; phone?: string; pwd?: string; name?: string }, opts: { codeOk?: boolean } = {}): Promise<LoginResult> {
  if (app !== 'user') fail('FORBIDDEN', '只有用户可以注册');
  if (!svc.schema.login.reg) fail('FORBIDDEN', '未开放注册');
  const def = accountDef(svc, app);
  let { uname, phone } = p;
  if (uname && !phone && /^\d/.test(uname) && def.fields.has('phone')) [uname, phone] = [undefined, uname];
  if (!uname && !phone) fail('VALIDATION', '缺少参数`uname`');
  if (phone && !PHONE.test(phone)) fail('VALIDATION', '手机号须为11位数字');
  if (uname && !/^[\p{L}_][\p{L}\p{N}_.@-]{1,49}$/u.test(uname)) fail('VALIDATION', '用户名须以字母开头');
  const pwd = opts.codeOk ? undefined : checkPassword(p.pwd);
  const values: Record<string, unknown> = {};
  if (uname) values.uname = uname;
  if (phone) values.phone = phone;
  if (pwd) values.pwd = pwd;
  if (p.name && def.fields.has('name')) values.name = p.name;
  if (def.fields.get('createTm')?.type === 'datetime') values.createTm = timeText(svc.ctx.clock.now());
  for (const k of Object.keys(values)) if (!def.fields.has(k)) fail('VALIDATION', `${def.name} has no field ${k}`);
  const id = await svc.run(true, async (x) => {
    // PostgreSQL (read committed): two registrations of one name or phone at once would both find no
    // duplicate, so each takes a lock on what it claims first (sorted: no deadlock); SQLite
    // serialises write transactions already
    if (x.dialect === 'postgres') {
      for (const k of [uname ? `u:${uname}` : '', phone ? `p:${phone}` : ''].filter(Boolean).sort()) {
        await sql`select pg_advisory_xact_lock(hashtext(${`bqp-reg:${def.table}:${k}`}))`.execute(x.db);
      }
    }
    const keys = [uname ? sql`${sql.ref('uname')} = ${uname}` : null, phone ? sql`${sql.ref('phone')} = ${phone}` : null].filter((c) => c !== null);
    const dup = (await sql`select ${sql.ref('id')} from ${sql.table(def.table)} where ${sql.join(keys, sql` or `)} limit 1`.execute(x.db)).rows[0];
    if (dup) fail('USER_EXISTS', '用户已存在');
    return addObj(x, def, SYSTEM, values);
  });
  const session: SessionData = { app: 'user', uid: id };
  return { token: await svc.openSession(session), expires: 30 * 24 * 3600, session, info: { ...(await info(svc, def, id)), _isNew: 1 } };
}

/** `login(uname, code)`: a phone and a code from genCode; an unknown phone registers (when reg is open). */
export async function loginByCode(svc: ObjectsService, app: AppType, phone: string, code: string): Promise<LoginResult> {
  const def = accountDef(svc, app);
  if (!PHONE.test(phone)) fail('VALIDATION', '手机号须为11位数字');
  await useCode(svc, app, phone, code);
  const row = (await sql<{ id: number; perms?: string }>`select ${sql.ref('id')}${def.fields.has('perms') ? sql`, ${sql.ref('perms')}` : sql``} from ${sql.table(def.table)} where ${sql.ref('phone')} = ${phone} limit 1`.execute(svc.ctx.db.kysely)).rows[0];
  if (!row) {
    if (app !== 'user' || !svc.schema.login.reg) fail('SECRET_INVALID', '手机号或密码错误');
    return register(svc, app, { phone }, { codeOk: true });
  }
  const id = Number(row.id);
  const session: SessionData = app === 'emp' ? { app, empId: id, perms: row.perms ?? 'emp' } : { app: 'user', uid: id };
  return { token: await svc.openSession(session), expires: 30 * 24 * 3600, session, info: await info(svc, def, id) };
}

/**
 * chpwd(oldpwd|code, pwd) for the logged-in user or employee; chpwd(phone, code|oldpwd, pwd) without
 * a session resets a forgotten password. `oldpwd=_none` only within an hour of registration. Ends the
 * account's other sessions and opens a new one.
 */
export async function chpwd(svc: ObjectsService, app: AppType, session: SessionData | null, p: { oldpwd?: string; code?: string; pwd?: string; phone?: string }): Promise<{ token: string; expires: number; session: SessionData }> {
  const def = accountDef(svc, app);
  const pwd = checkPassword(p.pwd);
  if (!p.oldpwd && !p.code) fail('VALIDATION', '缺少参数`oldpwd`');
  const db = svc.ctx.db.kysely;
  const cols = sql.join([sql.ref('id'), sql.ref('pwd'), ...(def.fields.has('phone') ? [sql.ref('phone')] : []), ...(def.fields.has('createTm') ? [sql.ref('createTm')] : []), ...(def.fields.has('perms') ? [sql.ref('perms')] : [])]);
  let row: Record<string, unknown> | undefined;
  const myId = session ? (app === 'emp' ? session.empId : session.uid) : undefined;
  if (myId !== undefined && myId >= 0) row = (await sql<Record<string, unknown>>`select ${cols} from ${sql.table(def.table)} where ${sql.ref('id')} = ${myId}`.execute(db)).rows[0];
  else if (p.phone) {
    if (!def.fields.has('phone') || !PHONE.test(p.phone)) fail('VALIDATION', '手机号须为11位数字');
    row = (await sql<Record<string, unknown>>`select ${cols} from ${sql.table(def.table)} where ${sql.ref('phone')} = ${p.phone} limit 1`.execute(db)).rows[0];
    if (!row && p.code) await useCode(svc, app, p.phone, p.code); // a wrong code still counts
    if (!row) fail('SECRET_INVALID', '手机号或验证码错误');
  } else fail('NOT_LOGGED_IN', '未登录');
  if (!row) fail('NOT_LOGGED_IN', '未登录');
  const id = Number(row!.id);
  if (p.code) {
    const phone = typeof row!.phone === 'string' ? row!.phone : '';
    if (!phone) fail('VALIDATION', '该帐号没有手机号');
    await useCode(svc, app, phone, p.code);
  } else if (p.oldpwd === '_none') {
    const created = typeof row!.createTm === 'string' ? row!.createTm : '';
    if (!session || app !== 'user' || !created || created < timeText(svc.ctx.clock.now() - FRESH_MS)) fail('SECRET_INVALID', '旧密码错误');
  } else {
    const stored = typeof row!.pwd === 'string' ? row!.pwd : '';
    await guardPassword(svc.ctx, `bqp:${app}:chpwd`, String(id), ['SECRET_INVALID'], async () => {
      if (!stored || !(await verifyPassword(p.oldpwd!, stored))) fail('SECRET_INVALID', '旧密码错误');
    });
  }
  const hash = await hashPassword(pwd);
  const fresh: SessionData = app === 'emp' ? { app, empId: id, perms: typeof row!.perms === 'string' ? row!.perms : 'emp' } : { app: 'user', uid: id };
  const token = await svc.run(true, async (x) => {
    await sql`update ${sql.table(def.table)} set ${sql.ref('pwd')} = ${hash} where ${sql.ref('id')} = ${id}`.execute(x.db);
    await svc.closeSessionsOf(app, id, x.db);
    return svc.openSession(fresh, x.db);
  });
  return { token, expires: 30 * 24 * 3600, session: fresh };
}
