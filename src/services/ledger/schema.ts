import { sql } from 'kysely';
import { defineMigration } from '../../core/db/migrations.js';

/**
 * Ledger tables. Accounts hold integer balances (1e-8 ULD); transfers are immutable rows, each one
 * a debit and a credit of the same amount (double entry). The database itself refuses a negative
 * balance on any account but the issuing account.
 */
export interface LedgerAccountTable {
  id: import('kysely').Generated<number>;
  tenant_id: number;
  /** The app a wallet belongs to; 0 for developer accounts and the issuing account. */
  app_id: number;
  /** issuer | developer | wallet */
  kind: string;
  /** wallet: its username; developer: the developer id; issuer: "platform" */
  owner: string;
  /** spendable (confirmed) units */
  balance: number;
  /** income still held (unmatured) units */
  pending: number;
  /** scrypt hash of the pay password (wallets) */
  pay_hash: string | null;
  failed_count: number;
  locked_until: number;
  created_at: number;
}

export interface LedgerTransferTable {
  id: import('kysely').Generated<number>;
  /** 64 hex: sha256 of the transfer's content */
  txid: string;
  /** who owns the idempotency key space: app:<id> or op */
  idem_scope: string;
  idem_key: string;
  /** sha256 of what the request asked for; a reused key with another hash is refused */
  request_hash: string;
  tenant_id: number;
  app_id: number;
  debit_id: number;
  credit_id: number;
  amount: number;
  /** fund | pay | consume | ad */
  kind: string;
  content_id: number | null;
  matures_at: number;
  created_at: number;
}

export interface LedgerHoldTable {
  id: import('kysely').Generated<number>;
  account_id: number;
  transfer_id: number;
  amount: number;
  matures_at: number;
  released: number;
}

export interface LedgerContentTable {
  id: import('kysely').Generated<number>;
  tenant_id: number;
  app_id: number;
  author_id: number;
  author: string;
  claim_id: string;
  title: string;
  /** JSON array of strings */
  tags: string;
  ipfs_hash: string;
  /** units; negative = an ad that pays its consumers */
  price: number;
  content_type: string;
  des: string;
  status: number;
  created_at: number;
  updated_at: number | null;
}

export interface LedgerPurchaseTable {
  id: import('kysely').Generated<number>;
  app_id: number;
  content_id: number;
  customer_id: number;
  customer: string;
  author_id: number;
  price: number;
  transfer_id: number | null;
  txid: string;
  created_at: number;
}

export interface LedgerUploadTable {
  app_id: number;
  cid_v0: string;
  cid_v1: string;
  blob_key: string;
  size: number;
  content_type: string;
  created_at: number;
}

declare module '../../core/db/schema.js' {
  interface DB {
    ledger_uploads: LedgerUploadTable;
    ledger_accounts: LedgerAccountTable;
    ledger_transfers: LedgerTransferTable;
    ledger_holds: LedgerHoldTable;
    ledger_contents: LedgerContentTable;
    ledger_purchases: LedgerPurchaseTable;
  }
}

