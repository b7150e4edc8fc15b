import { defineMigration } from '../../core/db/migrations.js';

/** One row per uploaded photo job; the job's state lives in the kernel's `jobs` row of the same id. */
export interface PhotoJobTable {
  /** The job id, also the Fangtang `mdf`: 32 hex digits. */
  id: string;
  tenant_id: number;
  app_id: number;
  /** repair_type as sent (normalised). */
  repair_type: string;
  /** JSON [r,g,b] for bg, else null. */
  rgb: string | null;
  input_key: string;
  input_type: string;
  result_key: string | null;
  hold_id: string;
  created_at: number;
  finished_at: number | null;
  /** After this, inputs and results are gone: status and download answer "not found". */
  expires_at: number | null;
}

declare module '../../core/db/schema.js' {
  interface DB {
    photo_jobs: PhotoJobTable;
  }
}

defineMigration('0400_photos', async (db, d) => {
  await db.schema
    .createTable('photo_jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', d.big, (c) => c.notNull().references('tenants.id'))
    .addColumn('app_id', d.big, (c) => c.notNull())
    .addColumn('repair_type', 'text', (c) => c.notNull())
    .addColumn('rgb', 'text')
    .addColumn('input_key', 'text', (c) => c.notNull())
    .addColumn('input_type', 'text', (c) => c.notNull())
    .addColumn('result_key', 'text')
    .addColumn('hold_id', 'text', (c) => c.notNull())
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('finished_at', d.big)
    .addColumn('expires_at', d.big)
    .execute();
  await db.schema.createIndex('photo_jobs_tenant').on('photo_jobs').columns(['tenant_id', 'created_at']).execute();
  await db.schema.createIndex('photo_jobs_expiry').on('photo_jobs').column('expires_at').execute();
});
