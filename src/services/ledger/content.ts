/**
 * Paid content: an author publishes a record (title, tags, IPFS CID, price); a customer consumes
 * it once, paying the price to the author (ads: negative price, the author pays the customer).
 * Statements, totals and lists are read from the purchase records.
 */
import { createHash } from 'node:crypto';
import { CID } from 'multiformats/cid';
import type { Ctx } from '../../core/context.js';
import { DomainError } from '../../core/errors.js';
import { parseAmount } from './amount.js';
import { writer } from './engine.js';
import { applyTransfer, checkPayPassword, getAccount, requestHash, verifyPay, wallet, type AppRef } from './index.js';
import type { LedgerContentTable } from './schema.js';

export type Content = import('kysely').Selectable<LedgerContentTable>;

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const num = (v: unknown): number => Number(v ?? 0);

export const MAX_PAGE_SIZE = 100;

export function paging(page: unknown, size: unknown): { page: number; num: number } {
  const p = typeof page === 'number' ? page : /^\d{1,9}$/.test(String(page ?? '')) ? Number(page) : NaN;
  const n = typeof size === 'number' ? size : /^\d{1,9}$/.test(String(size ?? '')) ? Number(size) : NaN;
  if (!Number.isInteger(p) || p < 1) throw new DomainError('VALIDATION', 'page must be an integer >= 1', { field: 'page' });
  if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE_SIZE) throw new DomainError('VALIDATION', `num must be an integer from 1 to ${MAX_PAGE_SIZE}`, { field: 'num' });
  return { page: p, num: n };
}

export const pages = (total: number, size: number): number => Math.ceil(total / size);

/** A CID as IPFS writes it: CIDv0 (Qm…, base58btc) or CIDv1 in any multibase multiformats reads. */
export function checkCid(v: unknown, field = 'ipfs_hash'): string {
  if (v === undefined || v === null || v === '') throw new DomainError('MISSING_FIELD', `${field} is required`, { field });
  if (typeof v !== 'string' || v.length > 200) throw new DomainError('VALIDATION', `${field} must be an IPFS CID`, { field });
  try {
    const cid = CID.parse(v.trim());
    return cid.version === 0 ? cid.toString() : v.trim();
  } catch {
    throw new DomainError('VALIDATION', `${field} is not a valid IPFS CID`, { field });
  }
}

function text(v: unknown, field: string, max: number, required: boolean): string {
  if (v === undefined || v === null || v === '') {
    if (required) throw new DomainError('MISSING_FIELD', `${field} is required`, { field });
    return '';
  }
  if (typeof v !== 'string' && typeof v !== 'number') throw new DomainError('VALIDATION', `${field} must be a string`, { field });
  const s = String(v);
  if (s.length > max) throw new DomainError('VALIDATION', `${field} is longer than ${max} characters`, { field });
  return s;
}

function tags(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  const list = typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v;
  if (!Array.isArray(list) || list.length > 32 || list.some((t) => typeof t !== 'string' || !t || t.length > 64)) {
    throw new DomainError('VALIDATION', 'tag must be a list of at most 32 strings of 1 to 64 characters', { field: 'tag' });
  }
  return list as string[];
}

export interface PublishInput {
  author: unknown;
  title: unknown;
  tag?: unknown;
  ipfs_hash: unknown;
  price: unknown;
  content_type?: unknown;
  pay_password: unknown;
  description?: unknown;
}

export async function publish(ctx: Ctx, app: AppRef, input: PublishInput): Promise<Content> {
  const author = await wallet(ctx, app.id, input.author, 'author');
  const title = text(input.title, 'title', 200, true);
  const ipfs = checkCid(input.ipfs_hash);
  const price = parseAmount(input.price, 'price', { signed: true, allowZero: true });
  const contentType = text(input.content_type, 'content_type', 40, false);
  const des = text(input.description, 'description', 4000, false);
  const tagList = tags(input.tag);
  await verifyPay(ctx, author, checkPayPassword(input.pay_password));
  const now = ctx.clock.now();
  // The claim id is derived from the record's content hash (and the author's account and time, so
  // that the same file published twice gets two claims).
  const claimId = sha256(JSON.stringify(['uld-claim', app.id, author.id, title, tagList, ipfs, price, contentType, des, now, ctx.ids.hex32()])).slice(0, 40);
  const row = await ctx.db.kysely
    .insertInto('ledger_contents')
    .values({
      tenant_id: app.tenantId,
      app_id: app.id,
      author_id: author.id,
      author: author.owner,
      claim_id: claimId,
      title,
      tags: JSON.stringify(tagList),
      ipfs_hash: ipfs,
      price,
      content_type: contentType,
      des,
      status: 1,
      created_at: now,
      updated_at: null,
    })
    .returningAll()
    .executeTakeFirstOrThrow();
  return normContent(row);
}

