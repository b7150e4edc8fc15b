import { BlockList, isIP } from 'node:net';
import { sql, type Kysely } from 'kysely';
import { prepared, type DB } from '../db/index.js';
import type { Ctx } from '../context.js';
import { randomHex } from '../crypto.js';
import type { AppRow } from '../db/schema.js';
import { DomainError } from '../errors.js';

/** Services an app can be enabled for. `*` enables all. */
export const SERVICES = ['native', 'mininglamp', 'fangtang', 'cli', 'ulord', 'bqp', 'bqp-sign'] as const;
export type Service = (typeof SERVICES)[number];

/** An app as the platform uses it: secrets decrypted, lists parsed. Never serialise it whole. */
export interface App {
  id: number;
  tenantId: number;
  developerId: number | null;
  typeId: number | null;
  name: string;
  description: string | null;
  key: string;
  secret: string;
  /** The rotated-out secret while its grace period lasts. */
  previous: { secret: string; until: number } | null;
  expiresAt: number | null;
  blocked: boolean;
  ipAllow: string[];
  services: string[];
  rateLimit: number | null;
  createdAt: number;
  updatedAt: number;
  allow: BlockList | null;
}

/** What may be shown of an app (no secrets). */
export function publicApp(a: App) {
  return {
    id: a.id,
    tenant_id: a.tenantId,
    developer_id: a.developerId,
    type_id: a.typeId,
    name: a.name,
    description: a.description,
    key: a.key,
    expires_at: a.expiresAt,
    blocked: a.blocked,
    ip_allow: a.ipAllow,
    services: a.services,
    rate_limit: a.rateLimit,
    secret_rotated_until: a.previous?.until ?? null,
    created_at: a.createdAt,
    updated_at: a.updatedAt,
  };
}

export function parseAllowList(entries: string[]): BlockList | null {
  if (entries.length === 0) return null;
  const bl = new BlockList();
  for (const raw of entries) {
    const e = raw.trim();
    const [addr, bits] = e.split('/');
    const fam = isIP(addr);
    if (!fam || (bits !== undefined && !/^\d{1,3}$/.test(bits))) throw new DomainError('VALIDATION', `not an IP address or CIDR: ${JSON.stringify(raw)}`, { field: 'ip_allow' });
    const type = fam === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) bl.addAddress(addr, type);
    else {
      const n = Number(bits);
      if (n > (fam === 6 ? 128 : 32)) throw new DomainError('VALIDATION', `bad prefix length in ${JSON.stringify(raw)}`, { field: 'ip_allow' });
      bl.addSubnet(addr, n, type);
    }
  }
  return bl;
}

export function ipAllowed(app: App, ip: string): boolean {
  if (!app.allow) return true;
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  const addr = v4mapped ? v4mapped[1] : ip;
  const fam = isIP(addr);
  if (!fam) return false;
  return app.allow.check(addr, fam === 6 ? 'ipv6' : 'ipv4');
}

function toApp(ctx: Ctx, r: AppRow): App {
  const ipAllow = JSON.parse(r.ip_allow) as string[];
  return {
    id: Number(r.id),
    tenantId: Number(r.tenant_id),
    developerId: r.developer_id === null ? null : Number(r.developer_id),
    typeId: r.type_id === null ? null : Number(r.type_id),
    name: r.name,
    description: r.description,
    key: r.key,
    secret: ctx.box.open(r.secret_enc),
    previous: r.prev_secret_enc && r.prev_secret_until ? { secret: ctx.box.open(r.prev_secret_enc), until: Number(r.prev_secret_until) } : null,
    expiresAt: r.expires_at === null ? null : Number(r.expires_at),
    blocked: !!r.blocked,
    ipAllow,
    services: JSON.parse(r.services) as string[],
    rateLimit: r.rate_limit,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    allow: parseAllowList(ipAllow),
  };
}

const servesAny = (services: string[], wanted: string[]): boolean =>
  services.includes('*') || wanted.includes('*') || wanted.some((s) => services.includes(s));

/**
 * App lookups are cached in process for a short time. Writes invalidate through the bus, so a
 * changed app is seen at once in this process and within milliseconds on every other server
 * (APP_CACHE_MS bounds it if an invalidation is lost).
 */
const APP_CACHE_MS = 1000;
const APPS_TOPIC = 'apps';
const cache = new WeakMap<Ctx, Map<string, { at: number; apps: App[] }>>();

