/**
 * Double-entry ledger: accounts (the platform's issuing account, one account per developer, one
 * wallet per username per app) and immutable transfers. Money enters only from the issuing
 * account (fund); every other transfer moves units between two accounts and never makes a balance
 * negative. Every transfer carries an idempotency key: a retried request returns the first result,
 * the same key with other content is refused.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import type { Ctx } from '../../core/context.js';
import { hashPassword, verifyPassword } from '../../core/crypto.js';
import { DomainError, isDomainError } from '../../core/errors.js';
import { PLATFORM_TENANT } from '../accounts/index.js';
import { parseAmount } from './amount.js';
import { writer, type BulkRunner, type Outcome, type Trx } from './engine.js';
import type { Insertable } from 'kysely';
import type { LedgerAccountTable, LedgerTransferTable } from './schema.js';
import './schema.js';

export type Account = import('kysely').Selectable<LedgerAccountTable>;
export type Transfer = import('kysely').Selectable<LedgerTransferTable>;
type LedgerTransferInsert = Insertable<LedgerTransferTable>;

export const CURRENCY = 'ULD';
/** Pay password failures before the wallet locks; each further failure doubles the lock. */
export const LOCK_AFTER = 5;
export const LOCK_BASE_MS = 60_000;
export const LOCK_MAX_MS = 24 * 3600_000;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const num = (v: unknown): number => Number(v ?? 0);

function normAccount(a: Account): Account {
  return { ...a, id: num(a.id), tenant_id: num(a.tenant_id), app_id: num(a.app_id), balance: num(a.balance), pending: num(a.pending), failed_count: num(a.failed_count), locked_until: num(a.locked_until), created_at: num(a.created_at) };
}

// ---------------------------------------------------------------------------------------------
// Accounts

export function checkUsername(v: unknown, field = 'username'): string {
  if (v === undefined || v === null || v === '') throw new DomainError('MISSING_FIELD', `${field} is required`, { field });
  if (typeof v !== 'string' && typeof v !== 'number') throw new DomainError('VALIDATION', `${field} must be a string`, { field });
  const s = String(v).trim();
  if (!s || s.length > 64 || /[\u0000-\u001f\u007f]/.test(s)) throw new DomainError('VALIDATION', `${field} must be 1 to 64 printable characters`, { field });
  return s;
}

export function checkPayPassword(v: unknown, field = 'pay_password'): string {
  if (v === undefined || v === null || v === '') throw new DomainError('MISSING_FIELD', `${field} is required`, { field });
  if (typeof v !== 'string' && typeof v !== 'number') throw new DomainError('VALIDATION', `${field} must be a string`, { field });
  const s = String(v);
  if (s.length > 200) throw new DomainError('VALIDATION', `${field} is longer than 200 characters`, { field });
  return s;
}

async function getOrCreate(ctx: Ctx, row: { tenant_id: number; app_id: number; kind: string; owner: string }): Promise<Account> {
  const db = ctx.db.kysely;
  const find = () => db.selectFrom('ledger_accounts').selectAll().where('app_id', '=', row.app_id).where('kind', '=', row.kind).where('owner', '=', row.owner).executeTakeFirst();
  const found = await find();
  if (found) return normAccount(found);
  await db
    .insertInto('ledger_accounts')
    .values({ ...row, balance: 0, pending: 0, pay_hash: null, failed_count: 0, locked_until: 0, created_at: ctx.clock.now() })
    .onConflict((oc) => oc.columns(['app_id', 'kind', 'owner']).doNothing())
    .execute();
  return normAccount((await find())!);
}

export const issuerAccount = (ctx: Ctx): Promise<Account> => getOrCreate(ctx, { tenant_id: PLATFORM_TENANT, app_id: 0, kind: 'issuer', owner: 'platform' });

export const developerAccount = (ctx: Ctx, developer: { id: number; tenantId: number }): Promise<Account> =>
  getOrCreate(ctx, { tenant_id: developer.tenantId, app_id: 0, kind: 'developer', owner: String(developer.id) });

export async function getAccount(ctx: Ctx, id: number): Promise<Account | null> {
  const a = await ctx.db.kysely.selectFrom('ledger_accounts').selectAll().where('id', '=', id).executeTakeFirst();
  return a ? normAccount(a) : null;
}

