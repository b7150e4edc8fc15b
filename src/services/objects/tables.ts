/** Platform tables of the objects service: login sessions and uploaded files. */
import type { Generated } from 'kysely';
import { defineMigration } from '../../core/db/migrations.js';

export interface BqpSessionTable {
  /** sha256 of the cookie token */
  id: string;
  /** app type: user, emp, admin */
  app: string;
  /** JSON: {uid} / {empId, perms} / {adminId} */
  data: string;
  created_at: number;
  expires_at: number;
}

export interface BqpFileTable {
  id: Generated<number>;
  blob_key: string;
  org_name: string;
  mime: string;
  size: number;
  /** thumbnail row: id of its original; original row: minus the id of its thumbnail (as JDCloud) */
  org_pic_id: number | null;
  created_by: string | null;
  created_at: number;
}

/** genCode: one pending verification code per (app type, phone). */
export interface BqpCodeTable {
  /** sha256 of `${app}:${phone}` */
  id: string;
  /** sha256 of the code */
  code_hash: string;
  created_at: number;
  expires_at: number;
  /** wrong guesses so far (5 ends the code) */
  tries: number;
}

declare module '../../core/db/schema.js' {
  interface DB {
    bqp_sessions: BqpSessionTable;
    bqp_files: BqpFileTable;
    bqp_codes: BqpCodeTable;
  }
}

defineMigration('0500_bqp_sessions', async (db, d) => {
  await db.schema
    .createTable('bqp_sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('app', 'text', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('expires_at', d.big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('bqp_sessions_expiry').on('bqp_sessions').column('expires_at').execute();
});

defineMigration('0501_bqp_files', async (db, d) => {
  await d
    .id(db.schema.createTable('bqp_files'))
    .addColumn('blob_key', 'text', (c) => c.notNull())
    .addColumn('org_name', 'text', (c) => c.notNull())
    .addColumn('mime', 'text', (c) => c.notNull())
    .addColumn('size', d.big, (c) => c.notNull())
    .addColumn('org_pic_id', d.big)
    .addColumn('created_by', 'text')
    .addColumn('created_at', d.big, (c) => c.notNull())
    .execute();
});

defineMigration('0502_bqp_codes', async (db, d) => {
  await db.schema
    .createTable('bqp_codes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('expires_at', d.big, (c) => c.notNull())
    .addColumn('tries', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
});
