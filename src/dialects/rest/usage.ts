/** Native REST for usage and the request log (services/usage): a tenant sees its own, operators every tenant. */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Ctx } from '../../core/context.js';
import { logFacets, requestLog, usage } from '../../services/usage/index.js';
import { requirePrincipal, tenantScope } from './auth.js';
import { problems } from './links.js';

const std = problems(400, 401, 403, 429);
const Id = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
const Ms = (description: string) => Type.Optional(Type.Integer({ minimum: 0, maximum: 8_640_000_000_000_000, description }));
const Service = Type.String({ minLength: 1, maxLength: 40, pattern: '^[a-z-]+$', description: 'native, mininglamp, fangtang, cli, ulord or bqp' });

const UsageQuery = Type.Object(
  {
    tenant_id: Type.Optional(Id),
    from: Ms('epoch ms (default: 48 hours or 30 days before to)'),
    to: Ms('epoch ms, exclusive (default: now)'),
    bucket: Type.Optional(Type.Union([Type.Literal('hour'), Type.Literal('day')], { default: 'hour', description: 'UTC hours or UTC days' })),
    group: Type.Optional(Type.Union([Type.Literal('service'), Type.Literal('app')], { default: 'service', description: 'one series per service or per app' })),
    app_id: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: '0 = requests that authenticated as no app' })),
    service: Type.Optional(Service),
  },
  { additionalProperties: false },
);
const Point = Type.Object({ t: Type.Integer(), requests: Type.Integer(), errors: Type.Integer(), avg_ms: Type.Number() });
const UsageOut = Type.Object({
  from: Type.Integer(),
  to: Type.Integer(),
  bucket: Type.String(),
  group: Type.String(),
  buckets: Type.Array(Type.Integer(), { description: 'start of each bucket, epoch ms' }),
  requests: Type.Integer(),
  errors: Type.Integer({ description: 'answered 4xx/5xx, or with an error code (some dialects answer errors with 200)' }),
  avg_ms: Type.Number(),
  series: Type.Array(
    Type.Object({
      key: Type.String({ description: 'the service, or the app id as text ("0": no app)' }),
      app_id: Type.Union([Type.Integer(), Type.Null()]),
      app_name: Type.Union([Type.String(), Type.Null()]),
      service: Type.Union([Type.String(), Type.Null()]),
      requests: Type.Integer(),
      errors: Type.Integer(),
      avg_ms: Type.Number(),
      points: Type.Array(Point, { description: 'one per bucket, in the order of buckets' }),
    }),
  ),
});

const LogQuery = Type.Object(
  {
    tenant_id: Type.Optional(Id),
    from: Ms('epoch ms, inclusive'),
    to: Ms('epoch ms, exclusive'),
    app_id: Type.Optional(Id),
    service: Type.Optional(Service),
    status: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, description: 'exact status' })),
    status_class: Type.Optional(Type.Union([Type.Literal('2xx'), Type.Literal('3xx'), Type.Literal('4xx'), Type.Literal('5xx')])),
    errors: Type.Optional(Type.Boolean({ description: 'only failed requests (4xx/5xx or an error code)' })),
    error_code: Type.Optional(Type.String({ minLength: 1, maxLength: 60, pattern: '^[A-Z0-9_]+$' })),
    route: Type.Optional(Type.String({ minLength: 1, maxLength: 500, description: 'route pattern as listed, e.g. /rest/v1/apps/:id' })),
    method: Type.Optional(Type.String({ minLength: 1, maxLength: 10, pattern: '^[A-Z]+$' })),
    cursor: Type.Optional(Type.String({ maxLength: 40, description: 'next_cursor of the previous page' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
  },
  { additionalProperties: false },
);
const LogEntry = Type.Object({
  id: Type.Integer(),
  at: Type.Integer({ description: 'when the request arrived, epoch ms' }),
  tenant_id: Type.Union([Type.Integer(), Type.Null()]),
  app_id: Type.Union([Type.Integer(), Type.Null()]),
  service: Type.String(),
  method: Type.String(),
  route: Type.String({ description: 'route pattern (never the URL or its query string); (unmatched) when no route took it' }),
  status: Type.Integer(),
  duration_ms: Type.Number(),
  ip_prefix: Type.String({ description: 'client address cut to /24 (IPv4) or /48 (IPv6)' }),
  error_code: Type.Union([Type.String(), Type.Null()]),
});
const FacetsQuery = Type.Object({ tenant_id: Type.Optional(Id), from: Ms('epoch ms (default: 7 days ago)') }, { additionalProperties: false });

export async function usageRest(app: FastifyInstance, ctx: Ctx): Promise<void> {
  app.get<{ Querystring: Static<typeof UsageQuery> }>(
    '/usage',
    { schema: { tags: ['usage'], summary: 'Requests, errors and mean duration per service or per app, in hourly or daily buckets', querystring: UsageQuery, response: { 200: UsageOut, ...std } } },
    async (req) => {
      const p = requirePrincipal(req);
      const q = req.query;
      return usage(ctx, { tenantId: tenantScope(p, q.tenant_id) }, { from: q.from, to: q.to, bucket: q.bucket ?? 'hour', group: q.group ?? 'service', appId: q.app_id, service: q.service });
    },
  );

  app.get<{ Querystring: Static<typeof LogQuery> }>(
    '/requests',
    {
      schema: {
        tags: ['usage'],
        summary: 'The request log, newest first, with filters; page with next_cursor',
        querystring: LogQuery,
        response: { 200: Type.Object({ items: Type.Array(LogEntry), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...std },
      },
    },
    async (req) => {
      const p = requirePrincipal(req);
      const q = req.query;
      return requestLog(
        ctx,
        { tenantId: tenantScope(p, q.tenant_id) },
        {
          from: q.from,
          to: q.to,
          appId: q.app_id,
          service: q.service,
          status: q.status,
          statusClass: q.status_class ? Number(q.status_class[0]) : undefined,
          errorsOnly: q.errors,
          errorCode: q.error_code,
          route: q.route,
          method: q.method,
          cursor: q.cursor,
          limit: q.limit ?? 50,
        },
      );
    },
  );

  app.get<{ Querystring: Static<typeof FacetsQuery> }>(
    '/requests/facets',
    {
      schema: {
        tags: ['usage'],
        summary: 'Services, route patterns and error codes seen in the log (for filter pickers)',
        querystring: FacetsQuery,
        response: { 200: Type.Object({ services: Type.Array(Type.String()), routes: Type.Array(Type.String()), error_codes: Type.Array(Type.String()) }), ...std },
      },
    },
    async (req) => {
      const p = requirePrincipal(req);
      return logFacets(ctx, { tenantId: tenantScope(p, req.query.tenant_id) }, req.query.from ?? ctx.clock.now() - 7 * 86_400_000);
    },
  );
}