export interface AppRef {
  id: number;
  tenantId: number;
  developerId: number | null;
}

/**
 * Wallet look-ups of requests that arrive together (in one turn of the event loop) share one
 * SELECT: under load that is one query for many requests instead of one each. A row is as fresh as
 * it would be from a query of its own sent at that moment.
 */
const walletLookups = new WeakMap<Ctx, { wanted: Map<string, { appId: number; owner: string; waiters: { resolve(a: Account | null): void; reject(e: unknown): void }[] }> }>();

const lookupKey = (appId: number, owner: string) => `${appId}\u0000${owner}`;

function lookupWallet(ctx: Ctx, appId: number, owner: string): Promise<Account | null> {
  let l = walletLookups.get(ctx);
  if (!l) walletLookups.set(ctx, (l = { wanted: new Map() }));
  const state = l;
  return new Promise((resolve, reject) => {
    if (!state.wanted.size) setImmediate(() => void flushLookups(ctx, state));
    const k = lookupKey(appId, owner);
    let w = state.wanted.get(k);
    if (!w) state.wanted.set(k, (w = { appId, owner, waiters: [] }));
    w.waiters.push({ resolve, reject });
  });
}

async function flushLookups(ctx: Ctx, state: { wanted: Map<string, { appId: number; owner: string; waiters: { resolve(a: Account | null): void; reject(e: unknown): void }[] }> }): Promise<void> {
  const wanted = [...state.wanted.values()];
  state.wanted.clear();
  try {
    for (let i = 0; i < wanted.length; i += 500) {
      const part = wanted.slice(i, i + 500);
      const rows = await ctx.db.kysely
        .selectFrom('ledger_accounts')
        .selectAll()
        .where('kind', '=', 'wallet')
        .where('app_id', 'in', [...new Set(part.map((w) => w.appId))])
        .where('owner', 'in', [...new Set(part.map((w) => w.owner))])
        .execute();
      const found = new Map(rows.map((r) => [lookupKey(num(r.app_id), r.owner), r]));
      for (const w of part) {
        const r = found.get(lookupKey(w.appId, w.owner));
        for (const x of w.waiters) x.resolve(r ? normAccount(r) : null);
      }
    }
  } catch (e) {
    for (const w of wanted) for (const x of w.waiters) x.reject(e);
  }
}

export async function findWallet(ctx: Ctx, appId: number, username: string): Promise<Account | null> {
  return lookupWallet(ctx, appId, username);
}

export async function wallet(ctx: Ctx, appId: number, username: unknown, field = 'username'): Promise<Account> {
  const u = checkUsername(username, field);
  const a = await findWallet(ctx, appId, u);
  if (!a) throw new DomainError('USER_UNKNOWN', `no wallet ${u} in this app`, { field });
  return a;
}

