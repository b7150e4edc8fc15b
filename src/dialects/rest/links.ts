/** Native REST for short links: create/list/get/disable, QR images, scan analytics. */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../../core/context.js';
import { DomainError } from '../../core/errors.js';
import { parseQrStyle, renderQrPng, renderQrSvg } from '../../core/qr/index.js';
import { ensureLink, getLink, linkStats, listLinks, shortUrl, updateLink, type LinkView } from '../../services/links/index.js';
import { requirePrincipal, tenantScope } from './auth.js';

/** Problem responses, referring to the schema the native API registers. */
export const problems = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, Type.Ref('Problem')]));
const std = problems(400, 401, 403, 404, 409, 429);

export const LinkOut = Type.Object({
  id: Type.Integer(),
  code: Type.String(),
  short_url: Type.String(),
  tenant_id: Type.Integer(),
  kind: Type.Union([Type.Literal('url'), Type.Literal('code'), Type.Literal('report')]),
  target_ref: Type.String(),
  url: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.Integer(),
  disabled: Type.Boolean(),
});

export const QrQuery = Type.Object(
  {
    format: Type.Optional(Type.Union([Type.Literal('png'), Type.Literal('svg')], { default: 'png' })),
    ecl: Type.Optional(Type.String({ maxLength: 1, description: 'error correction L, M, Q or H' })),
    margin: Type.Optional(Type.String({ maxLength: 4, description: 'quiet zone in modules (default 4)' })),
    scale: Type.Optional(Type.String({ maxLength: 4, description: 'pixels per module (default 8)' })),
    fg: Type.Optional(Type.String({ maxLength: 7, description: 'dark colour #rgb or #rrggbb' })),
    bg: Type.Optional(Type.String({ maxLength: 7, description: 'light colour #rgb or #rrggbb' })),
  },
  { additionalProperties: false },
);

export const StatsQuery = Type.Object(
  {
    from: Type.Optional(Type.Integer({ minimum: 0, description: 'epoch ms (default: 30 days or 48 hours before to)' })),
    to: Type.Optional(Type.Integer({ minimum: 0, description: 'epoch ms, exclusive (default: now)' })),
    bucket: Type.Optional(Type.Union([Type.Literal('hour'), Type.Literal('day')], { default: 'day' })),
  },
  { additionalProperties: false },
);

const Counts = Type.Record(Type.String(), Type.Integer());
export const StatsOut = Type.Object({
  from: Type.Integer(),
  to: Type.Integer(),
  bucket: Type.String(),
  scans: Type.Integer({ description: 'scans by people (bots excluded)' }),
  unique_visitors: Type.Integer({ description: 'distinct hashed address + UTC day' }),
  bots: Type.Integer({ description: 'scans by bots and link-preview fetchers' }),
  series: Type.Array(Type.Object({ t: Type.Integer(), scans: Type.Integer(), unique_visitors: Type.Integer(), bots: Type.Integer() })),
  devices: Counts,
  os: Counts,
  referrers: Type.Array(Type.Object({ host: Type.String(), scans: Type.Integer() })),
});

export const linkOut = (ctx: Ctx, l: LinkView) => ({
  id: l.id,
  code: l.code,
  short_url: shortUrl(ctx, l.code),
  tenant_id: l.tenantId,
  kind: l.kind,
  target_ref: l.targetRef,
  url: l.url,
  created_at: l.createdAt,
  disabled: l.disabled,
});

/** Sends a QR image of text in the format and style of a QrQuery. */
export async function sendQr(reply: FastifyReply, text: string, q: Static<typeof QrQuery>): Promise<FastifyReply> {
  const { format, ...style } = q;
  const s = parseQrStyle(style);
  reply.header('cache-control', 'private, max-age=3600');
  if (format === 'svg') return reply.type('image/svg+xml').send(await renderQrSvg(text, s));
  return reply.type('image/png').send(await renderQrPng(text, s));
}

const CodeParams = Type.Object({ code: Type.String({ minLength: 1, maxLength: 64 }) });

