import type { Generated } from 'kysely';
import { defineMigration } from '../../core/db/migrations.js';

export interface CodeTemplateTable {
  id: Generated<number>;
  tenant_id: number;
  /** The N of template number "MN", unique per tenant. */
  num: number;
  title: string;
  /** JSON: FieldDef[] in order. */
  fields: string;
  /** JSON: landing-page and QR style. */
  style: string;
  /** Dynamic-code API enabled (cli.im dialect). */
  api_enabled: number;
  /** The app (service `cli`) that holds this template's own api_key + secret + IP allow-list; null = the tenant's cli apps. */
  app_id: number | null;
  created_at: number;
  updated_at: number;
}

export interface CodeRecordTable {
  id: Generated<number>;
  tenant_id: number;
  template_id: number;
  link_id: number;
  /** JSON: normalised values, one per template field, in order. */
  values: string;
  version: number;
  created_at: number;
  updated_at: number;
}

export interface CodeRecordHistoryTable {
  id: Generated<number>;
  record_id: number;
  version: number;
  /** JSON of the values this version had. */
  values: string;
  /** who: api:<app id> | developer:<id> | import | native:<app id> */
  actor: string;
  at: number;
}

declare module '../../core/db/schema.js' {
  interface DB {
    code_templates: CodeTemplateTable;
    code_records: CodeRecordTable;
    code_record_history: CodeRecordHistoryTable;
  }
}

defineMigration('0110_codes', async (db, d) => {
  await d
    .id(db.schema.createTable('code_templates'))
    .addColumn('tenant_id', d.big, (c) => c.notNull().references('tenants.id'))
    .addColumn('num', 'integer', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('fields', 'text', (c) => c.notNull())
    .addColumn('style', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('api_enabled', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('app_id', d.big, (c) => c.references('apps.id').onDelete('set null'))
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('updated_at', d.big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('code_templates_num').unique().on('code_templates').columns(['tenant_id', 'num']).execute();

  await d
    .id(db.schema.createTable('code_records'))
    .addColumn('tenant_id', d.big, (c) => c.notNull().references('tenants.id'))
    .addColumn('template_id', d.big, (c) => c.notNull().references('code_templates.id'))
    .addColumn('link_id', d.big, (c) => c.notNull().references('links.id'))
    .addColumn('values', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('updated_at', d.big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('code_records_template').on('code_records').columns(['template_id', 'id']).execute();
  await db.schema.createIndex('code_records_link').unique().on('code_records').column('link_id').execute();

  await d
    .id(db.schema.createTable('code_record_history'))
    .addColumn('record_id', d.big, (c) => c.notNull().references('code_records.id').onDelete('cascade'))
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('values', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('at', d.big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('code_record_history_record').on('code_record_history').columns(['record_id', 'version']).execute();
});
