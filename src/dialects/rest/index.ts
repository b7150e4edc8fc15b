/**
 * The native REST API under /rest/v1: one TypeBox schema per request and response, used for
 * validation, types and the OpenAPI document at /rest/v1/openapi.json (docs page at /rest/v1/docs).
 * Errors are RFC 9457 problem+json.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../../core/context.js';
import { createApp, deleteApp, getApp, listApps, publicApp, rotateSecret, updateApp, SERVICES } from '../../core/credentials/apps.js';
import { DomainError } from '../../core/errors.js';
import { addQuota, remainingQuota } from '../../core/limits/quotas.js';
import { MODULES } from '../../modules/index.js';
import * as accounts from '../../services/accounts/index.js';
import type { NativeLane } from './lane.js';
import { ProblemSchema, sendProblem } from './problem.js';
import { requireOperator, requirePrincipal, resolvePrincipal, SESSION_COOKIE, tenantScope, type Principal } from './auth.js';

export const REST_PREFIX = '/rest/v1';

// ---------------------------------------------------------------------------------------------
// Schemas

/**
 * `T | null` for response schemas, as a JSON Schema type list (`"type": ["integer", "null"]`, OpenAPI
 * 3.1): the response serializer writes it with a typeof check, where an anyOf (Type.Union) makes it
 * run a validator per branch on every value.
 */
const Nullable = <T extends TSchema & { type: string }>(t: T) => Type.Unsafe<Static<T> | null>({ ...t, type: [t.type, 'null'] });

const Id = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
const IdParams = Type.Object({ id: Id });
const Name = Type.String({ minLength: 1, maxLength: 200 });

const TenantOut = Type.Object({ id: Type.Integer(), name: Type.String(), created_at: Type.Integer() });
const DeveloperOut = Type.Object({
  id: Type.Integer(),
  tenant_id: Type.Integer(),
  username: Type.String(),
  email: Nullable(Type.String()),
  telephone: Nullable(Type.String()),
  role: Type.String(),
});
const AppOut = Type.Object({
  id: Type.Integer(),
  tenant_id: Type.Integer(),
  developer_id: Nullable(Type.Integer()),
  type_id: Nullable(Type.Integer()),
  name: Type.String(),
  description: Nullable(Type.String()),
  key: Type.String(),
  expires_at: Nullable(Type.Integer()),
  blocked: Type.Boolean(),
  ip_allow: Type.Array(Type.String()),
  services: Type.Array(Type.String()),
  rate_limit: Nullable(Type.Integer()),
  secret_rotated_until: Nullable(Type.Integer()),
  created_at: Type.Integer(),
  updated_at: Type.Integer(),
});
const AppWithSecret = Type.Composite([AppOut, Type.Object({ secret: Type.String({ description: 'shown once' }) })]);
const Services = Type.Array(Type.Union([Type.Literal('*'), ...SERVICES.map((s) => Type.Literal(s))]), { maxItems: 16 });
const IpAllow = Type.Array(Type.String({ maxLength: 64 }), { maxItems: 256 });
const AppCreate = Type.Object(
  {
    name: Name,
    description: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 2000 })])),
    tenant_id: Type.Optional(Id),
    type_id: Type.Optional(Type.Union([Type.Null(), Id])),
    services: Type.Optional(Services),
    ip_allow: Type.Optional(IpAllow),
    rate_limit: Type.Optional(Type.Union([Type.Null(), Type.Integer({ minimum: 0 })])),
    expires_at: Type.Optional(Type.Union([Type.Null(), Type.Integer({ minimum: 0 })])),
  },
  { additionalProperties: false },
);
const AppPatch = Type.Object(
  {
    name: Type.Optional(Name),
    description: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 2000 })])),
    type_id: Type.Optional(Type.Union([Type.Null(), Id])),
    services: Type.Optional(Services),
    ip_allow: Type.Optional(IpAllow),
    rate_limit: Type.Optional(Type.Union([Type.Null(), Type.Integer({ minimum: 0 })])),
    expires_at: Type.Optional(Type.Union([Type.Null(), Type.Integer({ minimum: 0 })])),
    blocked: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const AppTypeNode = Type.Recursive(
  (Self) =>
    Type.Object({
      id: Type.Integer(),
      name: Type.String(),
      des: Type.String(),
      parent_id: Type.Union([Type.Integer(), Type.Null()]),
      children: Type.Optional(Type.Array(Self)),
    }),
  { $id: 'AppTypeNode' },
);
const AppTypeIn = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 100 }), des: Type.Optional(Type.String({ maxLength: 1000 })), parent_id: Type.Optional(Type.Union([Type.Null(), Id])) },
  { additionalProperties: false },
);
const Credentials = Type.Object({ username: Type.String({ minLength: 1, maxLength: 64 }), password: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false });

