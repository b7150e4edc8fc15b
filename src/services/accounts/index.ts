import { createHash } from 'node:crypto';
import type { Ctx } from '../../core/context.js';
import { guardPassword } from '../../core/credentials/attempts.js';
import { hashPassword, randomToken, verifyPassword } from '../../core/crypto.js';
import { prepared } from '../../core/db/index.js';
import type { Developer, Session, Tenant } from '../../core/db/schema.js';
import { DomainError } from '../../core/errors.js';

export const PLATFORM_TENANT = 1;
export const BUILTIN_ROLES = [
  { name: 'admin', des: '管理员' },
  { name: 'normal', des: '标准用户' },
  { name: 'blocked', des: '封禁用户' },
] as const;
const SESSION_MS = 7 * 24 * 3600 * 1000;

/** Creates the platform tenant and the built-in roles if they are missing. Idempotent. */
export async function bootstrap(ctx: Ctx): Promise<void> {
  const db = ctx.db.kysely;
  const t = ctx.clock.now();
  if (!(await db.selectFrom('tenants').select('id').where('id', '=', PLATFORM_TENANT).executeTakeFirst())) {
    await db.insertInto('tenants').values({ name: 'platform', created_at: t }).execute();
  }
  for (const r of BUILTIN_ROLES) {
    await db.insertInto('roles').values(r).onConflict((oc) => oc.column('name').doNothing()).execute();
  }
}

// ---------------------------------------------------------------------------------------------
// Tenants

export async function createTenant(ctx: Ctx, name: string): Promise<Tenant> {
  const n = name?.trim();
  if (!n || n.length > 200) throw new DomainError('VALIDATION', 'tenant name is required (at most 200 characters)', { field: 'name' });
  return ctx.db.kysely.insertInto('tenants').values({ name: n, created_at: ctx.clock.now() }).returningAll().executeTakeFirstOrThrow();
}

export const listTenants = (ctx: Ctx): Promise<Tenant[]> => ctx.db.kysely.selectFrom('tenants').selectAll().orderBy('id').execute();
const tenantById = prepared<{ id: number }, Tenant>((db, p) => db.selectFrom('tenants').selectAll().where('id', '=', p.id));
export const getTenant = async (ctx: Ctx, id: number): Promise<Tenant | undefined> => (await tenantById(ctx.db.kysely, { id }))[0];

// ---------------------------------------------------------------------------------------------
// Roles

export const listRoles = (ctx: Ctx) => ctx.db.kysely.selectFrom('roles').selectAll().orderBy('id').execute();

export async function roleByName(ctx: Ctx, name: string) {
  const r = await ctx.db.kysely.selectFrom('roles').selectAll().where('name', '=', name).executeTakeFirst();
  if (!r) throw new DomainError('NOT_FOUND', `no role ${name}`);
  return r;
}

function checkName(v: unknown, field: string, max = 100): string {
  if (typeof v !== 'string' || !v.trim()) throw new DomainError('VALIDATION', `${field} is required`, { field });
  if (v.length > max) throw new DomainError('VALIDATION', `${field} is longer than ${max} characters`, { field });
  return v.trim();
}

export async function addRole(ctx: Ctx, name: string, des = ''): Promise<number> {
  const n = checkName(name, 'name');
  const exists = await ctx.db.kysely.selectFrom('roles').select('id').where('name', '=', n).executeTakeFirst();
  if (exists) throw new DomainError('CONFLICT', `role ${n} exists`, { field: 'name' });
  const r = await ctx.db.kysely.insertInto('roles').values({ name: n, des: des ?? '' }).returning('id').executeTakeFirstOrThrow();
  return Number(r.id);
}