export async function listWallets(ctx: Ctx, appId: number, page = 1, num = 50): Promise<{ total: number; rows: Account[] }> {
  const db = ctx.db.kysely;
  const q = db.selectFrom('ledger_accounts').where('app_id', '=', appId).where('kind', '=', 'wallet');
  const total = Number((await q.select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const rows = await q.selectAll().orderBy('id').limit(num).offset((page - 1) * num).execute();
  return { total, rows: rows.map(normAccount) };
}

export async function createWallet(ctx: Ctx, app: AppRef, username: unknown, payPassword: unknown): Promise<Account> {
  const u = checkUsername(username);
  const pw = checkPayPassword(payPassword);
  if (await findWallet(ctx, app.id, u)) throw new DomainError('USER_EXISTS', `wallet ${u} exists in this app`, { field: 'username' });
  const hash = await hashPassword(pw);
  const r = await ctx.db.kysely
    .insertInto('ledger_accounts')
    .values({ tenant_id: app.tenantId, app_id: app.id, kind: 'wallet', owner: u, balance: 0, pending: 0, pay_hash: hash, failed_count: 0, locked_until: 0, created_at: ctx.clock.now() })
    .onConflict((oc) => oc.columns(['app_id', 'kind', 'owner']).doNothing())
    .returningAll()
    .executeTakeFirst();
  if (!r) throw new DomainError('USER_EXISTS', `wallet ${u} exists in this app`, { field: 'username' });
  return normAccount(r);
}

// ---------------------------------------------------------------------------------------------
// Pay passwords: scrypt hashes, a lock after repeated failures that doubles each time, and a short
// in-process memory of recently verified passwords (keyed HMAC, never the password) so that a
// client paying many times does not pay one scrypt per transfer.

/** How long a verified (wallet, pay password) pair skips the KDF; sliding, and void once the hash changes. */
const VERIFIED_TTL_MS = 10 * 60_000;
const verified = new WeakMap<Ctx, { key: Buffer; tags: Map<string, number>; inflight: Map<string, Promise<boolean>> }>();

function verifiedCache(ctx: Ctx) {
  let c = verified.get(ctx);
  if (!c) verified.set(ctx, (c = { key: randomBytes(32), tags: new Map(), inflight: new Map() }));
  return c;
}

export async function verifyPay(ctx: Ctx, acct: Account, password: string, field = 'pay_password'): Promise<void> {
  const now = ctx.clock.now();
  if (acct.locked_until > now) {
    throw new DomainError('LOCKED', `too many wrong pay passwords; wallet locked for ${Math.ceil((acct.locked_until - now) / 1000)} s`, { field, details: { retryAfterMs: acct.locked_until - now } });
  }
  if (!acct.pay_hash) throw new DomainError('PASSWORD_INVALID', 'this account has no pay password', { field });
  const c = verifiedCache(ctx);
  const tag = createHmac('sha256', c.key).update(`${acct.id}\u0000${acct.pay_hash}\u0000${password}`).digest('base64url');
  const hit = c.tags.get(tag);
  if (hit !== undefined && hit > now && acct.failed_count === 0) {
    c.tags.set(tag, now + VERIFIED_TTL_MS);
    return;
  }
  // concurrent requests with the same wallet and password share one scrypt run
  let pending = c.inflight.get(tag);
  if (!pending) {
    pending = verifyPassword(password, acct.pay_hash);
    c.inflight.set(tag, pending);
    void pending.finally(() => c.inflight.delete(tag)).catch(() => {});
  }
  const ok = await pending;
  const db = ctx.db.kysely;
  if (ok) {
    if (c.tags.size > 50_000) c.tags.clear();
    c.tags.set(tag, now + VERIFIED_TTL_MS);
    if (acct.failed_count > 0) await db.updateTable('ledger_accounts').set({ failed_count: 0, locked_until: 0 }).where('id', '=', acct.id).execute();
    return;
  }
  // count the failure atomically (concurrent guesses all count), then lock when over the limit
  const row = await ctx.db.tx(async (trx) => {
    const r = await trx.updateTable('ledger_accounts').set((eb) => ({ failed_count: eb('failed_count', '+', 1) })).where('id', '=', acct.id).returning(['failed_count']).executeTakeFirstOrThrow();
    const n = Number(r.failed_count);
    if (n >= LOCK_AFTER) {
      const ms = Math.min(LOCK_MAX_MS, LOCK_BASE_MS * 2 ** Math.min(20, n - LOCK_AFTER));
      await trx.updateTable('ledger_accounts').set({ locked_until: ctx.clock.now() + ms }).where('id', '=', acct.id).execute();
      return { n, ms };
    }
    return { n, ms: 0 };
  });
  if (row.ms) throw new DomainError('LOCKED', `wrong pay password; wallet locked for ${Math.ceil(row.ms / 1000)} s`, { field, details: { retryAfterMs: row.ms } });
  throw new DomainError('PASSWORD_INVALID', 'wrong pay password', { field });
}

// ---------------------------------------------------------------------------------------------
// Transfers

export interface TransferSpec {
  /** idempotency key space: `app:<id>`, `op` (operator funding), `consume:<app id>` */
  scope: string;
  key: string;
  /** what was asked (sha256 of a canonical form); the same key with another request is refused */
  request: string;
  tenantId: number;
  appId: number;
  debitId: number;
  creditId: number;
  amount: number;
  kind: 'fund' | 'pay' | 'consume' | 'ad';
  contentId?: number | null;
}

export interface TransferResult {
  transfer: Transfer;
  /** true when the key had already been used for this request: nothing was paid this time */
  replayed: boolean;
}

export const requestHash = (parts: unknown[]): string => sha256(JSON.stringify(parts));

export function checkIdempotencyKey(v: unknown): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(v)) throw new DomainError('VALIDATION', 'idempotency key must be 1 to 128 printable ASCII characters', { field: 'idempotency_key' });
  return v;
}

