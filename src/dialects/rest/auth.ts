import type { FastifyRequest } from 'fastify';
import type { Ctx } from '../../core/context.js';
import type { App } from '../../core/credentials/apps.js';
import { verifyNative } from '../../core/credentials/verify.js';
import { DomainError } from '../../core/errors.js';
import { PLATFORM_TENANT, sessionDeveloper, type DeveloperView } from '../../services/accounts/index.js';
import { callInfo, header } from '../http.js';

export const SESSION_COOKIE = 'menhu_session';

/** Who is calling the native API. Operators act on every tenant; everyone else on their own. */
export type Principal =
  | { kind: 'app'; app: App; tenantId: number; operator: boolean }
  | { kind: 'developer'; developer: DeveloperView; tenantId: number; operator: boolean };

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
    principal?: Principal;
  }
  interface FastifyContextConfig {
    /** The route needs no credentials (login, OpenAPI). */
    public?: boolean;
  }
}

function sessionToken(req: FastifyRequest): string | undefined {
  const auth = header(req, 'authorization');
  if (auth && /^Bearer\s/i.test(auth)) {
    const t = auth.replace(/^Bearer\s+/i, '').trim();
    if (!t.includes('.')) return t; // API keys are <key>.<secret>; session tokens have no dot
  }
  return req.cookies?.[SESSION_COOKIE];
}

export async function resolvePrincipal(ctx: Ctx, req: FastifyRequest): Promise<Principal | null> {
  const tok = sessionToken(req);
  if (tok) {
    const d = await sessionDeveloper(ctx, tok);
    if (!d) throw new DomainError('NOT_LOGGED_IN', 'session expired or unknown; log in again');
    if (d.role === 'blocked') throw new DomainError('USER_BLOCKED', 'this developer is blocked');
    return { kind: 'developer', developer: d, tenantId: d.tenantId, operator: d.role === 'admin' };
  }
  const q = req.url.indexOf('?');
  const app = await verifyNative(
    ctx,
    {
      method: req.method,
      path: q < 0 ? req.url : req.url.slice(0, q),
      query: q < 0 ? '' : req.url.slice(q + 1),
      body: req.rawBody ?? Buffer.alloc(0),
      headers: req.headers,
    },
    callInfo(req),
  );
  return app ? appPrincipal(app) : null;
}

/** The principal of a proved app: operators are the platform tenant's apps. */
export const appPrincipal = (app: App): Principal => ({ kind: 'app', app, tenantId: app.tenantId, operator: app.tenantId === PLATFORM_TENANT });

/** The refusal of a call that brought no credentials. */
export const notLoggedIn = () => new DomainError('NOT_LOGGED_IN', 'authenticate with Authorization: Bearer <key>.<secret>, HMAC request signing, or a session');

export function requirePrincipal(req: FastifyRequest): Principal {
  if (!req.principal) throw notLoggedIn();
  return req.principal;
}

export function requireOperator(req: FastifyRequest): Principal {
  const p = requirePrincipal(req);
  if (!p.operator) throw new DomainError('FORBIDDEN', 'only operators may do this');
  return p;
}

/** The tenant a call acts on: its own, or (for operators) the one asked for. */
export function tenantScope(p: Principal, asked: number | undefined): number | undefined {
  if (p.operator) return asked;
  if (asked !== undefined && asked !== p.tenantId) throw new DomainError('FORBIDDEN', 'that tenant is not yours');
  return p.tenantId;
}