export async function editRole(ctx: Ctx, id: number, name: string, des = ''): Promise<void> {
  const n = checkName(name, 'name');
  const cur = await ctx.db.kysely.selectFrom('roles').selectAll().where('id', '=', id).executeTakeFirst();
  if (!cur) throw new DomainError('NOT_FOUND', `no role ${id}`);
  if (BUILTIN_ROLES.some((b) => b.name === cur.name) && n !== cur.name) throw new DomainError('FORBIDDEN', `built-in role ${cur.name} cannot be renamed`);
  await ctx.db.kysely.updateTable('roles').set({ name: n, des: des ?? '' }).where('id', '=', id).execute();
}

export async function removeRole(ctx: Ctx, id: number): Promise<number> {
  const cur = await ctx.db.kysely.selectFrom('roles').selectAll().where('id', '=', id).executeTakeFirst();
  if (!cur) return 0;
  if (BUILTIN_ROLES.some((b) => b.name === cur.name)) throw new DomainError('FORBIDDEN', `built-in role ${cur.name} cannot be removed`);
  const used = await ctx.db.kysely.selectFrom('developers').select('id').where('role_id', '=', id).executeTakeFirst();
  if (used) throw new DomainError('HAS_DEPENDENTS', 'developers still have this role');
  return Number((await ctx.db.kysely.deleteFrom('roles').where('id', '=', id).executeTakeFirst()).numDeletedRows);
}

// ---------------------------------------------------------------------------------------------
// Developers and sessions

export interface DeveloperView {
  id: number;
  tenantId: number;
  username: string;
  email: string | null;
  telephone: string | null;
  role: string;
}

async function view(ctx: Ctx, d: Developer): Promise<DeveloperView> {
  const role = await ctx.db.kysely.selectFrom('roles').select('name').where('id', '=', d.role_id).executeTakeFirst();
  return { id: Number(d.id), tenantId: Number(d.tenant_id), username: d.username, email: d.email, telephone: d.telephone, role: role?.name ?? 'normal' };
}

export interface RegisterInput {
  username: string;
  password: string;
  email?: string | null;
  telephone?: string | null;
  role?: string;
  /** Joins an existing tenant; otherwise the developer gets a tenant of their own. */
  tenantId?: number;
}

export async function registerDeveloper(ctx: Ctx, input: RegisterInput): Promise<DeveloperView> {
  const username = checkName(input.username, 'username', 64);
  if (typeof input.password !== 'string' || input.password.length < 4 || input.password.length > 200) {
    throw new DomainError('VALIDATION', 'password must be 4 to 200 characters', { field: 'password' });
  }
  const email = input.email ? String(input.email).trim() : null;
  if (email && !/^[^\s@]+@[^\s@]+$/.test(email)) throw new DomainError('VALIDATION', 'email is not an address', { field: 'email' });
  const role = await roleByName(ctx, input.role ?? 'normal');
  const hash = await hashPassword(input.password);
  const t = ctx.clock.now();
  const row = await ctx.db.tx(async (trx) => {
    if (await trx.selectFrom('developers').select('id').where('username', '=', username).executeTakeFirst()) {
      throw new DomainError('USER_EXISTS', `developer ${username} exists`, { field: 'username' });
    }
    if (email && (await trx.selectFrom('developers').select('id').where('email', '=', email).executeTakeFirst())) {
      throw new DomainError('EMAIL_EXISTS', 'that email is registered', { field: 'email' });
    }
    let tenantId = input.tenantId;
    if (tenantId === undefined) {
      tenantId = Number((await trx.insertInto('tenants').values({ name: username, created_at: t }).returning('id').executeTakeFirstOrThrow()).id);
    } else if (!(await trx.selectFrom('tenants').select('id').where('id', '=', tenantId).executeTakeFirst())) {
      throw new DomainError('NOT_FOUND', `no tenant ${tenantId}`, { field: 'tenant_id' });
    }
    return trx
      .insertInto('developers')
      .values({ tenant_id: tenantId, username, email, telephone: input.telephone ?? null, password_hash: hash, role_id: role.id, created_at: t, updated_at: t })
      .returningAll()
      .executeTakeFirstOrThrow();
  });
  return view(ctx, row);
}

