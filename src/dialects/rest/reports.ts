/**
 * Native endpoints for reports and the transparency log (inside /rest/v1), and the public
 * checkpoint at the server root (`GET /tlog/checkpoint`, text/plain).
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Ctx } from '../../core/context.js';
import { DomainError } from '../../core/errors.js';
import { consistencyProof, getEntry, inclusionProof, latestCheckpoint, logInfo, rootAt } from '../../core/tlog/index.js';
import { buildBundle } from '../../services/reports/bundle.js';
import { CORNERS, coverQr, stampPdf, type Corner } from '../../services/reports/stamp.js';
import { getReport, listReports, listVersions, recallReport, reportFile, type Report, type ReportVersion } from '../../services/reports/index.js';
import { requirePrincipal, tenantScope } from './auth.js';

const ReportId = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', description: 'report ID: 1-128 characters of A-Z a-z 0-9 . _ -' });
const TenantQ = Type.Optional(Type.Integer({ minimum: 1, description: 'operators: the tenant to act on' }));
const Meta = { title: Type.String(), type: Type.String(), period: Type.String(), geom: Type.String() };
const VersionOut = Type.Object({
  version: Type.Integer(),
  action: Type.String(),
  ...Meta,
  meta_hash: Type.String(),
  sha256: Type.String(),
  size: Type.Integer(),
  file_name: Type.Union([Type.String(), Type.Null()]),
  content_type: Type.String(),
  tlog_index: Type.Integer(),
  created_at: Type.Integer(),
});
const ReportOut = Type.Object({
  tenant_id: Type.Integer(),
  report_id: Type.String(),
  status: Type.String({ description: 'valid | recalled' }),
  version: Type.Integer(),
  ...Meta,
  created_at: Type.Integer(),
  updated_at: Type.Integer(),
  recalled_at: Type.Union([Type.Integer(), Type.Null()]),
  last_tlog_index: Type.Integer(),
});
const BundleOut = Type.Object(
  {
    format: Type.String(),
    tenant_id: Type.Integer(),
    report_id: Type.String(),
    entries: Type.Array(Type.Object({ index: Type.Integer(), data: Type.String(), leaf_hash: Type.String(), inclusion_proof: Type.Array(Type.String()) })),
    checkpoint: Type.String({ description: 'signed note (C2SP tlog-checkpoint)' }),
    log: Type.Object({ origin: Type.String(), verifier_key: Type.String() }),
  },
  { description: 'Everything `menhu verify` needs to check a file offline' },
);
const CheckpointOut = Type.Object({ origin: Type.String(), size: Type.Integer(), root: Type.String({ description: 'base64' }), note: Type.String(), verifier_key: Type.String() });
const Problem = Type.Ref('Problem');
const errs = { 400: Problem, 401: Problem, 403: Problem, 404: Problem, 409: Problem };

const toReportOut = (r: Report) => ({
  tenant_id: r.tenantId,
  report_id: r.reportId,
  status: r.status,
  version: r.version,
  title: r.title,
  type: r.type,
  period: r.period,
  geom: r.geom,
  created_at: r.createdAt,
  updated_at: r.updatedAt,
  recalled_at: r.recalledAt,
  last_tlog_index: r.lastTlogIndex,
});
const toVersionOut = (v: ReportVersion) => ({
  version: v.version,
  action: v.action,
  title: v.title,
  type: v.type,
  period: v.period,
  geom: v.geom,
  meta_hash: v.metaHash,
  sha256: v.sha256,
  size: v.size,
  file_name: v.fileName,
  content_type: v.contentType,
  tlog_index: v.tlogIndex,
  created_at: v.createdAt,
});

/** Content-Disposition for a download, with an ASCII fallback and the UTF-8 name. */
export function attachment(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

function scope(req: FastifyRequest, tenant: number | undefined): number {
  const p = requirePrincipal(req);
  return tenantScope(p, tenant) ?? p.tenantId;
}

type RQ = { Params: { report_id: string }; Querystring: { tenant_id?: number } };
const RParams = Type.Object({ report_id: ReportId });
const RQuery = Type.Object({ tenant_id: TenantQ }, { additionalProperties: false });

export async function reportsRest(app: FastifyInstance, ctx: Ctx): Promise<void> {
  // --- reports ---------------------------------------------------------------------------------
  const ListQ = Type.Object({ tenant_id: TenantQ, limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), after: Type.Optional(Type.String({ maxLength: 128 })) }, { additionalProperties: false });
  app.get<{ Querystring: Static<typeof ListQ> }>(
    '/reports',
    { schema: { tags: ['reports'], summary: 'Reports of a tenant, by report ID (page with `after`)', querystring: ListQ, response: { 200: Type.Array(ReportOut), ...errs } } },
    async (req) => (await listReports(ctx, scope(req, req.query.tenant_id), { limit: req.query.limit, after: req.query.after })).map(toReportOut),
  );
  app.get<RQ>(
    '/reports/:report_id',
    { schema: { tags: ['reports'], summary: 'A report with every version', params: RParams, querystring: RQuery, response: { 200: Type.Composite([ReportOut, Type.Object({ versions: Type.Array(VersionOut) })]), ...errs } } },
    async (req) => {
      const t = scope(req, req.query.tenant_id);
      const r = await getReport(ctx, t, req.params.report_id);
      if (!r) throw new DomainError('NOT_FOUND', `report ${req.params.report_id} is not registered`);
      return { ...toReportOut(r), versions: ((await listVersions(ctx, t, r.reportId)) ?? []).map(toVersionOut) };
    },
  );
  app.get<RQ>(
    '/reports/:report_id/versions',
    { schema: { tags: ['reports'], summary: 'Every version of a report, oldest first', params: RParams, querystring: RQuery, response: { 200: Type.Array(VersionOut), ...errs } } },
    async (req) => {
      const v = await listVersions(ctx, scope(req, req.query.tenant_id), req.params.report_id);
      if (!v) throw new DomainError('NOT_FOUND', `report ${req.params.report_id} is not registered`);
      return v.map(toVersionOut);
    },
  );
  const FileQ = Type.Object({ tenant_id: TenantQ, version: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false });
  app.get<{ Params: { report_id: string }; Querystring: Static<typeof FileQ> }>(
    '/reports/:report_id/file',
    { schema: { tags: ['reports'], summary: 'The registered file of a version (default: the current one)', params: RParams, querystring: FileQ, response: { ...errs } } },
    async (req, reply) => {
      const f = await reportFile(ctx, scope(req, req.query.tenant_id), req.params.report_id, req.query.version);
      return reply
        .type(f.version.contentType)
        .header('content-disposition', attachment(f.version.fileName ?? `${req.params.report_id}-v${f.version.version}`))
        .header('x-content-sha256', f.version.sha256)
        .send(f.data);
    },
  );
  const RecallBody = Type.Object({ title: Type.String({ maxLength: 1000 }), type: Type.String({ maxLength: 1000 }), period: Type.String({ maxLength: 1000 }), geom: Type.String({ maxLength: 1000 }) }, { additionalProperties: false });
  app.post<RQ & { Body: Static<typeof RecallBody> }>(
    '/reports/:report_id/recall',
    { schema: { tags: ['reports'], summary: 'Recall a report; the metadata must equal the registered metadata', params: RParams, querystring: RQuery, body: RecallBody, response: { 200: ReportOut, ...errs } } },
    async (req) => toReportOut((await recallReport(ctx, { tenantId: scope(req, req.query.tenant_id), reportId: req.params.report_id, meta: req.body })).report),
  );
  app.get<RQ>(
    '/reports/:report_id/proof',
    { schema: { tags: ['reports'], summary: 'Proof bundle: every log entry of the report with inclusion proofs, the checkpoint and the log key', params: RParams, querystring: RQuery, response: { 200: BundleOut, ...errs } } },
    async (req) => buildBundle(ctx, scope(req, req.query.tenant_id), req.params.report_id),
  );

  // --- the cover QR, and stamping it on a PDF ----------------------------------------------------
  const StampQ = Type.Object(
    {
      tenant_id: TenantQ,
      corner: Type.Optional(Type.Union(CORNERS.map((c) => Type.Literal(c)), { default: 'top-right' })),
      size: Type.Optional(Type.Number({ minimum: 18, maximum: 1000, description: 'side of the QR in points (default 72)' })),
      margin: Type.Optional(Type.Number({ minimum: 0, maximum: 500, description: 'distance from the visible edges in points (default 18)' })),
    },
    { additionalProperties: false },
  );
  app.addContentTypeParser('application/pdf', { parseAs: 'buffer', bodyLimit: ctx.config.uploadLimit }, (req, body: Buffer, done) => {
    req.rawBody = body;
    done(null, body);
  });
  app.post<{ Params: { report_id: string }; Querystring: Static<typeof StampQ>; Body: Buffer }>(
    '/reports/:report_id/stamp',
    {
      bodyLimit: ctx.config.uploadLimit,
      schema: {
        tags: ['reports'],
        summary: "Stamp the report's cover QR on page 1 of a PDF (body: application/pdf); creates the report's short link if needed",
        description: 'The QR goes in the chosen corner of what a reader sees: inside the crop box, upright on rotated pages. The answer is the stamped PDF; X-Menhu-Link carries the short link.',
        params: RParams,
        querystring: StampQ,
        response: { ...errs, 413: Problem, 415: Problem },
      },
    },
    async (req, reply) => {
      if (!Buffer.isBuffer(req.body)) throw new DomainError('UNSUPPORTED_MEDIA', 'send the PDF as the body with Content-Type: application/pdf');
      const t = scope(req, req.query.tenant_id);
      const { url, png } = await coverQr(ctx, t, req.params.report_id);
      const out = await stampPdf(req.body, png, { corner: req.query.corner as Corner | undefined, size: req.query.size, margin: req.query.margin });
      return reply.type('application/pdf').header('x-menhu-link', url).header('content-disposition', attachment(`${req.params.report_id}.pdf`)).send(out);
    },
  );

  // --- transparency log (public) ---------------------------------------------------------------
  const pub = { public: true };
  app.get('/tlog/checkpoint', { config: pub, schema: { tags: ['transparency log'], summary: 'The latest signed checkpoint', security: [], response: { 200: CheckpointOut, 503: Problem } } }, async () => {
    const c = await latestCheckpoint(ctx);
    return { origin: c.origin, size: c.size, root: c.root.toString('base64'), note: c.note, verifier_key: logInfo(ctx).verifierKey };
  });
  const IdxP = Type.Object({ index: Type.Integer({ minimum: 0 }) });
  app.get<{ Params: { index: number } }>(
    '/tlog/entries/:index',
    { config: pub, schema: { tags: ['transparency log'], summary: 'One log entry', security: [], params: IdxP, response: { 200: Type.Object({ index: Type.Integer(), data: Type.String(), leaf_hash: Type.String(), created_at: Type.Integer() }), 404: Problem } } },
    async (req) => {
      const e = await getEntry(ctx, req.params.index);
      if (!e) throw new DomainError('NOT_FOUND', `no log entry ${req.params.index}`);
      return { index: e.index, data: e.data, leaf_hash: e.leafHash, created_at: e.createdAt };
    },
  );
  const InclQ = Type.Object({ index: Type.Integer({ minimum: 0 }), size: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false });
  app.get<{ Querystring: Static<typeof InclQ> }>(
    '/tlog/proofs/inclusion',
    {
      config: pub,
      schema: { tags: ['transparency log'], summary: 'Inclusion proof of leaf `index` in the tree of `size` leaves (default: the latest checkpoint)', security: [], querystring: InclQ, response: { 200: Type.Object({ index: Type.Integer(), size: Type.Integer(), root: Type.String(), leaf_hash: Type.String(), proof: Type.Array(Type.String()) }), 400: Problem } },
    },
    async (req) => {
      const size = req.query.size ?? (await latestCheckpoint(ctx)).size;
      const { proof } = await guard(() => inclusionProof(ctx, req.query.index, size));
      const e = await getEntry(ctx, req.query.index);
      return { index: req.query.index, size, root: (await rootAt(ctx, size)).toString('base64'), leaf_hash: Buffer.from(e!.leafHash, 'hex').toString('base64'), proof: proof.map((b) => b.toString('base64')) };
    },
  );
  const ConsQ = Type.Object({ size1: Type.Integer({ minimum: 1 }), size2: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false });
  app.get<{ Querystring: Static<typeof ConsQ> }>(
    '/tlog/proofs/consistency',
    {
      config: pub,
      schema: { tags: ['transparency log'], summary: 'Consistency proof between tree sizes (size2 default: the latest checkpoint)', security: [], querystring: ConsQ, response: { 200: Type.Object({ size1: Type.Integer(), size2: Type.Integer(), root1: Type.String(), root2: Type.String(), proof: Type.Array(Type.String()) }), 400: Problem } },
    },
    async (req) => {
      const size2 = req.query.size2 ?? (await latestCheckpoint(ctx)).size;
      const proof = await guard(() => consistencyProof(ctx, req.query.size1, size2));
      return { size1: req.query.size1, size2, root1: (await rootAt(ctx, req.query.size1)).toString('base64'), root2: (await rootAt(ctx, size2)).toString('base64'), proof: proof.map((b) => b.toString('base64')) };
    },
  );
  const BP = Type.Object({ tenant_id: Type.Integer({ minimum: 1 }), report_id: ReportId });
  app.get<{ Params: Static<typeof BP> }>(
    '/tlog/reports/:tenant_id/:report_id/bundle',
    { config: pub, schema: { tags: ['transparency log'], summary: 'Proof bundle of a report (public: the log is public)', security: [], params: BP, response: { 200: BundleOut, 404: Problem } } },
    async (req) => buildBundle(ctx, req.params.tenant_id, req.params.report_id),
  );
}

/** Range errors of proof requests are the caller's. */
async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof RangeError) throw new DomainError('VALIDATION', e.message);
    throw e;
  }
}

/** Public routes at the server root. */
export async function mountTlogRoot(app: FastifyInstance, ctx: Ctx): Promise<void> {
  app.get('/tlog/checkpoint', async (_req, reply) => {
    const c = await latestCheckpoint(ctx);
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(c.note);
  });
  app.get('/tlog/key', async (_req, reply) => reply.type('text/plain; charset=utf-8').send(logInfo(ctx).verifierKey + '\n'));
}