export function invalidateApps(ctx: Ctx): void {
  cache.get(ctx)?.clear();
  ctx.bus.publish(APPS_TOPIC, '*');
}

function appCache(ctx: Ctx): Map<string, { at: number; apps: App[] }> {
  let m = cache.get(ctx);
  if (!m) {
    const fresh = new Map<string, { at: number; apps: App[] }>();
    cache.set(ctx, (m = fresh));
    ctx.bus.subscribe(APPS_TOPIC, () => fresh.clear(), () => fresh.clear());
  }
  return m;
}

const appsByKey = prepared<{ key: string }, AppRow>((db, p) => db.selectFrom('apps').selectAll().where('key', '=', p.key));

async function appsWithKey(ctx: Ctx, key: string): Promise<App[]> {
  const m = appCache(ctx);
  const t = ctx.clock.now();
  const hit = m.get(key);
  if (hit && t - hit.at < APP_CACHE_MS) return hit.apps;
  const rows = await appsByKey(ctx.db.kysely, { key });
  const apps = rows.map((r) => toApp(ctx, r));
  if (m.size > 10_000) m.clear();
  m.set(key, { at: t, apps });
  return apps;
}

/** The app with this key that is enabled for this service, if any. */
export async function findApp(ctx: Ctx, key: string, service: Service): Promise<App | null> {
  if (!key || key.length > 200) return null;
  const apps = await appsWithKey(ctx, key);
  return apps.find((a) => servesAny(a.services, [service])) ?? null;
}

export async function getApp(ctx: Ctx, id: number): Promise<App | null> {
  const row = await ctx.db.kysely.selectFrom('apps').selectAll().where('id', '=', id).executeTakeFirst();
  return row ? toApp(ctx, row) : null;
}

export async function listApps(ctx: Ctx, filter: { tenantId?: number; developerId?: number } = {}): Promise<App[]> {
  let q = ctx.db.kysely.selectFrom('apps').selectAll().orderBy('id');
  if (filter.tenantId !== undefined) q = q.where('tenant_id', '=', filter.tenantId);
  if (filter.developerId !== undefined) q = q.where('developer_id', '=', filter.developerId);
  return (await q.execute()).map((r) => toApp(ctx, r));
}

export interface CreateAppInput {
  tenantId: number;
  name: string;
  description?: string | null;
  developerId?: number | null;
  typeId?: number | null;
  /** Given for the seeds' fixed demo credentials; generated (32 hex) otherwise. */
  key?: string;
  secret?: string;
  services?: string[];
  ipAllow?: string[];
  rateLimit?: number | null;
  expiresAt?: number | null;
}

function checkServices(services: string[]): void {
  for (const s of services) {
    if (s !== '*' && !(SERVICES as readonly string[]).includes(s)) {
      throw new DomainError('VALIDATION', `unknown service ${JSON.stringify(s)}; known: * ${SERVICES.join(' ')}`, { field: 'services' });
    }
  }
}

const KEY_RE = /^[A-Za-z0-9_.@-]{1,128}$/;

/** Refuses references to rows that do not exist (a domain error, not a foreign-key failure). */
async function checkRefs(db: Kysely<DB>, r: { tenantId?: number; typeId?: number | null }): Promise<void> {
  if (r.tenantId !== undefined && !(await db.selectFrom('tenants').select('id').where('id', '=', r.tenantId).executeTakeFirst())) {
    throw new DomainError('NOT_FOUND', `no tenant ${r.tenantId}`, { field: 'tenant_id' });
  }
  if (r.typeId != null && !(await db.selectFrom('app_types').select('id').where('id', '=', r.typeId).executeTakeFirst())) {
    throw new DomainError('NOT_FOUND', `no app type ${r.typeId}`, { field: 'type_id' });
  }
}

