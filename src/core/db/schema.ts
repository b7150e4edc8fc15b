import type { Generated, Insertable, Selectable, Updateable } from 'kysely';

/**
 * Table types. Conventions that hold on SQLite and PostgreSQL alike:
 * times are integer epoch milliseconds, booleans are 0/1 integers, lists are JSON text.
 */
export interface TenantTable {
  id: Generated<number>;
  name: string;
  created_at: number;
}

export interface RoleTable {
  id: Generated<number>;
  name: string;
  des: string;
}

export interface DeveloperTable {
  id: Generated<number>;
  tenant_id: number;
  username: string;
  email: string | null;
  telephone: string | null;
  password_hash: string;
  role_id: number;
  created_at: number;
  updated_at: number;
}

export interface SessionTable {
  /** sha256 of the session token; the token itself is never stored. */
  id: string;
  developer_id: number;
  created_at: number;
  expires_at: number;
}

export interface AppTypeTable {
  id: Generated<number>;
  parent_id: number | null;
  name: string;
  des: string;
}

export interface AppTable {
  id: Generated<number>;
  tenant_id: number;
  developer_id: number | null;
  type_id: number | null;
  name: string;
  description: string | null;
  key: string;
  secret_enc: string;
  prev_secret_enc: string | null;
  prev_secret_until: number | null;
  expires_at: number | null;
  blocked: number;
  /** JSON array of CIDR / addresses; empty array = any address. */
  ip_allow: string;
  /** JSON array of service names; ["*"] = all. */
  services: string;
  /** Requests per second; null = platform default. */
  rate_limit: number | null;
  created_at: number;
  updated_at: number;
}

export interface QuotaTable {
  tenant_id: number;
  service: string;
  /** Units still available (not counting those held). */
  remaining: number;
  /** Units held by reservations that are neither committed nor refunded. */
  held: number;
}

export interface QuotaHoldTable {
  id: string;
  tenant_id: number;
  service: string;
  amount: number;
  /** held | committed | refunded */
  state: string;
  created_at: number;
  settled_at: number | null;
}

export interface BlobTable {
  key: string;
  tenant_id: number | null;
  size: number;
  content_type: string;
  sha256: string;
  created_at: number;
  expires_at: number | null;
}

export interface JobTable {
  id: string;
  kind: string;
  tenant_id: number | null;
  payload: string;
  /** queued | running | done | failed */
  state: string;
  attempts: number;
  max_attempts: number;
  run_at: number;
  lease_until: number | null;
  worker: string | null;
  progress: number;
  result: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface SettingTable {
  key: string;
  value: string;
}

export interface DB {
  tenants: TenantTable;
  roles: RoleTable;
  developers: DeveloperTable;
  sessions: SessionTable;
  app_types: AppTypeTable;
  apps: AppTable;
  quotas: QuotaTable;
  quota_holds: QuotaHoldTable;
  blobs: BlobTable;
  jobs: JobTable;
  settings: SettingTable;
}

export type Tenant = Selectable<TenantTable>;
export type Developer = Selectable<DeveloperTable>;
export type Session = Selectable<SessionTable>;
export type AppRow = Selectable<AppTable>;
export type NewApp = Insertable<AppTable>;
export type AppUpdate = Updateable<AppTable>;
export type Job = Selectable<JobTable>;
export type BlobRow = Selectable<BlobTable>;