export function linksRest(app: FastifyInstance, ctx: Ctx): void {
  async function ownLink(req: FastifyRequest, code: string): Promise<LinkView> {
    const p = requirePrincipal(req);
    const l = await getLink(ctx, code);
    if (!l || (!p.operator && l.tenantId !== p.tenantId)) throw new DomainError('NOT_FOUND', `no link ${code}`);
    return l;
  }

  const Create = Type.Object(
    {
      url: Type.String({ minLength: 1, maxLength: 2048, description: 'http(s) URL to redirect to' }),
      ref: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'your idempotency key (default: the URL itself: one link per URL)' })),
      tenant_id: Type.Optional(Type.Integer({ minimum: 1 })),
    },
    { additionalProperties: false },
  );
  app.post<{ Body: Static<typeof Create> }>(
    '/links',
    { schema: { tags: ['links'], summary: 'Create a redirecting short link (idempotent on ref)', body: Create, response: { 200: LinkOut, 201: LinkOut, ...std } } },
    async (req, reply) => {
      const p = requirePrincipal(req);
      const tenantId = tenantScope(p, req.body.tenant_id) ?? p.tenantId;
      const { link, created } = await ensureLink(ctx, { tenantId, kind: 'url', targetRef: req.body.ref ?? req.body.url, url: req.body.url });
      return reply.code(created ? 201 : 200).send(linkOut(ctx, { ...link, disabled: false }));
    },
  );

  const ListQuery = Type.Object(
    {
      tenant_id: Type.Optional(Type.Integer({ minimum: 1 })),
      kind: Type.Optional(Type.Union([Type.Literal('url'), Type.Literal('code'), Type.Literal('report')])),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
      offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })),
    },
    { additionalProperties: false },
  );
  app.get<{ Querystring: Static<typeof ListQuery> }>('/links', { schema: { tags: ['links'], summary: 'List links, newest first', querystring: ListQuery, response: { 200: Type.Array(LinkOut), ...std } } }, async (req) => {
    const p = requirePrincipal(req);
    return (await listLinks(ctx, { tenantId: tenantScope(p, req.query.tenant_id), kind: req.query.kind, limit: req.query.limit, offset: req.query.offset })).map((l) => linkOut(ctx, l));
  });

  app.get<{ Params: Static<typeof CodeParams> }>('/links/:code', { schema: { tags: ['links'], params: CodeParams, response: { 200: LinkOut, ...std } } }, async (req) => linkOut(ctx, await ownLink(req, req.params.code)));

  const Patch = Type.Object(
    { disabled: Type.Optional(Type.Boolean()), url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })) },
    { additionalProperties: false },
  );
  app.patch<{ Params: Static<typeof CodeParams>; Body: Static<typeof Patch> }>(
    '/links/:code',
    { schema: { tags: ['links'], summary: 'Disable/enable a link or change a url link\'s target (the next scan sees it)', params: CodeParams, body: Patch, response: { 200: LinkOut, ...std } } },
    async (req) => {
      await ownLink(req, req.params.code);
      return linkOut(ctx, await updateLink(ctx, req.params.code, req.body));
    },
  );

  app.get<{ Params: Static<typeof CodeParams>; Querystring: Static<typeof QrQuery> }>(
    '/links/:code/qr',
    {
      schema: {
        tags: ['links'],
        summary: 'QR image of the short link (PNG or SVG, styled by query parameters)',
        params: CodeParams,
        querystring: QrQuery,
        response: { 200: { description: 'image/png or image/svg+xml', content: { 'image/png': { schema: {} }, 'image/svg+xml': { schema: {} } } }, ...std },
      },
    },
    async (req, reply) => sendQr(reply, shortUrl(ctx, (await ownLink(req, req.params.code)).code), req.query),
  );

  app.get<{ Params: Static<typeof CodeParams>; Querystring: Static<typeof StatsQuery> }>(
    '/links/:code/stats',
    { schema: { tags: ['links'], summary: 'Scans of one link over time', params: CodeParams, querystring: StatsQuery, response: { 200: StatsOut, ...std } } },
    async (req) => {
      const l = await ownLink(req, req.params.code);
      return linkStats(ctx, { tenantId: l.tenantId, linkIds: [l.id] }, { from: req.query.from, to: req.query.to, bucket: req.query.bucket ?? 'day' });
    },
  );

  const TenantStatsQuery = Type.Composite([StatsQuery, Type.Object({ tenant_id: Type.Optional(Type.Integer({ minimum: 1 })) })], { additionalProperties: false });
  app.get<{ Querystring: Static<typeof TenantStatsQuery> }>(
    '/links-stats',
    { schema: { tags: ['links'], summary: 'Scans of all links of a tenant', querystring: TenantStatsQuery, response: { 200: StatsOut, ...std } } },
    async (req) => {
      const p = requirePrincipal(req);
      const tenantId = tenantScope(p, req.query.tenant_id) ?? p.tenantId;
      return linkStats(ctx, { tenantId }, { from: req.query.from, to: req.query.to, bucket: req.query.bucket ?? 'day' });
    },
  );
}