export async function createApp(ctx: Ctx, input: CreateAppInput): Promise<App> {
  const services = input.services ?? ['*'];
  checkServices(services);
  const ipAllow = input.ipAllow ?? [];
  parseAllowList(ipAllow);
  const key = input.key ?? randomHex(16);
  const secret = input.secret ?? randomHex(16);
  if (!KEY_RE.test(key)) throw new DomainError('VALIDATION', 'key must be 1-128 characters of A-Z a-z 0-9 _ . @ -', { field: 'key' });
  if (!input.name || input.name.length > 200) throw new DomainError('VALIDATION', 'name is required (at most 200 characters)', { field: 'name' });
  if (input.rateLimit != null && (!Number.isInteger(input.rateLimit) || input.rateLimit < 0)) {
    throw new DomainError('VALIDATION', 'rate_limit must be a non-negative integer (requests per second)', { field: 'rate_limit' });
  }
  const t = ctx.clock.now();
  const row = await ctx.db.tx(async (trx) => {
    if (ctx.db.dialect === 'postgres') await sql`select pg_advisory_xact_lock(hashtext(${'app-key:' + key}))`.execute(trx);
    await checkRefs(trx, { tenantId: input.tenantId, typeId: input.typeId });
    const same = await trx.selectFrom('apps').select(['services']).where('key', '=', key).execute();
    if (same.some((r) => servesAny(JSON.parse(r.services) as string[], services))) {
      throw new DomainError('CONFLICT', `an app with key ${key} already serves one of these services`, { field: 'key' });
    }
    return trx
      .insertInto('apps')
      .values({
        tenant_id: input.tenantId,
        developer_id: input.developerId ?? null,
        type_id: input.typeId ?? null,
        name: input.name,
        description: input.description ?? null,
        key,
        secret_enc: ctx.box.seal(secret),
        prev_secret_enc: null,
        prev_secret_until: null,
        expires_at: input.expiresAt ?? null,
        blocked: 0,
        ip_allow: JSON.stringify(ipAllow),
        services: JSON.stringify(services),
        rate_limit: input.rateLimit ?? null,
        created_at: t,
        updated_at: t,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
  });
  invalidateApps(ctx);
  return toApp(ctx, row);
}

export interface UpdateAppInput {
  name?: string;
  description?: string | null;
  typeId?: number | null;
  services?: string[];
  ipAllow?: string[];
  rateLimit?: number | null;
  expiresAt?: number | null;
  blocked?: boolean;
}

export async function updateApp(ctx: Ctx, id: number, u: UpdateAppInput): Promise<App> {
  if (u.services) checkServices(u.services);
  if (u.ipAllow) parseAllowList(u.ipAllow);
  const set: Record<string, unknown> = { updated_at: ctx.clock.now() };
  if (u.name !== undefined) set.name = u.name;
  if (u.description !== undefined) set.description = u.description;
  if (u.typeId !== undefined) set.type_id = u.typeId;
  if (u.services !== undefined) set.services = JSON.stringify(u.services);
  if (u.ipAllow !== undefined) set.ip_allow = JSON.stringify(u.ipAllow);
  if (u.rateLimit !== undefined) set.rate_limit = u.rateLimit;
  if (u.expiresAt !== undefined) set.expires_at = u.expiresAt;
  if (u.blocked !== undefined) set.blocked = u.blocked ? 1 : 0;
  await checkRefs(ctx.db.kysely, { typeId: u.typeId });
  const row = await ctx.db.kysely.updateTable('apps').set(set).where('id', '=', id).returningAll().executeTakeFirst();
  if (!row) throw new DomainError('NOT_FOUND', `no app ${id}`);
  invalidateApps(ctx);
  return toApp(ctx, row);
}

/** New secret; the old one keeps working for graceSeconds (default from config). Returns the new secret. */
export async function rotateSecret(ctx: Ctx, id: number, graceSeconds = ctx.config.secretGraceSeconds): Promise<{ app: App; secret: string }> {
  const app = await getApp(ctx, id);
  if (!app) throw new DomainError('NOT_FOUND', `no app ${id}`);
  const secret = randomHex(16);
  const t = ctx.clock.now();
  const row = await ctx.db.kysely
    .updateTable('apps')
    .set({
      secret_enc: ctx.box.seal(secret),
      prev_secret_enc: graceSeconds > 0 ? ctx.box.seal(app.secret) : null,
      prev_secret_until: graceSeconds > 0 ? t + graceSeconds * 1000 : null,
      updated_at: t,
    })
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirstOrThrow();
  invalidateApps(ctx);
  return { app: toApp(ctx, row), secret };
}

export async function deleteApp(ctx: Ctx, id: number): Promise<number> {
  const r = await ctx.db.kysely.deleteFrom('apps').where('id', '=', id).executeTakeFirst();
  invalidateApps(ctx);
  return Number(r.numDeletedRows);
}

/** The secrets that currently prove this app: the current one, and the previous one during its grace. */
export function validSecrets(app: App, now: number): string[] {
  return app.previous && app.previous.until > now ? [app.secret, app.previous.secret] : [app.secret];
}
