import { sql, type Kysely } from 'kysely';
import type { DB } from '../db/index.js';
import { DomainError } from '../errors.js';

/**
 * Quotas are counters in the database: units `remaining` and units `held` by open reservations.
 * A service reserves inside the transaction that creates the work it pays for, and later commits
 * (the unit is spent) or refunds (it goes back) inside the transaction that settles the work.
 * Settling is idempotent: a hold settles once, whatever retries happen.
 */

export async function addQuota(db: Kysely<DB>, tenantId: number, service: string, units: number): Promise<number> {
  if (!Number.isSafeInteger(units) || units === 0) throw new DomainError('VALIDATION', 'units must be a non-zero integer', { field: 'units' });
  await db
    .insertInto('quotas')
    .values({ tenant_id: tenantId, service, remaining: 0, held: 0 })
    .onConflict((oc) => oc.columns(['tenant_id', 'service']).doNothing())
    .execute();
  const res = await db
    .updateTable('quotas')
    .set({ remaining: sql`remaining + ${units}` })
    .where('tenant_id', '=', tenantId)
    .where('service', '=', service)
    .where(sql<boolean>`remaining + ${units} >= 0`)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) throw new DomainError('VALIDATION', 'a quota cannot go below zero', { field: 'units' });
  return remainingQuota(db, tenantId, service);
}

export async function remainingQuota(db: Kysely<DB>, tenantId: number, service: string): Promise<number> {
  const row = await db.selectFrom('quotas').select('remaining').where('tenant_id', '=', tenantId).where('service', '=', service).executeTakeFirst();
  return row ? Number(row.remaining) : 0;
}

/** Holds `amount` units under holdId. Throws QUOTA_EXHAUSTED when fewer remain. Call inside a transaction. */
export async function reserveQuota(
  trx: Kysely<DB>,
  h: { holdId: string; tenantId: number; service: string; amount?: number; now: number },
): Promise<void> {
  const amount = h.amount ?? 1;
  const res = await trx
    .updateTable('quotas')
    .set({ remaining: sql`remaining - ${amount}`, held: sql`held + ${amount}` })
    .where('tenant_id', '=', h.tenantId)
    .where('service', '=', h.service)
    .where('remaining', '>=', amount)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) !== 1) throw new DomainError('QUOTA_EXHAUSTED', 'no quota left for this service');
  await trx
    .insertInto('quota_holds')
    .values({ id: h.holdId, tenant_id: h.tenantId, service: h.service, amount, state: 'held', created_at: h.now, settled_at: null })
    .execute();
}

async function settle(trx: Kysely<DB>, holdId: string, to: 'committed' | 'refunded', now: number): Promise<boolean> {
  const hold = await trx.selectFrom('quota_holds').selectAll().where('id', '=', holdId).executeTakeFirst();
  if (!hold || hold.state !== 'held') return false;
  const upd = await trx
    .updateTable('quota_holds')
    .set({ state: to, settled_at: now })
    .where('id', '=', holdId)
    .where('state', '=', 'held')
    .executeTakeFirst();
  if (Number(upd.numUpdatedRows) !== 1) return false;
  await trx
    .updateTable('quotas')
    .set(
      to === 'committed'
        ? { held: sql`held - ${hold.amount}` }
        : { held: sql`held - ${hold.amount}`, remaining: sql`remaining + ${hold.amount}` },
    )
    .where('tenant_id', '=', hold.tenant_id)
    .where('service', '=', hold.service)
    .execute();
  return true;
}

/** Spends a hold. Returns false if it was already settled. Call inside a transaction. */
export const commitQuota = (trx: Kysely<DB>, holdId: string, now: number): Promise<boolean> => settle(trx, holdId, 'committed', now);
/** Gives a hold back. Returns false if it was already settled. Call inside a transaction. */
export const refundQuota = (trx: Kysely<DB>, holdId: string, now: number): Promise<boolean> => settle(trx, holdId, 'refunded', now);
