/** Apps of a developer as the Ulord management API sees them: unique names, a type, no money lost on removal. */
import type { Ctx } from '../../core/context.js';
import { createApp, deleteApp, getApp, listApps, rotateSecret, type App } from '../../core/credentials/apps.js';
import { DomainError } from '../../core/errors.js';
import type { DeveloperView } from '../accounts/index.js';

export async function addDeveloperApp(ctx: Ctx, dev: DeveloperView, input: { name: unknown; typeId?: unknown; des?: unknown }): Promise<App> {
  if (input.name === undefined || input.name === null || input.name === '') throw new DomainError('MISSING_FIELD', 'appname is required', { field: 'appname' });
  if (typeof input.name !== 'string' || input.name.trim().length > 100) throw new DomainError('VALIDATION', 'appname must be 1 to 100 characters', { field: 'appname' });
  const name = input.name.trim();
  let typeId: number | null = null;
  if (input.typeId !== undefined && input.typeId !== null && input.typeId !== '') {
    typeId = Number(input.typeId);
    if (!Number.isSafeInteger(typeId) || typeId < 1) throw new DomainError('VALIDATION', 'apptype_id must be an id', { field: 'apptype_id' });
    if (!(await ctx.db.kysely.selectFrom('app_types').select('id').where('id', '=', typeId).executeTakeFirst())) throw new DomainError('NOT_FOUND', `no app type ${typeId}`, { field: 'apptype_id' });
  }
  if (input.des !== undefined && input.des !== null && (typeof input.des !== 'string' || input.des.length > 2000)) throw new DomainError('VALIDATION', 'appdes must be at most 2000 characters', { field: 'appdes' });
  const mine = await listApps(ctx, { developerId: dev.id });
  if (mine.some((a) => a.name === name)) throw new DomainError('CONFLICT', `you already have an app named ${name}`, { field: 'appname' });
  return createApp(ctx, { tenantId: dev.tenantId, developerId: dev.id, name, typeId, description: (input.des as string | undefined) ?? null, services: ['ulord'] });
}

/** The app, if this developer may manage it (its own, or any for an admin). */
export async function ownedApp(ctx: Ctx, dev: DeveloperView, id: unknown): Promise<App> {
  if (id === undefined || id === null || id === '') throw new DomainError('MISSING_FIELD', 'id is required', { field: 'id' });
  const n = Number(id);
  if (!Number.isSafeInteger(n) || n < 1) throw new DomainError('VALIDATION', 'id must be an app id', { field: 'id' });
  const a = await getApp(ctx, n);
  if (!a || (dev.role !== 'admin' && a.developerId !== dev.id)) throw new DomainError('NOT_FOUND', `no app ${n}`, { field: 'id' });
  return a;
}

export async function rotateDeveloperApp(ctx: Ctx, dev: DeveloperView, id: unknown): Promise<string> {
  const a = await ownedApp(ctx, dev, id);
  return (await rotateSecret(ctx, a.id)).secret;
}

/** Removes an app; refused while any of its wallets holds money (it would be stranded). */
export async function removeDeveloperApp(ctx: Ctx, dev: DeveloperView, id: unknown): Promise<number> {
  const a = await ownedApp(ctx, dev, id);
  const funded = await ctx.db.kysely
    .selectFrom('ledger_accounts')
    .select('id')
    .where('app_id', '=', a.id)
    .where((eb) => eb.or([eb('balance', '>', 0), eb('pending', '>', 0)]))
    .executeTakeFirst();
  if (funded) throw new DomainError('HAS_DEPENDENTS', 'wallets of this app still hold ULD; pay them out first');
  return deleteApp(ctx, a.id);
}
