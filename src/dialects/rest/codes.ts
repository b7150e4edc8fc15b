/** Native REST for dynamic codes: templates, records (batch create, edit, history), exports, analytics. */
import { PassThrough } from 'node:stream';
import { Type, type Static } from '@sinclair/typebox';
import ExcelJS from 'exceljs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Zip, ZipDeflate, ZipPassThrough } from 'fflate';
import type { Ctx } from '../../core/context.js';
import { getApp } from '../../core/credentials/apps.js';
import { DomainError } from '../../core/errors.js';
import { parseQrStyle, renderQrPng, renderQrSvg } from '../../core/qr/index.js';
import {
  checkBatch,
  createRecords,
  createTemplate,
  deleteTemplate,
  displayValue,
  editRecord,
  FIELD_TYPES,
  getRecord,
  getTemplate,
  listRecords,
  listTemplates,
  MAX_BATCH,
  recordHistory,
  recordStats,
  recordUrl,
  setTemplateApi,
  signedQrUrl,
  templateStats,
  updateTemplate,
  type CodeRecord,
  type Template,
} from '../../services/codes/index.js';
import { problems, QrQuery, sendQr, StatsOut, StatsQuery } from './links.js';
import { requirePrincipal, tenantScope, type Principal } from './auth.js';

const std = problems(400, 401, 403, 404, 409, 429);
const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

const Field = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 50 }),
    type: Type.Union(FIELD_TYPES.map((t) => Type.Literal(t))),
    options: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { minItems: 1, maxItems: 50 })),
    required: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
const Style = Type.Object(
  {
    qr: Type.Optional(
      Type.Object(
        { ecl: Type.Optional(Type.String()), margin: Type.Optional(Type.Integer()), scale: Type.Optional(Type.Integer()), fg: Type.Optional(Type.String()), bg: Type.Optional(Type.String()) },
        { additionalProperties: false },
      ),
    ),
    accent: Type.Optional(Type.String({ description: 'landing page accent colour #rrggbb' })),
  },
  { additionalProperties: false },
);
const TemplateOut = Type.Object({
  id: Type.Integer(),
  tenant_id: Type.Integer(),
  template_num: Type.String({ description: 'M1, M2, … as the cli.im API names it' }),
  title: Type.String(),
  fields: Type.Array(Field),
  style: Style,
  api_enabled: Type.Boolean(),
  api_key: Type.Union([Type.String(), Type.Null()], { description: "the template's own key; null = the tenant's cli.im apps" }),
  created_at: Type.Integer(),
  updated_at: Type.Integer(),
});
const RecordOut = Type.Object({
  id: Type.Integer(),
  template_id: Type.Integer(),
  code: Type.String(),
  web_url: Type.String(),
  values: Type.Array(Type.String(), { description: 'normalised: choices as 1-based numbers, location as JSON' }),
  version: Type.Integer(),
  created_at: Type.Integer(),
  updated_at: Type.Integer(),
});
const Values = Type.Array(Type.Unknown(), { maxItems: 50, description: 'one value per template field, in order (cli.im formats)' });

const templateOut = async (ctx: Ctx, t: Template) => ({
  id: t.id,
  tenant_id: t.tenantId,
  template_num: t.templateNum,
  title: t.title,
  fields: t.fields,
  style: t.style,
  api_enabled: t.apiEnabled,
  api_key: t.appId ? ((await getApp(ctx, t.appId))?.key ?? null) : null,
  created_at: t.createdAt,
  updated_at: t.updatedAt,
});
const recordOut = (ctx: Ctx, r: CodeRecord) => ({
  id: r.id,
  template_id: r.templateId,
  code: r.code,
  web_url: recordUrl(ctx, r),
  values: r.values,
  version: r.version,
  created_at: r.createdAt,
  updated_at: r.updatedAt,
});
const actorOf = (p: Principal) => (p.kind === 'app' ? `native:${p.app.id}` : `developer:${p.developer.id}`);

