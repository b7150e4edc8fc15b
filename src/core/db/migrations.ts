import { sql, type CreateTableBuilder, type Kysely, type Migration } from 'kysely';

export type SqlDialect = 'sqlite' | 'postgres';

/**
 * Helpers that hide the few places where SQLite and PostgreSQL DDL differ.
 * Every migration is written once with these and runs on both engines.
 */
export interface Ddl {
  dialect: SqlDialect;
  /** Auto-increment integer primary key named `id`. */
  id<T extends string>(t: CreateTableBuilder<T, never>): CreateTableBuilder<T, 'id'>;
  /** 64-bit integer type (epoch ms, amounts). */
  big: 'integer' | 'bigint';
}

export function ddlFor(dialect: SqlDialect): Ddl {
  return {
    dialect,
    id: (t) =>
      dialect === 'postgres'
        ? t.addColumn('id', 'bigserial', (c) => c.primaryKey())
        : t.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement()),
    big: dialect === 'postgres' ? 'bigint' : 'integer',
  };
}

/** A migration written against the Ddl helpers. Services add theirs to the registry below. */
export type PortableMigration = (db: Kysely<any>, d: Ddl) => Promise<void>;

const registry = new Map<string, PortableMigration>();

/** Registers a migration. Names sort lexically; prefix them with a number (`0001_kernel`). */
export function defineMigration(name: string, up: PortableMigration): void {
  if (registry.has(name)) throw new Error(`migration ${name} defined twice`);
  registry.set(name, up);
}

export function migrationsFor(dialect: SqlDialect): Record<string, Migration> {
  const d = ddlFor(dialect);
  const out: Record<string, Migration> = {};
  for (const [name, up] of [...registry.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    out[name] = { up: (db) => up(db, d) };
  }
  return out;
}

defineMigration('0001_kernel', async (db, d) => {
  await d.id(db.schema.createTable('tenants')).addColumn('name', 'text', (c) => c.notNull()).addColumn('created_at', d.big, (c) => c.notNull()).execute();

  await d
    .id(db.schema.createTable('roles'))
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('des', 'text', (c) => c.notNull().defaultTo(''))
    .execute();

  await d
    .id(db.schema.createTable('developers'))
    .addColumn('tenant_id', d.big, (c) => c.notNull().references('tenants.id'))
    .addColumn('username', 'text', (c) => c.notNull().unique())
    .addColumn('email', 'text', (c) => c.unique())
    .addColumn('telephone', 'text')
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('role_id', d.big, (c) => c.notNull().references('roles.id'))
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('updated_at', d.big, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('developers_tenant').on('developers').column('tenant_id').execute();

  await db.schema
    .createTable('sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('developer_id', d.big, (c) => c.notNull().references('developers.id').onDelete('cascade'))
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('expires_at', d.big, (c) => c.notNull())
    .execute();

  await d
    .id(db.schema.createTable('app_types'))
    .addColumn('parent_id', d.big, (c) => c.references('app_types.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('des', 'text', (c) => c.notNull().defaultTo(''))
    .execute();

  await d
    .id(db.schema.createTable('apps'))
    .addColumn('tenant_id', d.big, (c) => c.notNull().references('tenants.id'))
    .addColumn('developer_id', d.big, (c) => c.references('developers.id'))
    .addColumn('type_id', d.big, (c) => c.references('app_types.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('description', 'text')
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('secret_enc', 'text', (c) => c.notNull())
    .addColumn('prev_secret_enc', 'text')
    .addColumn('prev_secret_until', d.big)
    .addColumn('expires_at', d.big)
    .addColumn('blocked', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('ip_allow', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('services', 'text', (c) => c.notNull().defaultTo('["*"]'))
    .addColumn('rate_limit', 'integer')
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('updated_at', d.big, (c) => c.notNull())
    .execute();
  // A key is unique per service, not globally (the seeds' demo keys collide across dialects); accounts enforces it.
  await db.schema.createIndex('apps_key').on('apps').column('key').execute();
  await db.schema.createIndex('apps_tenant').on('apps').column('tenant_id').execute();
  await db.schema.createIndex('apps_developer').on('apps').column('developer_id').execute();

  await db.schema
    .createTable('quotas')
    .addColumn('tenant_id', d.big, (c) => c.notNull().references('tenants.id'))
    .addColumn('service', 'text', (c) => c.notNull())
    .addColumn('remaining', d.big, (c) => c.notNull().defaultTo(0))
    .addColumn('held', d.big, (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('quotas_pk', ['tenant_id', 'service'])
    .addCheckConstraint('quotas_nonneg', sql`remaining >= 0 and held >= 0`)
    .execute();

  await db.schema
    .createTable('quota_holds')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', d.big, (c) => c.notNull())
    .addColumn('service', 'text', (c) => c.notNull())
    .addColumn('amount', d.big, (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('settled_at', d.big)
    .execute();

  await db.schema
    .createTable('blobs')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', d.big)
    .addColumn('size', d.big, (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('expires_at', d.big)
    .execute();
  await db.schema.createIndex('blobs_expiry').on('blobs').column('expires_at').execute();

  await db.schema
    .createTable('jobs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('tenant_id', d.big)
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('run_at', d.big, (c) => c.notNull())
    .addColumn('lease_until', d.big)
    .addColumn('worker', 'text')
    .addColumn('progress', 'real', (c) => c.notNull().defaultTo(0))
    .addColumn('result', 'text')
    .addColumn('error', 'text')
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('updated_at', d.big, (c) => c.notNull())
    .addColumn('finished_at', d.big)
    .execute();
  await db.schema.createIndex('jobs_claim').on('jobs').columns(['state', 'run_at']).execute();

  await db.schema
    .createTable('settings')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();
});