function normTransfer(t: Transfer): Transfer {
  return { ...t, id: num(t.id), tenant_id: num(t.tenant_id), app_id: num(t.app_id), debit_id: num(t.debit_id), credit_id: num(t.credit_id), amount: num(t.amount), content_id: t.content_id === null ? null : num(t.content_id), matures_at: num(t.matures_at), created_at: num(t.created_at) };
}

/** Matured, unreleased held income of an account (read only). */
async function maturedHolds(trx: Trx, accountId: number, now: number): Promise<{ ids: number[]; sum: number }> {
  const due = await trx.selectFrom('ledger_holds').select(['id', 'amount']).where('account_id', '=', accountId).where('released', '=', 0).where('matures_at', '<=', now).execute();
  return { ids: due.map((h) => num(h.id)), sum: due.reduce((s, h) => s + num(h.amount), 0) };
}

/** The transfer itself, inside the writer's transaction (accounts already locked). */
/** The stored row of a transfer (one shape for the single and the set-wise path). */
function transferRow(s: TransferSpec, now: number, maturesAt: number) {
  return {
    txid: sha256(JSON.stringify(['uld-tx', s.scope, s.key, s.request, s.debitId, s.creditId, s.amount, s.kind, now])),
    idem_scope: s.scope,
    idem_key: s.key,
    request_hash: s.request,
    tenant_id: s.tenantId,
    app_id: s.appId,
    debit_id: s.debitId,
    credit_id: s.creditId,
    amount: s.amount,
    kind: s.kind,
    content_id: s.contentId ?? null,
    matures_at: maturesAt,
    created_at: now,
  };
}

export async function applyTransfer(ctx: Ctx, trx: Trx, s: TransferSpec): Promise<TransferResult> {
  const prior = await trx.selectFrom('ledger_transfers').selectAll().where('idem_scope', '=', s.scope).where('idem_key', '=', s.key).executeTakeFirst();
  if (prior) {
    if (prior.request_hash !== s.request) throw new DomainError('PAYMENT_REFUSED', 'this idempotency key was used for a different transfer', { field: 'idempotency_key' });
    return { transfer: normTransfer(prior), replayed: true };
  }
  if (s.debitId === s.creditId) throw new DomainError('PAYMENT_REFUSED', 'cannot transfer to the same account', { field: 'recv_user' });
  if (!Number.isSafeInteger(s.amount) || s.amount <= 0) throw new DomainError('VALIDATION', 'amount must be positive', { field: 'amount' });
  const now = ctx.clock.now();
  const accts = await trx.selectFrom('ledger_accounts').select(['id', 'kind', 'balance', 'pending']).where('id', 'in', [s.debitId, s.creditId]).execute();
  const debit = accts.find((a) => num(a.id) === s.debitId);
  if (!debit || !accts.some((a) => num(a.id) === s.creditId)) throw new DomainError('USER_UNKNOWN', 'no such account');
  const matured = num(debit.pending) > 0 ? await maturedHolds(trx, s.debitId, now) : { ids: [], sum: 0 };
  if (debit.kind !== 'issuer' && num(debit.balance) + matured.sum < s.amount) throw new DomainError('INSUFFICIENT_FUNDS', 'balance too low for this payment', { field: 'amount' });
  // Every check is done: from here on only database errors can stop the transfer, and they abort
  // the whole batch (the writer runs operations without savepoints; see engine.ts).
  if (matured.ids.length) {
    await trx.updateTable('ledger_holds').set({ released: 1 }).where('id', 'in', matured.ids).execute();
    await trx.updateTable('ledger_accounts').set((eb) => ({ balance: eb('balance', '+', matured.sum), pending: eb('pending', '-', matured.sum) })).where('id', '=', s.debitId).execute();
  }
  const holdMs = s.kind === 'fund' ? 0 : ctx.config.ledgerHoldSeconds * 1000;
  if (holdMs > 0) {
    await trx.updateTable('ledger_accounts').set((eb) => ({ balance: eb('balance', '-', s.amount) })).where('id', '=', s.debitId).execute();
    await trx.updateTable('ledger_accounts').set((eb) => ({ pending: eb('pending', '+', s.amount) })).where('id', '=', s.creditId).execute();
  } else {
    // both legs in one statement
    await trx
      .updateTable('ledger_accounts')
      .set({ balance: sql<number>`balance + case when id = ${s.creditId} then cast(${s.amount} as bigint) else cast(${-s.amount} as bigint) end` })
      .where('id', 'in', [s.debitId, s.creditId])
      .execute();
  }
  const row = await trx
    .insertInto('ledger_transfers')
    .values(transferRow(s, now, now + holdMs))
    .returningAll()
    .executeTakeFirstOrThrow();
  if (holdMs > 0) await trx.insertInto('ledger_holds').values({ account_id: s.creditId, transfer_id: num(row.id), amount: s.amount, matures_at: now + holdMs, released: 0 }).execute();
  return { transfer: normTransfer(row), replayed: false };
}

