/**
 * Creates and alters the declared objects' tables from the schema, on SQLite and PostgreSQL.
 * Like JDCloud's upgrade tool it adds tables and columns and never drops or retypes anything.
 * Storage conventions (docs/bqp.md): decimals are integer hundredths, datetimes are
 * 'YYYY-MM-DD HH:MM:SS' text (so string comparisons in `cond` order correctly), flags 0/1 integers.
 */
import type { ColumnDataType, Kysely } from 'kysely';
import type { Database } from '../../core/db/index.js';
import type { FieldDef, Schema } from './schema.js';

function columnType(f: FieldDef, dialect: Database['dialect']): ColumnDataType {
  switch (f.type) {
    case 'int':
    case 'dec':
      return dialect === 'postgres' ? 'bigint' : 'integer';
    case 'flag':
      return 'integer';
    case 'real':
      return dialect === 'postgres' ? 'double precision' : 'real';
    case 'datetime':
      return 'varchar(19)';
    case 'date':
      return 'varchar(10)';
    case 'text':
      return f.len > 0 && dialect === 'postgres' ? (`varchar(${f.len})` as ColumnDataType) : 'text';
    case 'id':
      return 'integer';
  }
}

/** Brings the database in line with the schema; returns what it did, one line per change. */
export async function syncSchema(db: Database, schema: Schema): Promise<string[]> {
  const k = db.kysely as unknown as Kysely<any>;
  const done: string[] = [];
  const tables = new Map((await k.introspection.getTables()).map((t) => [t.name, new Set(t.columns.map((c) => c.name))]));
  for (const o of schema.objects.values()) {
    const have = tables.get(o.table);
    if (!have) {
      let b = k.schema.createTable(o.table);
      for (const name of o.order) {
        const f = o.fields.get(name)!;
        if (f.type === 'id') {
          b = db.dialect === 'postgres' ? b.addColumn('id', 'bigserial', (c) => c.primaryKey()) : b.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement());
        } else if (f.type === 'flag') {
          b = b.addColumn(name, 'integer', (c) => c.notNull().defaultTo(0));
        } else {
          b = b.addColumn(name, columnType(f, db.dialect));
        }
      }
      await b.execute();
      done.push(`create table ${o.table}`);
    } else {
      for (const name of o.order) {
        if (have.has(name)) continue;
        const f = o.fields.get(name)!;
        await k.schema
          .alterTable(o.table)
          .addColumn(name, columnType(f, db.dialect), (c) => (f.type === 'flag' ? c.notNull().defaultTo(0) : c))
          .execute();
        done.push(`add column ${o.table}.${name}`);
      }
    }
  }
  // Index every sub-table foreign key and joined key once.
  for (const o of schema.objects.values()) {
    for (const s of o.subobj.values()) {
      const child = schema.objects.get(s.obj)!;
      await k.schema.createIndex(`ix_${child.table}_${s.fk}`).ifNotExists().on(child.table).column(s.fk).execute();
    }
  }
  return done;
}