async function byUsername(ctx: Ctx, username: string): Promise<Developer> {
  const d = await ctx.db.kysely.selectFrom('developers').selectAll().where('username', '=', String(username ?? '')).executeTakeFirst();
  if (!d) throw new DomainError('USER_UNKNOWN', 'no such developer');
  return d;
}

const developerById = prepared<{ id: number }, Developer>((db, p) => db.selectFrom('developers').selectAll().where('id', '=', p.id));
const sessionById = prepared<{ id: string }, Session>((db, p) => db.selectFrom('sessions').selectAll().where('id', '=', p.id));

export async function getDeveloper(ctx: Ctx, id: number): Promise<DeveloperView | null> {
  const [d] = await developerById(ctx.db.kysely, { id });
  return d ? view(ctx, d) : null;
}

export async function listDevelopers(ctx: Ctx, tenantId?: number): Promise<DeveloperView[]> {
  let q = ctx.db.kysely.selectFrom('developers').selectAll().orderBy('id');
  if (tenantId !== undefined) q = q.where('tenant_id', '=', tenantId);
  return Promise.all((await q.execute()).map((d) => view(ctx, d)));
}

export async function setDeveloperRole(ctx: Ctx, id: number, role: string): Promise<DeveloperView> {
  const r = await roleByName(ctx, role);
  const d = await ctx.db.kysely.updateTable('developers').set({ role_id: r.id, updated_at: ctx.clock.now() }).where('id', '=', id).returningAll().executeTakeFirst();
  if (!d) throw new DomainError('NOT_FOUND', `no developer ${id}`);
  return view(ctx, d);
}

/** The developer, when the password is right; failures count towards the account's lock-out (core/credentials/attempts). */
async function checkPassword(ctx: Ctx, username: string, password: string): Promise<Developer> {
  return guardPassword(ctx, 'dev', String(username ?? ''), ['PASSWORD_INVALID', 'USER_UNKNOWN'], async () => {
    const d = await byUsername(ctx, username);
    if (!(await verifyPassword(String(password ?? ''), d.password_hash))) throw new DomainError('PASSWORD_INVALID', 'wrong password');
    return d;
  });
}

const tokenId = (token: string): string => createHash('sha256').update(token).digest('hex');

/** Logs in; returns a session token (usable as cookie or bearer). A blocked developer cannot log in. */
export async function login(ctx: Ctx, username: string, password: string): Promise<{ token: string; developer: DeveloperView; expiresAt: number }> {
  const d = await checkPassword(ctx, username, password);
  const v = await view(ctx, d);
  if (v.role === 'blocked') throw new DomainError('USER_BLOCKED', 'this developer is blocked');
  const token = randomToken(32);
  const t = ctx.clock.now();
  await ctx.db.kysely.insertInto('sessions').values({ id: tokenId(token), developer_id: d.id, created_at: t, expires_at: t + SESSION_MS }).execute();
  return { token, developer: v, expiresAt: t + SESSION_MS };
}

/** The developer behind a session token, or null when it is unknown or expired. */
export async function sessionDeveloper(ctx: Ctx, token: string | undefined): Promise<DeveloperView | null> {
  if (!token || token.length > 200) return null;
  const [s] = await sessionById(ctx.db.kysely, { id: tokenId(token) });
  if (!s || s.expires_at <= ctx.clock.now()) return null;
  return getDeveloper(ctx, Number(s.developer_id));
}

export async function logout(ctx: Ctx, token: string): Promise<void> {
  await ctx.db.kysely.deleteFrom('sessions').where('id', '=', tokenId(token)).execute();
}