defineMigration('0300_ledger', async (db, d) => {
  await d
    .id(db.schema.createTable('ledger_accounts'))
    .addColumn('tenant_id', d.big, (c) => c.notNull())
    .addColumn('app_id', d.big, (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('balance', d.big, (c) => c.notNull().defaultTo(0))
    .addColumn('pending', d.big, (c) => c.notNull().defaultTo(0))
    .addColumn('pay_hash', 'text')
    .addColumn('failed_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('locked_until', d.big, (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addUniqueConstraint('ledger_accounts_owner', ['app_id', 'kind', 'owner'])
    .addCheckConstraint('ledger_accounts_nonneg', sql`(balance >= 0 or kind = 'issuer') and pending >= 0`)
    .execute();
  await db.schema.createIndex('ledger_accounts_tenant').on('ledger_accounts').column('tenant_id').execute();

  await d
    .id(db.schema.createTable('ledger_transfers'))
    .addColumn('txid', 'text', (c) => c.notNull().unique())
    .addColumn('idem_scope', 'text', (c) => c.notNull())
    .addColumn('idem_key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('tenant_id', d.big, (c) => c.notNull())
    .addColumn('app_id', d.big, (c) => c.notNull())
    .addColumn('debit_id', d.big, (c) => c.notNull().references('ledger_accounts.id'))
    .addColumn('credit_id', d.big, (c) => c.notNull().references('ledger_accounts.id'))
    .addColumn('amount', d.big, (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('content_id', d.big)
    .addColumn('matures_at', d.big, (c) => c.notNull())
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addUniqueConstraint('ledger_transfers_idem', ['idem_scope', 'idem_key'])
    .addCheckConstraint('ledger_transfers_positive', sql`amount > 0 and debit_id <> credit_id`)
    .execute();
  await db.schema.createIndex('ledger_transfers_debit').on('ledger_transfers').columns(['debit_id', 'id']).execute();
  await db.schema.createIndex('ledger_transfers_credit').on('ledger_transfers').columns(['credit_id', 'id']).execute();
  await db.schema.createIndex('ledger_transfers_app').on('ledger_transfers').columns(['app_id', 'id']).execute();

  await d
    .id(db.schema.createTable('ledger_holds'))
    .addColumn('account_id', d.big, (c) => c.notNull().references('ledger_accounts.id'))
    .addColumn('transfer_id', d.big, (c) => c.notNull().references('ledger_transfers.id'))
    .addColumn('amount', d.big, (c) => c.notNull())
    .addColumn('matures_at', d.big, (c) => c.notNull())
    .addColumn('released', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('ledger_holds_open').on('ledger_holds').columns(['account_id', 'released', 'matures_at']).execute();

  await d
    .id(db.schema.createTable('ledger_contents'))
    .addColumn('tenant_id', d.big, (c) => c.notNull())
    .addColumn('app_id', d.big, (c) => c.notNull())
    .addColumn('author_id', d.big, (c) => c.notNull().references('ledger_accounts.id'))
    .addColumn('author', 'text', (c) => c.notNull())
    .addColumn('claim_id', 'text', (c) => c.notNull().unique())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('tags', 'text', (c) => c.notNull())
    .addColumn('ipfs_hash', 'text', (c) => c.notNull())
    .addColumn('price', d.big, (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('des', 'text', (c) => c.notNull())
    .addColumn('status', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('updated_at', d.big)
    .execute();
  await db.schema.createIndex('ledger_contents_app').on('ledger_contents').columns(['app_id', 'id']).execute();
  await db.schema.createIndex('ledger_contents_author').on('ledger_contents').columns(['author_id', 'id']).execute();

  await d
    .id(db.schema.createTable('ledger_purchases'))
    .addColumn('app_id', d.big, (c) => c.notNull())
    .addColumn('content_id', d.big, (c) => c.notNull().references('ledger_contents.id'))
    .addColumn('customer_id', d.big, (c) => c.notNull().references('ledger_accounts.id'))
    .addColumn('customer', 'text', (c) => c.notNull())
    .addColumn('author_id', d.big, (c) => c.notNull())
    .addColumn('price', d.big, (c) => c.notNull())
    .addColumn('transfer_id', d.big, (c) => c.references('ledger_transfers.id'))
    .addColumn('txid', 'text', (c) => c.notNull())
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addUniqueConstraint('ledger_purchases_once', ['content_id', 'customer_id'])
    .execute();
  await db.schema.createIndex('ledger_purchases_customer').on('ledger_purchases').columns(['customer_id', 'id']).execute();
  await db.schema.createIndex('ledger_purchases_author').on('ledger_purchases').columns(['author_id', 'id']).execute();
});

defineMigration('0301_ledger_uploads', async (db, d) => {
  await db.schema
    .createTable('ledger_uploads')
    .addColumn('app_id', d.big, (c) => c.notNull())
    .addColumn('cid_v0', 'text', (c) => c.notNull())
    .addColumn('cid_v1', 'text', (c) => c.notNull())
    .addColumn('blob_key', 'text', (c) => c.notNull())
    .addColumn('size', d.big, (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addPrimaryKeyConstraint('ledger_uploads_pk', ['app_id', 'cid_v0'])
    .execute();
  await db.schema.createIndex('ledger_uploads_v1').on('ledger_uploads').columns(['app_id', 'cid_v1']).execute();
});