/**
 * Several transfers of one batch in a fixed number of statements, with the same outcome as
 * applyTransfer on each in order. The accounts are read (and on PostgreSQL locked, in id order)
 * in one SELECT; checks and balances are worked out here in order; then one INSERT of every new
 * transfer (ON CONFLICT DO NOTHING) and one UPDATE of every balance that changed — on PostgreSQL
 * both in one statement, the UPDATE applied only if every row was inserted. An idempotency key
 * already used shows as a row not inserted: the rows just inserted are deleted again (they are this
 * transaction's own), the used keys read, and the batch worked out anew with them. Where held
 * income is involved (a hold period, or a payer with pending income) the batch goes through
 * applyTransfer one by one.
 */
export async function applyTransfers(ctx: Ctx, trx: Trx, specs: TransferSpec[]): Promise<Outcome<TransferResult>[]> {
  const one = async (): Promise<Outcome<TransferResult>[]> => {
    const out: Outcome<TransferResult>[] = [];
    for (const s of specs) {
      try {
        out.push({ ok: true, v: await applyTransfer(ctx, trx, s) });
      } catch (e) {
        if (!isDomainError(e)) throw e;
        out.push({ ok: false, e });
      }
    }
    return out;
  };
  if (ctx.config.ledgerHoldSeconds > 0 && specs.some((s) => s.kind !== 'fund')) return one();
  const { db } = ctx;
  const ids = [...new Set(specs.flatMap((s) => [s.debitId, s.creditId]))].sort((x, y) => x - y);
  const locked = await db.forUpdate(trx.selectFrom('ledger_accounts').select(['id', 'kind', 'balance', 'pending']).where('id', 'in', ids).orderBy('id')).execute();
  if (locked.some((a) => num(a.pending) > 0 && specs.some((s) => s.debitId === num(a.id)))) return one();
  const now = ctx.clock.now();
  const keyOf = (scope: string, key: string) => `${scope}\u0000${key}`;

  /** What the batch does, given the keys already used. */
  const plan = (prior: Map<string, Transfer>) => {
    const out: Outcome<TransferResult>[] = new Array(specs.length);
    const accts = new Map(locked.map((a) => [num(a.id), { kind: a.kind, balance: num(a.balance) }]));
    /** new transfers of this batch by key: later ones with the same key replay them */
    const fresh = new Map<string, { index: number; spec: TransferSpec }>();
    const rows: LedgerTransferInsert[] = [];
    const rowOf: number[] = [];
    const replayOf: [number, string][] = [];
    const delta = new Map<number, number>();
    specs.forEach((s, i) => {
      const k = keyOf(s.scope, s.key);
      const p = prior.get(k);
      if (p) {
        out[i] = p.request_hash !== s.request ? refusedKey() : { ok: true, v: { transfer: p, replayed: true } };
        return;
      }
      const f = fresh.get(k);
      if (f) {
        if (f.spec.request !== s.request) out[i] = refusedKey();
        else replayOf.push([i, k]);
        return;
      }
      try {
        if (s.debitId === s.creditId) throw new DomainError('PAYMENT_REFUSED', 'cannot transfer to the same account', { field: 'recv_user' });
        if (!Number.isSafeInteger(s.amount) || s.amount <= 0) throw new DomainError('VALIDATION', 'amount must be positive', { field: 'amount' });
        const debit = accts.get(s.debitId);
        const credit = accts.get(s.creditId);
        if (!debit || !credit) throw new DomainError('USER_UNKNOWN', 'no such account');
        if (debit.kind !== 'issuer' && debit.balance < s.amount) throw new DomainError('INSUFFICIENT_FUNDS', 'balance too low for this payment', { field: 'amount' });
        debit.balance -= s.amount;
        credit.balance += s.amount;
        delta.set(s.debitId, (delta.get(s.debitId) ?? 0) - s.amount);
        delta.set(s.creditId, (delta.get(s.creditId) ?? 0) + s.amount);
        fresh.set(k, { index: i, spec: s });
        rowOf.push(i);
        rows.push(transferRow(s, now, now));
      } catch (e) {
        if (!isDomainError(e)) throw e;
        out[i] = { ok: false, e };
      }
    });
    const changed = [...delta].filter(([, d]) => d !== 0);
    const finish = (inserted: Transfer[]): Outcome<TransferResult>[] => {
      const byTxid = new Map(inserted.map((t) => [t.txid, normTransfer(t)]));
      rows.forEach((r, n) => (out[rowOf[n]] = { ok: true, v: { transfer: byTxid.get(r.txid)!, replayed: false } }));
      for (const [i, k] of replayOf) out[i] = { ok: true, v: { transfer: (out[fresh.get(k)!.index] as { v: TransferResult }).v.transfer, replayed: true } };
      return out;
    };
    return { rows, changed, finish, refused: out.some((o) => o && !o.ok) };
  };

  const balanceSql = (changed: [number, number][]) => sql<number>`balance + case id ${sql.join(changed.map(([id, d]) => sql`when ${id} then cast(${d} as bigint)`), sql` `)} end`;
  /** INSERT ... ON CONFLICT DO NOTHING, and the UPDATE only if every row went in; the rows inserted */
  const write = async (p: ReturnType<typeof plan>): Promise<Transfer[]> => {
    if (!p.rows.length) return [];
    if (db.dialect === 'postgres' && p.changed.length) {
      return trx
        .with('ins', (w) => w.insertInto('ledger_transfers').values(p.rows).onConflict((oc) => oc.doNothing()).returningAll())
        .with('upd', (w) =>
          w
            .updateTable('ledger_accounts')
            .set({ balance: balanceSql(p.changed) })
            .where('id', 'in', p.changed.map(([id]) => id))
            .where(sql<boolean>`(select count(*) from ins) = ${p.rows.length}`)
            .returning('id'),
        )
        .selectFrom('ins')
        .selectAll()
        .execute();
    }
    const inserted = await trx.insertInto('ledger_transfers').values(p.rows).onConflict((oc) => oc.doNothing()).returningAll().execute();
    if (inserted.length === p.rows.length && p.changed.length) await trx.updateTable('ledger_accounts').set({ balance: balanceSql(p.changed) }).where('id', 'in', p.changed.map(([id]) => id)).execute();
    return inserted;
  };
  const priors = async () =>
    new Map(
      (
        await trx
          .selectFrom('ledger_transfers')
          .selectAll()
          .where('idem_scope', 'in', [...new Set(specs.map((s) => s.scope))])
          .where('idem_key', 'in', [...new Set(specs.map((s) => s.key))])
          .execute()
      ).map((t) => [keyOf(t.idem_scope, t.idem_key), normTransfer(t)]),
    );

  // Most batches use no key twice and refuse nothing: then the keys need not be read first. A
  // refusal might be a replay instead (its key already used), so then they are.
  let p = plan(new Map());
  let knowPriors = false;
  if (p.refused) {
    p = plan(await priors());
    knowPriors = true;
  }
  let inserted = await write(p);
  if (inserted.length === p.rows.length) return p.finish(inserted);
  // some keys were used already (a retry, or the same key sent twice at once): undo this
  // transaction's own rows, read the used keys and work the batch out anew
  if (inserted.length) await trx.deleteFrom('ledger_transfers').where('id', 'in', inserted.map((t) => num(t.id))).execute();
  if (!knowPriors) {
    p = plan(await priors());
    inserted = await write(p);
    if (inserted.length === p.rows.length) return p.finish(inserted);
  }
  // a key was used by another transaction meanwhile: the batch runs again
  throw Object.assign(new Error('idempotency key used concurrently'), { code: '40001' });
}

