/**
 * The request log's event of an answered API request, shared by the onResponse hook (requests.ts)
 * and the lanes that answer before Fastify (rest/lane.ts, bqp). Type imports only, so that any
 * dialect can use it without pulling in the others.
 */
import type { App } from '../core/credentials/apps.js';
import type { RequestEvent } from '../services/usage/index.js';
import type { Principal } from './rest/auth.js';

/**
 * The request log's event for an answered request (the hook below, and the native API's lane): the
 * app is the one the credential path proved, else the native principal's; the tenant is the app's,
 * else the principal's.
 */
export function apiEvent(
  now: number,
  r: { service: string; method: string; route: string; status: number; elapsedMs: number; ip: string; code: string | null; app: App | undefined; principal: Principal | undefined },
): RequestEvent {
  const p = r.principal;
  const app = r.app ?? (p?.kind === 'app' ? p.app : undefined);
  return {
    at: Math.round(now - r.elapsedMs),
    tenantId: app ? app.tenantId : p ? p.tenantId : null,
    appId: app ? app.id : null,
    service: r.service,
    method: r.method,
    route: r.route,
    status: r.status,
    durationUs: Math.round(r.elapsedMs * 1000),
    ip: r.ip,
    code: r.code,
  };
}