function normContent(c: Content): Content {
  return { ...c, id: num(c.id), tenant_id: num(c.tenant_id), app_id: num(c.app_id), author_id: num(c.author_id), price: num(c.price), created_at: num(c.created_at), updated_at: c.updated_at === null ? null : num(c.updated_at) };
}

const CLAIM_RE = /^[0-9a-f]{40}$/;

export function checkClaimId(v: unknown, field = 'claim_id'): string {
  if (v === undefined || v === null || v === '') throw new DomainError('MISSING_FIELD', `${field} is required`, { field });
  if (typeof v !== 'string' || !CLAIM_RE.test(v.toLowerCase())) throw new DomainError('VALIDATION', `${field} must be 40 hex digits`, { field });
  return v.toLowerCase();
}

export async function contentByClaim(ctx: Ctx, appId: number, claimId: string): Promise<Content | null> {
  const c = await ctx.db.kysely.selectFrom('ledger_contents').selectAll().where('app_id', '=', appId).where('claim_id', '=', claimId).executeTakeFirst();
  return c ? normContent(c) : null;
}

/** claim id → ipfs hash when the user paid for it (or wrote it), false when not, null when unknown. */
export async function check(ctx: Ctx, appId: number, username: unknown, claimIds: unknown): Promise<Record<string, string | false | null>> {
  const w = await wallet(ctx, appId, username);
  if (claimIds === undefined || claimIds === null) throw new DomainError('MISSING_FIELD', 'claim_ids is required', { field: 'claim_ids' });
  if (!Array.isArray(claimIds) || claimIds.length > 1000 || claimIds.some((c) => typeof c !== 'string' || c.length > 100)) {
    throw new DomainError('VALIDATION', 'claim_ids must be a list of at most 1000 claim ids', { field: 'claim_ids' });
  }
  const out: Record<string, string | false | null> = {};
  const ids = [...new Set(claimIds as string[])];
  const wanted = ids.filter((c) => CLAIM_RE.test(c));
  const rows = wanted.length ? await ctx.db.kysely.selectFrom('ledger_contents').select(['id', 'claim_id', 'ipfs_hash', 'author_id']).where('app_id', '=', appId).where('claim_id', 'in', wanted).execute() : [];
  const bought = rows.length
    ? new Set(
        (await ctx.db.kysely.selectFrom('ledger_purchases').select('content_id').where('customer_id', '=', w.id).where('content_id', 'in', rows.map((r) => num(r.id))).execute()).map((p) => num(p.content_id)),
      )
    : new Set<number>();
  const byClaim = new Map(rows.map((r) => [r.claim_id, r]));
  for (const c of ids) {
    const r = byClaim.get(c);
    out[c] = !r ? null : bought.has(num(r.id)) || num(r.author_id) === w.id ? r.ipfs_hash : false;
  }
  return out;
}

export interface ConsumeInput {
  username: unknown;
  claim_id: unknown;
  customer_pay_password?: unknown;
  author_pay_password?: unknown;
}

export interface ConsumeResult {
  ipfs_hash: string;
  txid: string | null;
  /** false when the customer had already consumed it (nothing paid this time) */
  paid: boolean;
}

/**
 * Consumes content: pays its price from the customer to the author the first time (an ad pays
 * |price| from the author to the customer, authorised by the author's pay password). Later calls
 * return the ipfs hash without paying again.
 */