const refusedKey = (): Outcome<TransferResult> => ({ ok: false, e: new DomainError('PAYMENT_REFUSED', 'this idempotency key was used for a different transfer', { field: 'idempotency_key' }) });

const bulkTransfers = new WeakMap<Ctx, BulkRunner<TransferSpec, TransferResult>>();

export function transfer(ctx: Ctx, s: TransferSpec): Promise<TransferResult> {
  let bulk = bulkTransfers.get(ctx);
  if (!bulk) bulkTransfers.set(ctx, (bulk = (trx, specs) => applyTransfers(ctx, trx, specs)));
  return writer(ctx).submit<TransferResult>({ locks: [s.debitId, s.creditId], run: (trx) => applyTransfer(ctx, trx, s), bulk: bulk as BulkRunner<unknown, TransferResult>, item: s });
}

/** Operator funding: units leave the issuing account (the only account allowed below zero). */
export async function fund(ctx: Ctx, target: Account, amount: unknown, key?: string): Promise<TransferResult> {
  const units = parseAmount(amount, 'amount');
  const issuer = await issuerAccount(ctx);
  const k = checkIdempotencyKey(key) ?? `fund-${randomBytes(12).toString('hex')}`;
  return transfer(ctx, {
    scope: 'op',
    key: k,
    request: requestHash(['fund', target.id, units]),
    tenantId: target.tenant_id,
    appId: target.app_id,
    debitId: issuer.id,
    creditId: target.id,
    amount: units,
    kind: 'fund',
  });
}

