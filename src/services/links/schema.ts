import type { Generated } from 'kysely';
import { defineMigration } from '../../core/db/migrations.js';

export interface LinkTable {
  id: Generated<number>;
  /** The short code in /s/<code>: 8 characters of an unambiguous base-56 alphabet. */
  code: string;
  tenant_id: number;
  /** url | code | report */
  kind: string;
  /** What the link points at inside its service (a record id, a report id; for url links the URL or a caller's key). */
  target_ref: string;
  /** Redirect target for url links; null otherwise. */
  url: string | null;
  created_at: number;
  disabled: number;
}

export interface LinkScanTable {
  id: Generated<number>;
  link_id: number;
  tenant_id: number;
  at: number;
  /** mobile | tablet | desktop | bot | other */
  device: string;
  /** ios | android | windows | macos | linux | chromeos | other */
  os: string;
  referrer_host: string | null;
  /** a.b.c.0/24 or x:x:x::/48 — never the full address. */
  ip_prefix: string;
  /** sha256(ip + UTC day + server salt), hex: counts unique visitors per day without keeping addresses. */
  visitor: string;
  bot: number;
}

declare module '../../core/db/schema.js' {
  interface DB {
    links: LinkTable;
    link_scans: LinkScanTable;
  }
}

defineMigration('0100_links', async (db, d) => {
  await d
    .id(db.schema.createTable('links'))
    .addColumn('code', 'text', (c) => c.notNull().unique())
    .addColumn('tenant_id', d.big, (c) => c.notNull().references('tenants.id'))
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('target_ref', 'text', (c) => c.notNull())
    .addColumn('url', 'text')
    .addColumn('created_at', d.big, (c) => c.notNull())
    .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('links_target').unique().on('links').columns(['tenant_id', 'kind', 'target_ref']).execute();

  await d
    .id(db.schema.createTable('link_scans'))
    .addColumn('link_id', d.big, (c) => c.notNull().references('links.id').onDelete('cascade'))
    .addColumn('tenant_id', d.big, (c) => c.notNull())
    .addColumn('at', d.big, (c) => c.notNull())
    .addColumn('device', 'text', (c) => c.notNull())
    .addColumn('os', 'text', (c) => c.notNull())
    .addColumn('referrer_host', 'text')
    .addColumn('ip_prefix', 'text', (c) => c.notNull())
    .addColumn('visitor', 'text', (c) => c.notNull())
    .addColumn('bot', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.createIndex('link_scans_link_at').on('link_scans').columns(['link_id', 'at']).execute();
  await db.schema.createIndex('link_scans_tenant_at').on('link_scans').columns(['tenant_id', 'at']).execute();
});
