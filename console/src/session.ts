import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { ApiDoc } from './api';

export interface Tenant {
  id: number;
  name: string;
  created_at: number;
}

export interface Me {
  kind: 'developer' | 'app';
  tenant_id: number;
  operator: boolean;
  tenant: Tenant;
  developer?: { id: number; username: string; role: string; tenant_id: number };
}

export interface Session {
  me: Me;
  doc: ApiDoc | undefined;
  /** Tenants this session may see (operators: all; developers: their own). */
  tenants: Tenant[];
  reloadTenants: () => void;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('no session');
  return s;
}