export interface PayInput {
  app: AppRef;
  isDeveloper: boolean;
  sendUser?: unknown;
  payPassword?: unknown;
  recvUser: unknown;
  amount: unknown;
  idempotencyKey?: unknown;
}

/** paytouser: from a wallet of the app (with its pay password) or from the app developer's account. */
export async function pay(ctx: Ctx, p: PayInput): Promise<TransferResult> {
  const units = parseAmount(p.amount, 'amount');
  const key = checkIdempotencyKey(p.idempotencyKey);
  const recv = checkUsername(p.recvUser, 'recv_user');
  const send = p.isDeveloper ? null : checkUsername(p.sendUser, 'send_user');
  const [to, f] = await Promise.all([lookupWallet(ctx, p.app.id, recv), send === null ? null : lookupWallet(ctx, p.app.id, send)]);
  if (!to) throw new DomainError('USER_UNKNOWN', `no wallet ${recv} in this app`, { field: 'recv_user' });
  let from: Account;
  if (p.isDeveloper) {
    if (p.app.developerId === null) throw new DomainError('USER_UNKNOWN', 'this app has no developer account to pay from', { field: 'is_developer' });
    const dev = await ctx.db.kysely.selectFrom('developers').select(['id', 'tenant_id']).where('id', '=', p.app.developerId).executeTakeFirst();
    if (!dev) throw new DomainError('USER_UNKNOWN', 'the developer of this app no longer exists', { field: 'is_developer' });
    from = await developerAccount(ctx, { id: Number(dev.id), tenantId: Number(dev.tenant_id) });
  } else {
    if (!f) throw new DomainError('USER_UNKNOWN', `no wallet ${send} in this app`, { field: 'send_user' });
    from = f;
    const pw = checkPayPassword(p.payPassword);
    if (from.id === to.id) throw new DomainError('PAYMENT_REFUSED', 'send_user and recv_user are the same wallet', { field: 'recv_user' });
    await verifyPay(ctx, from, pw);
  }
  return transfer(ctx, {
    scope: `app:${p.app.id}`,
    key: key ?? `auto-${randomBytes(12).toString('hex')}`,
    request: requestHash(['pay', from.id, to.id, units]),
    tenantId: p.app.tenantId,
    appId: p.app.id,
    debitId: from.id,
    creditId: to.id,
    amount: units,
    kind: 'pay',
  });
}

export interface Balance {
  total: number;
  confirmed: number;
  unconfirmed: number;
  unmatured: number;
}