const toTenant = (t: { id: number; name: string; created_at: number }) => ({ id: Number(t.id), name: t.name, created_at: Number(t.created_at) });
const toDev = (d: accounts.DeveloperView) => ({ id: d.id, tenant_id: d.tenantId, username: d.username, email: d.email, telephone: d.telephone, role: d.role });

const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Type.Ref(ProblemSchema)]));
const std = errors(400, 401, 403, 404, 409, 429);

// ---------------------------------------------------------------------------------------------

export async function restDialect(app: FastifyInstance, opts: { ctx: Ctx; lane: NativeLane }): Promise<void> {
  const { ctx, lane } = opts;

  await app.register(swagger, {
    // components are named by their $id (Problem, AppTypeNode) rather than def-0, def-1
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: { title: 'menhu native API', version: '1', description: 'Native REST API of menhu. Authenticate with `Authorization: Bearer <key>.<secret>`, HMAC request signing (X-Menhu-Key, X-Menhu-Timestamp, X-Menhu-Nonce, X-Menhu-Signature), or a session token from POST /rest/v1/sessions.' },
      servers: [{ url: ctx.config.publicUrl }],
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: '<key>.<secret> of an app enabled for service `native`, or a session token' },
          hmac: { type: 'apiKey', in: 'header', name: 'X-Menhu-Signature', description: 'hex HMAC-SHA256(secret, METHOD\\nPATH\\nCANONICAL_QUERY\\nTIMESTAMP\\nNONCE\\nhex(SHA256(body)))' },
        },
      },
      security: [{ bearer: [] }, { hmac: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  const DOCS_PREFIX = `${REST_PREFIX}/docs`;
  app.addSchema(ProblemSchema);
  app.addSchema(AppTypeNode);

  // Keep the raw body: HMAC signs the bytes as sent.
  // The native API speaks JSON only: other bodies are 415, not guessed at.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body: Buffer, done) => {
    req.rawBody = body;
    if (body.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(body.toString('utf8')));
    } catch {
      const e = new Error('request body is not valid JSON') as Error & { statusCode: number };
      e.statusCode = 400;
      done(e, undefined);
    }
  });

  app.setErrorHandler((err, req, reply) => sendProblem(req, reply, err));
  app.setNotFoundHandler((req, reply) => sendProblem(req, reply, new DomainError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)));

  // Authenticate before validating: a caller without credentials learns nothing about the schemas.
  // (After parsing, because HMAC signs the raw body.)
  // Routes not marked `config: { public: true }` refuse callers without credentials here.
  app.addHook('preValidation', async (req) => {
    const route = req.routeOptions; // a getter that builds a fresh object each time
    if (route.config?.public || route.url?.startsWith(DOCS_PREFIX)) return;
    const p = await resolvePrincipal(ctx, req);
    if (p) req.principal = p;
    else requirePrincipal(req);
  });
  // A body without a content type is not guessed at.
  app.addHook('onRequest', (req, _reply, done) => {
    const len = req.headers['content-length'];
    if (!req.headers['content-type'] && ((len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined)) {
      done(new DomainError('UNSUPPORTED_MEDIA', 'a request body needs a Content-Type (application/json)'));
    } else done();
  });

  app.get('/openapi.json', { schema: { hide: true }, config: { public: true } }, async () => app.swagger());

  const who = (p: Principal) =>
    p.kind === 'app'
      ? { kind: 'app' as const, tenant_id: p.tenantId, operator: p.operator, app: publicApp(p.app) }
      : { kind: 'developer' as const, tenant_id: p.tenantId, operator: p.operator, developer: toDev(p.developer) };

  // --- sessions --------------------------------------------------------------------------------
  app.post<{ Body: Static<typeof Credentials> }>(
    '/sessions',
    {
      config: { public: true },
      schema: { tags: ['sessions'], summary: 'Log in as a developer', body: Credentials, response: { 201: Type.Object({ token: Type.String(), expires_at: Type.Integer(), developer: DeveloperOut }), ...errors(400, 401, 403, 404) } },
    },
    async (req, reply) => {
      const s = await accounts.login(ctx, req.body.username, req.body.password);
      reply.setCookie(SESSION_COOKIE, s.token, { path: '/', httpOnly: true, sameSite: 'lax', expires: new Date(s.expiresAt) });
      return reply.code(201).send({ token: s.token, expires_at: s.expiresAt, developer: toDev(s.developer) });
    },
  );
  app.delete('/sessions', { config: { public: true }, schema: { tags: ['sessions'], summary: 'Log out (harmless when the session is already gone)', response: { 204: Type.Null() } } }, async (req, reply) => {
    const tok = req.cookies?.[SESSION_COOKIE] ?? (req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
    if (tok && !tok.includes('.')) await accounts.logout(ctx, tok);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.code(204).send();
  });

  // plain reads: answered by the fast lane as well when an app calls with its API key (lane.ts)
  lane.read(app, '/me', { schema: { tags: ['sessions'], summary: 'Who is calling', response: { 200: Type.Object({ kind: Type.String(), tenant_id: Type.Integer(), operator: Type.Boolean(), tenant: TenantOut, app: Type.Optional(AppOut), developer: Type.Optional(DeveloperOut) }), ...std } } }, async (p) => {
    const t = await accounts.getTenant(ctx, p.tenantId);
    return { ...who(p), tenant: toTenant(t!) };
  });

  // --- tenants ---------------------------------------------------------------------------------
  lane.read(app, '/tenants', { schema: { tags: ['tenants'], summary: 'List tenants (operators: all; others: their own)', response: { 200: Type.Array(TenantOut), ...std } } }, async (p) => {
    const all = await accounts.listTenants(ctx);
    return all.filter((t) => p.operator || Number(t.id) === p.tenantId).map(toTenant);
  });
  app.post<{ Body: { name: string } }>(
    '/tenants',
    { schema: { tags: ['tenants'], summary: 'Create a tenant (operators)', body: Type.Object({ name: Name }, { additionalProperties: false }), response: { 201: TenantOut, ...std } } },
    async (req, reply) => {
      requireOperator(req);
      return reply.code(201).send(toTenant(await accounts.createTenant(ctx, req.body.name)));
    },
  );

  // --- developers ------------------------------------------------------------------------------
  const DevQuery = Type.Object({ tenant_id: Type.Optional(Id) }, { additionalProperties: false });
  app.get<{ Querystring: Static<typeof DevQuery> }>('/developers', { schema: { tags: ['developers'], querystring: DevQuery, response: { 200: Type.Array(DeveloperOut), ...std } } }, async (req) => {
    const p = requirePrincipal(req);
    return (await accounts.listDevelopers(ctx, tenantScope(p, req.query.tenant_id))).map(toDev);
  });
  const DevCreate = Type.Object(
    {
      username: Type.String({ minLength: 1, maxLength: 64 }),
      password: Type.String({ minLength: 4, maxLength: 200 }),
      email: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 200 })])),
      telephone: Type.Optional(Type.Union([Type.Null(), Type.String({ maxLength: 40 })])),
      role: Type.Optional(Type.String({ maxLength: 100 })),
      tenant_id: Type.Optional(Id),
    },
    { additionalProperties: false },
  );
  app.post<{ Body: Static<typeof DevCreate> }>('/developers', { schema: { tags: ['developers'], summary: 'Create a developer (operators: any tenant and role; others: normal developers in their tenant)', body: DevCreate, response: { 201: DeveloperOut, ...std } } }, async (req, reply) => {
    const p = requirePrincipal(req);
    if (!p.operator && req.body.role && req.body.role !== 'normal') throw new DomainError('FORBIDDEN', 'only operators grant roles other than normal');
    const tenantId = tenantScope(p, req.body.tenant_id);
    const d = await accounts.registerDeveloper(ctx, { ...req.body, tenantId });
    return reply.code(201).send(toDev(d));
  });
  app.patch<{ Params: { id: number }; Body: { role: string } }>(
    '/developers/:id',
    { schema: { tags: ['developers'], summary: 'Change a developer role (operators)', params: IdParams, body: Type.Object({ role: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false }), response: { 200: DeveloperOut, ...std } } },
    async (req) => {
      requireOperator(req);
      return toDev(await accounts.setDeveloperRole(ctx, req.params.id, req.body.role));
    },
  );

  // --- roles ---------------------------------------------------------------------------------
  const RoleOut = Type.Object({ id: Type.Integer(), name: Type.String(), des: Type.String() });
  lane.read(app, '/roles', { schema: { tags: ['developers'], summary: 'Developer roles (admin = operator, normal, blocked, and any added)', response: { 200: Type.Array(RoleOut), ...std } } }, async () => {
    return (await accounts.listRoles(ctx)).map((r) => ({ id: Number(r.id), name: r.name, des: r.des }));
  });
  const RoleIn = Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }), des: Type.Optional(Type.String({ maxLength: 1000 })) }, { additionalProperties: false });
  app.post<{ Body: Static<typeof RoleIn> }>('/roles', { schema: { tags: ['developers'], summary: 'Add a role (operators)', body: RoleIn, response: { 201: Type.Object({ id: Type.Integer() }), ...std } } }, async (req, reply) => {
    requireOperator(req);
    return reply.code(201).send({ id: await accounts.addRole(ctx, req.body.name, req.body.des ?? '') });
  });

  // --- app types -------------------------------------------------------------------------------
  app.get('/app-types', { schema: { tags: ['app types'], summary: 'The app type tree', response: { 200: Type.Array(Type.Ref(AppTypeNode)), ...std } } }, async (req) => {
    requirePrincipal(req);
    return accounts.appTypeTree(ctx);
  });
  app.post<{ Body: Static<typeof AppTypeIn> }>('/app-types', { schema: { tags: ['app types'], body: AppTypeIn, response: { 201: Type.Object({ id: Type.Integer() }), ...std } } }, async (req, reply) => {
    requireOperator(req);
    return reply.code(201).send({ id: await accounts.addAppType(ctx, { name: req.body.name, des: req.body.des, parentId: req.body.parent_id }) });
  });
  app.put<{ Params: { id: number }; Body: Static<typeof AppTypeIn> }>('/app-types/:id', { schema: { tags: ['app types'], params: IdParams, body: AppTypeIn, response: { 204: Type.Null(), ...std } } }, async (req, reply) => {
    requireOperator(req);
    await accounts.editAppType(ctx, req.params.id, { name: req.body.name, des: req.body.des, parentId: req.body.parent_id });
    return reply.code(204).send();
  });
  app.delete<{ Params: { id: number } }>('/app-types/:id', { schema: { tags: ['app types'], params: IdParams, response: { 204: Type.Null(), ...std } } }, async (req, reply) => {
    requireOperator(req);
    if ((await accounts.removeAppType(ctx, req.params.id)) === 0) throw new DomainError('NOT_FOUND', `no app type ${req.params.id}`);
    return reply.code(204).send();
  });

  // --- apps ------------------------------------------------------------------------------------
  async function ownApp(req: FastifyRequest, id: number) {
    const p = requirePrincipal(req);
    const a = await getApp(ctx, id);
    if (!a || (!p.operator && a.tenantId !== p.tenantId)) throw new DomainError('NOT_FOUND', `no app ${id}`);
    return { p, a };
  }
  const AppQuery = Type.Object({ tenant_id: Type.Optional(Id) }, { additionalProperties: false });
  app.get<{ Querystring: Static<typeof AppQuery> }>('/apps', { schema: { tags: ['apps'], querystring: AppQuery, response: { 200: Type.Array(AppOut), ...std } } }, async (req) => {
    const p = requirePrincipal(req);
    return (await listApps(ctx, { tenantId: tenantScope(p, req.query.tenant_id) })).map(publicApp);
  });
  app.post<{ Body: Static<typeof AppCreate> }>('/apps', { schema: { tags: ['apps'], summary: 'Create an app; the answer carries its secret, shown this once', body: AppCreate, response: { 201: AppWithSecret, ...std } } }, async (req, reply) => {
    const p = requirePrincipal(req);
    const b = req.body;
    const a = await createApp(ctx, {
      tenantId: tenantScope(p, b.tenant_id) ?? p.tenantId,
      developerId: p.kind === 'developer' ? p.developer.id : p.app.developerId,
      name: b.name,
      description: b.description,
      typeId: b.type_id,
      services: b.services,
      ipAllow: b.ip_allow,
      rateLimit: b.rate_limit,
      expiresAt: b.expires_at,
    });
    return reply.code(201).send({ ...publicApp(a), secret: a.secret });
  });
  app.get<{ Params: { id: number } }>('/apps/:id', { schema: { tags: ['apps'], params: IdParams, response: { 200: AppOut, ...std } } }, async (req) => publicApp((await ownApp(req, req.params.id)).a));
  app.patch<{ Params: { id: number }; Body: Static<typeof AppPatch> }>('/apps/:id', { schema: { tags: ['apps'], summary: 'Change an app: block, IP allow-list, rate limit, services, expiry', params: IdParams, body: AppPatch, response: { 200: AppOut, ...std } } }, async (req) => {
    await ownApp(req, req.params.id);
    const b = req.body;
    return publicApp(
      await updateApp(ctx, req.params.id, { name: b.name, description: b.description, typeId: b.type_id, services: b.services, ipAllow: b.ip_allow, rateLimit: b.rate_limit, expiresAt: b.expires_at, blocked: b.blocked }),
    );
  });
  const Rotate = Type.Object({ grace_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 30 * 24 * 3600 })) }, { additionalProperties: false });
  app.post<{ Params: { id: number }; Body: Static<typeof Rotate> | undefined }>(
    '/apps/:id/rotate',
    {
      schema: { tags: ['apps'], summary: 'New secret; the previous one stays valid for grace_seconds (default MENHU_SECRET_GRACE)', params: IdParams, body: Rotate, response: { 200: AppWithSecret, ...std } },
      // the body is optional: no body means the default grace
      preValidation: async (req) => {
        if (req.body === undefined || req.body === null) req.body = {};
      },
    },
    async (req) => {
      await ownApp(req, req.params.id);
      const r = await rotateSecret(ctx, req.params.id, req.body?.grace_seconds);
      return { ...publicApp(r.app), secret: r.secret };
    },
  );
  app.delete<{ Params: { id: number } }>('/apps/:id', { schema: { tags: ['apps'], params: IdParams, response: { 204: Type.Null(), ...std } } }, async (req, reply) => {
    await ownApp(req, req.params.id);
    await deleteApp(ctx, req.params.id);
    return reply.code(204).send();
  });

  // --- quotas ----------------------------------------------------------------------------------
  const QuotaQuery = Type.Object({ tenant_id: Type.Optional(Id), service: Type.String({ minLength: 1, maxLength: 40 }) }, { additionalProperties: false });
  app.get<{ Querystring: Static<typeof QuotaQuery> }>('/quotas', { schema: { tags: ['quotas'], querystring: QuotaQuery, response: { 200: Type.Object({ tenant_id: Type.Integer(), service: Type.String(), remaining: Type.Integer() }), ...std } } }, async (req) => {
    const p = requirePrincipal(req);
    const tenantId = tenantScope(p, req.query.tenant_id) ?? p.tenantId;
    return { tenant_id: tenantId, service: req.query.service, remaining: await remainingQuota(ctx.db.kysely, tenantId, req.query.service) };
  });
  const TopUp = Type.Object({ tenant_id: Id, service: Type.String({ minLength: 1, maxLength: 40 }), units: Type.Integer({ minimum: -1_000_000_000, maximum: 1_000_000_000 }) }, { additionalProperties: false });
  app.post<{ Body: Static<typeof TopUp> }>('/quotas', { schema: { tags: ['quotas'], summary: 'Top up (or take back) quota units (operators)', body: TopUp, response: { 200: Type.Object({ tenant_id: Type.Integer(), service: Type.String(), remaining: Type.Integer() }), ...std } } }, async (req) => {
    requireOperator(req);
    if (!(await accounts.getTenant(ctx, req.body.tenant_id))) throw new DomainError('NOT_FOUND', `no tenant ${req.body.tenant_id}`, { field: 'tenant_id' });
    const remaining = await addQuota(ctx.db.kysely, req.body.tenant_id, req.body.service, req.body.units);
    return { tenant_id: req.body.tenant_id, service: req.body.service, remaining };
  });

  // --- services' native endpoints ---------------------------------------------------------
  for (const m of MODULES) if (m.rest) await m.rest(app, ctx);
}