export async function changePassword(ctx: Ctx, username: string, password: string, newPassword: string): Promise<void> {
  const d = await checkPassword(ctx, username, password);
  if (typeof newPassword !== 'string' || newPassword.length < 4 || newPassword.length > 200) {
    throw new DomainError('VALIDATION', 'new_password must be 4 to 200 characters', { field: 'new_password' });
  }
  const hash = await hashPassword(newPassword);
  await ctx.db.tx(async (trx) => {
    await trx.updateTable('developers').set({ password_hash: hash, updated_at: ctx.clock.now() }).where('id', '=', d.id).execute();
    await trx.deleteFrom('sessions').where('developer_id', '=', d.id).execute(); // other sessions end
  });
}

// ---------------------------------------------------------------------------------------------
// App types: a tree of unlimited depth

export interface AppTypeNode {
  id: number;
  name: string;
  des: string;
  parent_id: number | null;
  children?: AppTypeNode[];
}

export async function addAppType(ctx: Ctx, input: { name: string; des?: string; parentId?: number | null }): Promise<number> {
  const name = checkName(input.name, 'name');
  if (input.parentId != null && !(await ctx.db.kysely.selectFrom('app_types').select('id').where('id', '=', input.parentId).executeTakeFirst())) {
    throw new DomainError('NOT_FOUND', `no parent type ${input.parentId}`, { field: 'parent_id' });
  }
  const r = await ctx.db.kysely.insertInto('app_types').values({ name, des: input.des ?? '', parent_id: input.parentId ?? null }).returning('id').executeTakeFirstOrThrow();
  return Number(r.id);
}

export async function appTypeTree(ctx: Ctx): Promise<AppTypeNode[]> {
  const rows = await ctx.db.kysely.selectFrom('app_types').selectAll().orderBy('id').execute();
  const nodes = new Map<number, AppTypeNode>(rows.map((r) => [Number(r.id), { id: Number(r.id), name: r.name, des: r.des, parent_id: r.parent_id === null ? null : Number(r.parent_id) }]));
  const roots: AppTypeNode[] = [];
  for (const n of nodes.values()) {
    const p = n.parent_id === null ? undefined : nodes.get(n.parent_id);
    if (p) (p.children ??= []).push(n);
    else roots.push(n);
  }
  return roots;
}

export async function editAppType(ctx: Ctx, id: number, input: { name: string; des?: string; parentId?: number | null }): Promise<void> {
  const name = checkName(input.name, 'name');
  const rows = await ctx.db.kysely.selectFrom('app_types').select(['id', 'parent_id']).execute();
  const parent = new Map(rows.map((r) => [Number(r.id), r.parent_id === null ? null : Number(r.parent_id)]));
  if (!parent.has(id)) throw new DomainError('NOT_FOUND', `no app type ${id}`);
  const p = input.parentId ?? null;
  if (p !== null) {
    if (!parent.has(p)) throw new DomainError('NOT_FOUND', `no parent type ${p}`, { field: 'parent_id' });
    // refuse cycles: walk up from the new parent; meeting id means id would become its own ancestor
    for (let cur: number | null = p; cur !== null; cur = parent.get(cur) ?? null) {
      if (cur === id) throw new DomainError('VALIDATION', 'a type cannot be moved under itself or its descendants', { field: 'parent_id' });
    }
  }
  await ctx.db.kysely.updateTable('app_types').set({ name, des: input.des ?? '', parent_id: p }).where('id', '=', id).execute();
}

export async function removeAppType(ctx: Ctx, id: number): Promise<number> {
  const db = ctx.db.kysely;
  if (await db.selectFrom('app_types').select('id').where('parent_id', '=', id).executeTakeFirst()) {
    throw new DomainError('HAS_DEPENDENTS', 'this type has child types; remove or move them first');
  }
  if (await db.selectFrom('apps').select('id').where('type_id', '=', id).executeTakeFirst()) {
    throw new DomainError('HAS_DEPENDENTS', 'apps still have this type; change them first');
  }
  return Number((await db.deleteFrom('app_types').where('id', '=', id).executeTakeFirst()).numDeletedRows);
}