/**
 * confirmed = spendable; unconfirmed = pending incoming (a transfer is final when it commits, so
 * always 0 here); unmatured = income still held; total = their sum. Units.
 */
export async function balanceOf(ctx: Ctx, accountId: number): Promise<Balance> {
  const db = ctx.db.kysely;
  const a = await getAccount(ctx, accountId);
  if (!a) throw new DomainError('USER_UNKNOWN', 'no such account');
  let matured = 0;
  if (a.pending > 0) {
    const r = await db
      .selectFrom('ledger_holds')
      .select((eb) => eb.fn.sum<string | number>('amount').as('s'))
      .where('account_id', '=', accountId)
      .where('released', '=', 0)
      .where('matures_at', '<=', ctx.clock.now())
      .executeTakeFirst();
    matured = num(r?.s);
  }
  const confirmed = a.balance + matured;
  const unmatured = a.pending - matured;
  return { total: confirmed + unmatured, confirmed, unconfirmed: 0, unmatured };
}

export async function walletBalance(ctx: Ctx, appId: number, username: unknown, payPassword: unknown): Promise<Balance> {
  const w = await wallet(ctx, appId, username);
  await verifyPay(ctx, w, checkPayPassword(payPassword));
  return balanceOf(ctx, w.id);
}

export async function listTransfers(ctx: Ctx, f: { appId?: number; accountId?: number; tenantId?: number }, page: number, num: number): Promise<{ total: number; rows: Transfer[] }> {
  const db = ctx.db.kysely;
  let q = db.selectFrom('ledger_transfers');
  if (f.appId !== undefined) q = q.where('app_id', '=', f.appId);
  if (f.tenantId !== undefined) q = q.where('tenant_id', '=', f.tenantId);
  if (f.accountId !== undefined) q = q.where((eb) => eb.or([eb('debit_id', '=', f.accountId!), eb('credit_id', '=', f.accountId!)]));
  const total = Number((await q.select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const rows = await q.selectAll().orderBy('id', 'desc').limit(num).offset((page - 1) * num).execute();
  return { total, rows: rows.map(normTransfer) };
}

export async function transferByTxid(ctx: Ctx, txid: string): Promise<Transfer | null> {
  const t = await ctx.db.kysely.selectFrom('ledger_transfers').selectAll().where('txid', '=', txid).executeTakeFirst();
  return t ? normTransfer(t) : null;
}

export interface Audit {
  /** units issued (minus the issuing account's balance) */
  issued: number;
  /** sum of every non-issuer account's balance + pending */
  held: number;
  /** accounts whose balance differs from what their transfers add up to */
  mismatched: number[];
  negative: number[];
  transfers: number;
}

/**
 * Checks the ledger's invariants from scratch: the sum of all balances equals what was issued, every
 * account's balance equals credits minus debits of its transfers, nothing but the issuer is negative.
 */
export async function audit(ctx: Ctx): Promise<Audit> {
  const db = ctx.db.kysely;
  const accts = (await db.selectFrom('ledger_accounts').selectAll().execute()).map(normAccount);
  const debits = await db.selectFrom('ledger_transfers').select(['debit_id as id', (eb) => eb.fn.sum<string | number>('amount').as('s')]).groupBy('debit_id').execute();
  const credits = await db.selectFrom('ledger_transfers').select(['credit_id as id', (eb) => eb.fn.sum<string | number>('amount').as('s')]).groupBy('credit_id').execute();
  const count = Number((await db.selectFrom('ledger_transfers').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const net = new Map<number, number>();
  for (const d of debits) net.set(num(d.id), (net.get(num(d.id)) ?? 0) - num(d.s));
  for (const c of credits) net.set(num(c.id), (net.get(num(c.id)) ?? 0) + num(c.s));
  let issued = 0;
  let held = 0;
  const mismatched: number[] = [];
  const negative: number[] = [];
  for (const a of accts) {
    const total = a.balance + a.pending;
    if (a.kind === 'issuer') issued -= total;
    else held += total;
    if ((net.get(a.id) ?? 0) !== total) mismatched.push(a.id);
    if (a.kind !== 'issuer' && (a.balance < 0 || a.pending < 0)) negative.push(a.id);
  }
  return { issued, held, mismatched, negative, transfers: count };
}