export async function consume(ctx: Ctx, app: AppRef, input: ConsumeInput): Promise<ConsumeResult> {
  const customer = await wallet(ctx, app.id, input.username);
  const claimId = checkClaimId(input.claim_id);
  const c = await contentByClaim(ctx, app.id, claimId);
  if (!c) throw new DomainError('CONTENT_UNKNOWN', `no content ${claimId}`, { field: 'claim_id' });
  if (c.author_id === customer.id) return { ipfs_hash: c.ipfs_hash, txid: null, paid: false };
  const prior = await ctx.db.kysely.selectFrom('ledger_purchases').select('txid').where('content_id', '=', c.id).where('customer_id', '=', customer.id).executeTakeFirst();
  if (prior) return { ipfs_hash: c.ipfs_hash, txid: prior.txid, paid: false };
  if (c.price > 0) {
    await verifyPay(ctx, customer, checkPayPassword(input.customer_pay_password, 'customer_pay_password'), 'customer_pay_password');
  } else if (c.price < 0) {
    const author = await getAccount(ctx, c.author_id);
    if (!author) throw new DomainError('USER_UNKNOWN', 'the author of this content has no wallet', { field: 'claim_id' });
    await verifyPay(ctx, author, checkPayPassword(input.author_pay_password, 'author_pay_password'), 'author_pay_password');
  }
  const amount = Math.abs(c.price);
  const [debitId, creditId] = c.price > 0 ? [customer.id, c.author_id] : [c.author_id, customer.id];
  return writer(ctx).submit({
    locks: amount > 0 ? [debitId, creditId] : [],
    run: async (trx) => {
      const again = await trx.selectFrom('ledger_purchases').select('txid').where('content_id', '=', c.id).where('customer_id', '=', customer.id).executeTakeFirst();
      if (again) return { ipfs_hash: c.ipfs_hash, txid: again.txid, paid: false };
      const now = ctx.clock.now();
      let txid: string;
      let transferId: number | null = null;
      if (amount > 0) {
        const r = await applyTransfer(ctx, trx, {
          scope: `consume:${app.id}`,
          key: `${c.id}:${customer.id}`,
          request: requestHash(['consume', c.id, customer.id, c.price]),
          tenantId: app.tenantId,
          appId: app.id,
          debitId,
          creditId,
          amount,
          kind: c.price > 0 ? 'consume' : 'ad',
          contentId: c.id,
        });
        txid = r.transfer.txid;
        transferId = r.transfer.id;
      } else {
        txid = sha256(JSON.stringify(['uld-free', c.id, customer.id, now]));
      }
      await trx.insertInto('ledger_purchases').values({ app_id: app.id, content_id: c.id, customer_id: customer.id, customer: customer.owner, author_id: c.author_id, price: c.price, transfer_id: transferId, txid, created_at: now }).execute();
      return { ipfs_hash: c.ipfs_hash, txid, paid: amount > 0 };
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Statements and lists

export interface PurchaseRecord {
  id: number;
  claim_id: string;
  title: string;
  author: string;
  customer: string;
  price: number;
  txid: string;
  created_at: number;
}

function purchases(ctx: Ctx, appId: number) {
  return ctx.db.kysely.selectFrom('ledger_purchases as p').innerJoin('ledger_contents as c', 'c.id', 'p.content_id').where('p.app_id', '=', appId);
}

const PURCHASE_COLS = ['p.id as id', 'c.claim_id as claim_id', 'c.title as title', 'c.author as author', 'p.customer as customer', 'p.price as price', 'p.txid as txid', 'p.created_at as created_at'] as const;

const normPurchase = (r: PurchaseRecord): PurchaseRecord => ({ ...r, id: num(r.id), price: num(r.price), created_at: num(r.created_at) });

export async function statement(ctx: Ctx, appId: number, role: 'publisher' | 'customer', username: unknown, page: number, size: number): Promise<{ total: number; records: PurchaseRecord[] }> {
  const w = await wallet(ctx, appId, username, role === 'publisher' ? 'author' : 'customer');
  const q = purchases(ctx, appId).where(role === 'publisher' ? 'p.author_id' : 'p.customer_id', '=', w.id);
  const total = num((await q.select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const rows = await q.select(PURCHASE_COLS).orderBy('p.id', 'desc').limit(size).offset((page - 1) * size).execute();
  return { total, records: rows.map((r) => normPurchase(r as PurchaseRecord)) };
}

export interface InOut {
  customer_expenditure: { count: number; sum: number | null };
  customer_income: { count: number; sum: number | null };
  publisher_expenditure: { count: number; sum: number | null };
  publisher_income: { count: number; sum: number | null };
}

/** Totals in units; sum is null when there is nothing to add (as SQL SUM answers). */
export async function inout(ctx: Ctx, appId: number, username: unknown): Promise<InOut> {
  const w = await wallet(ctx, appId, username);
  const db = ctx.db.kysely;
  const agg = async (col: 'customer_id' | 'author_id', positive: boolean) => {
    const r = await db
      .selectFrom('ledger_purchases')
      .select((eb) => [eb.fn.countAll().as('n'), eb.fn.sum<string | number | null>('price').as('s')])
      .where('app_id', '=', appId)
      .where(col, '=', w.id)
      .where('price', positive ? '>' : '<', 0)
      .executeTakeFirstOrThrow();
    const n = num(r.n);
    return { count: n, sum: n === 0 || r.s === null ? null : Math.abs(num(r.s)) };
  };
  return {
    customer_expenditure: await agg('customer_id', true),
    customer_income: await agg('customer_id', false),
    publisher_expenditure: await agg('author_id', false),
    publisher_income: await agg('author_id', true),
  };
}

export async function publishCount(ctx: Ctx, appId: number, author: unknown): Promise<number> {
  const w = await wallet(ctx, appId, author, 'author');
  return num((await ctx.db.kysely.selectFrom('ledger_contents').select((eb) => eb.fn.countAll().as('n')).where('author_id', '=', w.id).executeTakeFirstOrThrow()).n);
}

export async function listContent(ctx: Ctx, appId: number, page: number, size: number, authorId?: number): Promise<{ total: number; rows: Content[] }> {
  let q = ctx.db.kysely.selectFrom('ledger_contents').where('app_id', '=', appId);
  if (authorId !== undefined) q = q.where('author_id', '=', authorId);
  const total = num((await q.select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const rows = await q.selectAll().orderBy('id', 'desc').limit(size).offset((page - 1) * size).execute();
  return { total, rows: rows.map(normContent) };
}

export async function publishedBy(ctx: Ctx, appId: number, author: unknown, page: number, size: number) {
  const w = await wallet(ctx, appId, author, 'author');
  return listContent(ctx, appId, page, size, w.id);
}

/** Content a customer consumed, newest first, with the price paid (ads: negative). */
export async function consumedBy(ctx: Ctx, appId: number, customer: unknown, page: number, size: number): Promise<{ total: number; rows: (Content & { paid: number; consumed_at: number })[] }> {
  const w = await wallet(ctx, appId, customer, 'customer');
  const q = ctx.db.kysely.selectFrom('ledger_purchases as p').innerJoin('ledger_contents as c', 'c.id', 'p.content_id').where('p.customer_id', '=', w.id);
  const total = num((await q.select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const rows = await q.selectAll('c').select(['p.price as paid', 'p.created_at as consumed_at']).orderBy('p.id', 'desc').limit(size).offset((page - 1) * size).execute();
  return { total, rows: rows.map((r) => ({ ...normContent(r as Content), paid: num(r.paid), consumed_at: num(r.consumed_at) })) };
}

// ---------------------------------------------------------------------------------------------
// Files: upload (stored in the blob store under its real CID) and download of purchased content

export interface Upload {
  cid_v0: string;
  cid_v1: string;
  size: number;
  content_type: string;
}

export async function storeUpload(ctx: Ctx, app: AppRef, data: Buffer, contentType = 'application/octet-stream'): Promise<Upload> {
  if (data.length > ctx.config.uploadLimit) throw new DomainError('PAYLOAD_TOO_LARGE', `file larger than ${ctx.config.uploadLimit} bytes`);
  const { cidsOf } = await import('./ipfs.js');
  const cids = await cidsOf(data);
  const key = `ulord/${app.id}/${cids.v0}`;
  const type = /^[\w.+-]+\/[\w.+-]+$/.test(contentType) ? contentType : 'application/octet-stream';
  await ctx.blobs.put(key, data, { contentType: type, tenantId: app.tenantId });
  await ctx.db.kysely
    .insertInto('ledger_uploads')
    .values({ app_id: app.id, cid_v0: cids.v0, cid_v1: cids.v1, blob_key: key, size: data.length, content_type: type, created_at: ctx.clock.now() })
    .onConflict((oc) => oc.columns(['app_id', 'cid_v0']).doNothing())
    .execute();
  return { cid_v0: cids.v0, cid_v1: cids.v1, size: data.length, content_type: type };
}

/** The stored file of content the user bought (or wrote). */
export async function download(ctx: Ctx, appId: number, username: unknown, claimIdIn: unknown) {
  const w = await wallet(ctx, appId, username);
  const claimId = checkClaimId(claimIdIn);
  const c = await contentByClaim(ctx, appId, claimId);
  if (!c) throw new DomainError('CONTENT_UNKNOWN', `no content ${claimId}`, { field: 'claim_id' });
  if (c.author_id !== w.id) {
    const bought = await ctx.db.kysely.selectFrom('ledger_purchases').select('id').where('content_id', '=', c.id).where('customer_id', '=', w.id).executeTakeFirst();
    if (!bought) throw new DomainError('NOT_PURCHASED', 'consume this content before downloading it', { field: 'claim_id' });
  }
  const up = await ctx.db.kysely
    .selectFrom('ledger_uploads')
    .selectAll()
    .where('app_id', '=', appId)
    .where((eb) => eb.or([eb('cid_v0', '=', c.ipfs_hash), eb('cid_v1', '=', c.ipfs_hash)]))
    .executeTakeFirst();
  if (!up) throw new DomainError('NOT_FOUND', 'the file of this content was not uploaded here', { field: 'claim_id' });
  const { body, row } = await ctx.blobs.stream(up.blob_key);
  return { body, size: Number(row.size), contentType: up.content_type, content: c };
}