export function codesRest(app: FastifyInstance, ctx: Ctx): void {
  async function ownTemplate(req: FastifyRequest, id: number): Promise<{ p: Principal; t: Template }> {
    const p = requirePrincipal(req);
    const t = await getTemplate(ctx, id);
    if (!t || (!p.operator && t.tenantId !== p.tenantId)) throw new DomainError('NOT_FOUND', `no template ${id}`);
    return { p, t };
  }
  async function ownRecord(req: FastifyRequest, id: number): Promise<{ p: Principal; r: CodeRecord }> {
    const p = requirePrincipal(req);
    const r = await getRecord(ctx, id);
    if (!r || (!p.operator && r.tenantId !== p.tenantId)) throw new DomainError('NOT_FOUND', `no code record ${id}`);
    return { p, r };
  }
  const tags = ['codes'];

  // --- templates -------------------------------------------------------------------------------
  const TQuery = Type.Object({ tenant_id: Type.Optional(Type.Integer({ minimum: 1 })) }, { additionalProperties: false });
  app.get<{ Querystring: Static<typeof TQuery> }>('/code-templates', { schema: { tags, querystring: TQuery, response: { 200: Type.Array(TemplateOut), ...std } } }, async (req) => {
    const p = requirePrincipal(req);
    return Promise.all((await listTemplates(ctx, tenantScope(p, req.query.tenant_id))).map((t) => templateOut(ctx, t)));
  });
  const TCreate = Type.Object(
    { title: Type.String({ minLength: 1, maxLength: 100 }), fields: Type.Array(Field, { minItems: 1, maxItems: 50 }), style: Type.Optional(Style), num: Type.Optional(Type.Integer({ minimum: 1 })), tenant_id: Type.Optional(Type.Integer({ minimum: 1 })) },
    { additionalProperties: false },
  );
  app.post<{ Body: Static<typeof TCreate> }>('/code-templates', { schema: { tags, summary: 'Create a template (numbered M1, M2, … per tenant)', body: TCreate, response: { 201: TemplateOut, ...std } } }, async (req, reply) => {
    const p = requirePrincipal(req);
    const t = await createTemplate(ctx, { tenantId: tenantScope(p, req.body.tenant_id) ?? p.tenantId, title: req.body.title, fields: req.body.fields, style: req.body.style, num: req.body.num });
    return reply.code(201).send(await templateOut(ctx, t));
  });
  app.get<{ Params: Static<typeof IdParams> }>('/code-templates/:id', { schema: { tags, params: IdParams, response: { 200: TemplateOut, ...std } } }, async (req) => templateOut(ctx, (await ownTemplate(req, req.params.id)).t));
  const TPatch = Type.Object({ title: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })), fields: Type.Optional(Type.Array(Field, { minItems: 1, maxItems: 50 })), style: Type.Optional(Style) }, { additionalProperties: false });
  app.patch<{ Params: Static<typeof IdParams>; Body: Static<typeof TPatch> }>(
    '/code-templates/:id',
    { schema: { tags, summary: 'Change title, style or fields (with records: rename or append fields only)', params: IdParams, body: TPatch, response: { 200: TemplateOut, ...std } } },
    async (req) => {
      await ownTemplate(req, req.params.id);
      return templateOut(ctx, await updateTemplate(ctx, req.params.id, req.body));
    },
  );
  app.delete<{ Params: Static<typeof IdParams> }>('/code-templates/:id', { schema: { tags, summary: 'Delete a template without records', params: IdParams, response: { 204: Type.Null(), ...std } } }, async (req, reply) => {
    await ownTemplate(req, req.params.id);
    await deleteTemplate(ctx, req.params.id);
    return reply.code(204).send();
  });
  const ApiIn = Type.Object(
    {
      enabled: Type.Optional(Type.Boolean()),
      ip_allow: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 256, description: 'addresses / CIDRs allowed to call; empty = any' })),
      own_key: Type.Optional(Type.Boolean({ description: 'give the template its own api_key + secret (default true)' })),
    },
    { additionalProperties: false },
  );
  app.put<{ Params: Static<typeof IdParams>; Body: Static<typeof ApiIn> }>(
    '/code-templates/:id/api',
    {
      schema: {
        tags,
        summary: "Enable/disable the template's cli.im API; its own api_key + secret (the secret is shown once, when created) and IP allow-list",
        params: IdParams,
        body: ApiIn,
        response: { 200: Type.Object({ template: TemplateOut, api_key: Type.Union([Type.String(), Type.Null()]), api_secret: Type.Union([Type.String(), Type.Null()]), ip_allow: Type.Array(Type.String()) }), ...std },
      },
    },
    async (req) => {
      await ownTemplate(req, req.params.id);
      const r = await setTemplateApi(ctx, req.params.id, { enabled: req.body.enabled, ipAllow: req.body.ip_allow, ownKey: req.body.own_key });
      return { template: await templateOut(ctx, r.template), api_key: r.app?.key ?? null, api_secret: r.secret, ip_allow: r.app?.ipAllow ?? [] };
    },
  );

  // --- records ---------------------------------------------------------------------------------
  const Batch = Type.Object({ records: Type.Array(Values, { minItems: 1, maxItems: MAX_BATCH }) }, { additionalProperties: false });
  app.post<{ Params: Static<typeof IdParams>; Body: Static<typeof Batch> }>(
    '/code-templates/:id/records',
    {
      bodyLimit: 16 * 1024 * 1024,
      schema: {
        tags,
        summary: `Create 1 to ${MAX_BATCH} codes in one call (all or nothing); QR images are rendered when first fetched`,
        params: IdParams,
        body: Batch,
        response: { 201: Type.Object({ records: Type.Array(Type.Composite([RecordOut, Type.Object({ qr_url: Type.String() })])) }), ...std },
      },
    },
    async (req, reply) => {
      const { p, t } = await ownTemplate(req, req.params.id);
      const recs = await createRecords(ctx, t, checkBatch(t, req.body.records), actorOf(p));
      const base = `${ctx.config.publicUrl}/rest/v1/code-records`;
      return reply.code(201).send({ records: recs.map((r) => ({ ...recordOut(ctx, r), qr_url: `${base}/${r.id}/qr` })) });
    },
  );
  const Page = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })), offset: Type.Optional(Type.Integer({ minimum: 0, default: 0 })) }, { additionalProperties: false });
  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof Page> }>(
    '/code-templates/:id/records',
    { schema: { tags, params: IdParams, querystring: Page, response: { 200: Type.Array(RecordOut), ...std } } },
    async (req) => {
      const { t } = await ownTemplate(req, req.params.id);
      return (await listRecords(ctx, t.id, req.query)).map((r) => recordOut(ctx, r));
    },
  );
  app.get<{ Params: Static<typeof IdParams> }>('/code-records/:id', { schema: { tags, params: IdParams, response: { 200: RecordOut, ...std } } }, async (req) => recordOut(ctx, (await ownRecord(req, req.params.id)).r));
  const Edit = Type.Object({ values: Values }, { additionalProperties: false });
  app.patch<{ Params: Static<typeof IdParams>; Body: Static<typeof Edit> }>(
    '/code-records/:id',
    { schema: { tags, summary: 'New values; the code and its image stay, the next scan shows them', params: IdParams, body: Edit, response: { 200: RecordOut, ...std } } },
    async (req) => {
      const { p } = await ownRecord(req, req.params.id);
      return recordOut(ctx, await editRecord(ctx, req.params.id, req.body.values, actorOf(p)));
    },
  );
  app.get<{ Params: Static<typeof IdParams> }>(
    '/code-records/:id/history',
    { schema: { tags, params: IdParams, response: { 200: Type.Array(Type.Object({ version: Type.Integer(), values: Type.Array(Type.String()), actor: Type.String(), at: Type.Integer() })), ...std } } },
    async (req) => {
      await ownRecord(req, req.params.id);
      return recordHistory(ctx, req.params.id);
    },
  );
  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof QrQuery> }>(
    '/code-records/:id/qr',
    { schema: { tags, summary: "QR image of the code (the template's style unless overridden); PNG, or SVG with format=svg", params: IdParams, querystring: QrQuery, response: { ...std } } },
    async (req, reply) => {
      const { r } = await ownRecord(req, req.params.id);
      const t = (await getTemplate(ctx, r.templateId))!;
      return sendQr(reply, recordUrl(ctx, r), { ...(t.style.qr as Record<string, string> | undefined), ...req.query });
    },
  );
  app.get<{ Params: Static<typeof IdParams> }>(
    '/code-records/:id/qrstyle-url',
    { schema: { tags, summary: 'A new signed QR image URL (valid one day), as dynamicSingleCreate returns', params: IdParams, response: { 200: Type.Object({ qrstyle_url: Type.String() }), ...std } } },
    async (req) => ({ qrstyle_url: await signedQrUrl(ctx, (await ownRecord(req, req.params.id)).r.code) }),
  );

  // --- exports ---------------------------------------------------------------------------------
  async function* allRecords(t: Template): AsyncGenerator<CodeRecord> {
    let after = 0;
    for (;;) {
      const page = await listRecords(ctx, t.id, { afterId: after, limit: 2000 });
      if (page.length === 0) return;
      yield* page;
      after = page[page.length - 1].id;
    }
  }
  app.get<{ Params: Static<typeof IdParams> }>(
    '/code-templates/:id/export.xlsx',
    { schema: { tags, summary: "The template's records with their links, as an Excel workbook", params: IdParams, response: { ...std } } },
    async (req, reply) => {
      const { t } = await ownTemplate(req, req.params.id);
      // streamed: rows are written as they are read, so memory does not grow with the template
      const out = new PassThrough();
      const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: out, useStyles: true, useSharedStrings: false });
      wb.created = new Date(ctx.clock.now());
      const ws = wb.addWorksheet(t.templateNum);
      ws.columns = [
        { header: 'ID', key: 'id', width: 8 },
        { header: '码 code', key: 'code', width: 12 },
        { header: '链接 web_url', key: 'url', width: 36 },
        ...t.fields.map((f, i) => ({ header: f.name, key: `f${i}`, width: 18 })),
        { header: '版本 version', key: 'version', width: 10 },
        { header: '创建 created', key: 'created', width: 22 },
        { header: '更新 updated', key: 'updated', width: 22 },
      ];
      ws.getRow(1).font = { bold: true };
      void (async () => {
        try {
          for await (const r of allRecords(t)) {
            const row: Record<string, unknown> = { id: r.id, code: r.code, url: recordUrl(ctx, r), version: r.version, created: new Date(r.createdAt).toISOString(), updated: new Date(r.updatedAt).toISOString() };
            t.fields.forEach((f, i) => (row[`f${i}`] = displayValue(f, r.values[i] ?? '')));
            ws.addRow(row).commit();
          }
          ws.commit();
          await wb.commit();
        } catch (e) {
          req.log.error({ err: e }, 'xlsx export failed');
          out.destroy(e as Error);
        }
      })();
      return reply
        .type('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet')
        .header('content-disposition', `attachment; filename="${t.templateNum}.xlsx"`)
        .send(out);
    },
  );
  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof QrQuery> }>(
    '/code-templates/:id/qr.zip',
    { schema: { tags, summary: "A ZIP of every code's QR image (PNG or SVG), named <id>-<code>.<ext>", params: IdParams, querystring: QrQuery, response: { ...std } } },
    async (req, reply) => {
      const { t } = await ownTemplate(req, req.params.id);
      const { format, ...styleQuery } = { ...(t.style.qr as Record<string, string> | undefined), ...req.query };
      const style = parseQrStyle(styleQuery);
      const out = new PassThrough();
      const zip = new Zip((err, chunk, final) => {
        if (err) out.destroy(err);
        else {
          out.write(Buffer.from(chunk));
          if (final) out.end();
        }
      });
      void (async () => {
        try {
          for await (const r of allRecords(t)) {
            const name = `${r.id}-${r.code}.${format === 'svg' ? 'svg' : 'png'}`;
            // PNGs are compressed already: store them; SVG text deflates well
            const entry = format === 'svg' ? new ZipDeflate(name, { level: 6 }) : new ZipPassThrough(name);
            zip.add(entry);
            entry.push(format === 'svg' ? Buffer.from(await renderQrSvg(recordUrl(ctx, r), style)) : await renderQrPng(recordUrl(ctx, r), style), true);
          }
          zip.end();
        } catch (e) {
          req.log.error({ err: e }, 'zip export failed');
          out.destroy(e as Error);
        }
      })();
      return reply.type('application/zip').header('content-disposition', `attachment; filename="${t.templateNum}-qr.zip"`).send(out);
    },
  );

  // --- analytics -------------------------------------------------------------------------------
  const stats = (q: Static<typeof StatsQuery>) => ({ from: q.from, to: q.to, bucket: q.bucket ?? ('day' as const) });
  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof StatsQuery> }>(
    '/code-records/:id/stats',
    { schema: { tags, summary: 'Scans of one code', params: IdParams, querystring: StatsQuery, response: { 200: StatsOut, ...std } } },
    async (req) => recordStats(ctx, (await ownRecord(req, req.params.id)).r, stats(req.query)),
  );
  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof StatsQuery> }>(
    '/code-templates/:id/stats',
    { schema: { tags, summary: 'Scans of all codes of a template', params: IdParams, querystring: StatsQuery, response: { 200: StatsOut, ...std } } },
    async (req) => templateStats(ctx, (await ownTemplate(req, req.params.id)).t, stats(req.query)),
  );
}
