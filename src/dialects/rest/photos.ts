/**
 * Native REST for photo restoration jobs (the service behind the Fangtang dialect): list, show,
 * create by uploading the image as the request body, the stored upload and the result, cancel.
 * Uploads, checks, quota holds and refunds are the photos service's, exactly as Fangtang uses them.
 */
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../../core/context.js';
import { DomainError } from '../../core/errors.js';
import { cancelPhotoJob, findPhotoJob, listPhotoJobs, photoJobFile, uploadPhoto, type PhotoJobRecord } from '../../services/photos/index.js';
import { requirePrincipal, tenantScope } from './auth.js';
import { problems } from './links.js';

/** Body types an upload may carry: the image's own type, or octet-stream (the bytes decide). */
export const PHOTO_BODY_TYPES = ['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream'];

const JobId = Type.String({ pattern: '^[0-9a-fA-F]{32}$', description: 'job id (the Fangtang `mdf`): 32 hex digits' });
const TenantQ = Type.Optional(Type.Integer({ minimum: 1, description: 'operators: the tenant to act on (default: their own for uploads, every tenant for reads)' }));
const RepairType = Type.String({ minLength: 1, maxLength: 64, description: '`sr` (super-resolution), `repair` (clean-up + sr), `colour` (colourization + sr, needs a model), any comma-separated mix of those, or `bg` (background colour, needs `rgb`)' });
const State = Type.Union(['queued', 'running', 'done', 'failed'].map((s) => Type.Literal(s)), { description: 'queued | running | done | failed (a cancelled job is failed with error "cancelled")' });

export const PhotoJobOut = Type.Object({
  id: Type.String(),
  tenant_id: Type.Integer(),
  app_id: Type.Union([Type.Integer(), Type.Null()], { description: 'the uploading app; null when a developer uploaded it in a session (the console)' }),
  repair_type: Type.String({ description: 'the steps, normalised: sr, repair,sr, repair,colour,sr, colour,sr, bg' }),
  rgb: Type.Union([Type.Array(Type.Integer(), { minItems: 3, maxItems: 3 }), Type.Null()]),
  status: State,
  progress: Type.Number({ minimum: 0, maximum: 1 }),
  attempts: Type.Integer(),
  error: Type.Union([Type.String(), Type.Null()]),
  input_type: Type.String(),
  result: Type.Union([Type.Object({ content_type: Type.String(), width: Type.Integer(), height: Type.Integer(), bytes: Type.Integer() }), Type.Null()]),
  charge: Type.Union([Type.Literal('held'), Type.Literal('committed'), Type.Literal('refunded'), Type.Null()], {
    description: 'the quota unit of the upload: held while the job runs, committed when it succeeded, refunded when it failed or was cancelled',
  }),
  created_at: Type.Integer(),
  finished_at: Type.Union([Type.Integer(), Type.Null()]),
  expires_at: Type.Union([Type.Integer(), Type.Null()], { description: 'when the upload and the result are deleted (set when the job ends)' }),
  files_kept: Type.Boolean(),
});

const toOut = (j: PhotoJobRecord): Static<typeof PhotoJobOut> => ({
  id: j.id,
  tenant_id: j.tenantId,
  app_id: j.appId,
  repair_type: j.repairType,
  rgb: j.rgb,
  status: j.state as Static<typeof State>,
  progress: j.progress,
  attempts: j.attempts,
  error: j.error === null ? null : j.error.slice(0, 500),
  input_type: j.inputType,
  result: j.result && { content_type: j.result.contentType, width: j.result.width, height: j.result.height, bytes: j.result.bytes },
  charge: j.charge as Static<typeof PhotoJobOut>['charge'],
  created_at: j.createdAt,
  finished_at: j.finishedAt,
  expires_at: j.expiresAt,
  files_kept: j.filesKept,
});

const IdParams = Type.Object({ id: JobId });
const ReadQ = Type.Object({ tenant_id: TenantQ }, { additionalProperties: false });
type ById = { Params: Static<typeof IdParams>; Querystring: Static<typeof ReadQ> };

/** The tenant a read acts on: undefined (every tenant) for operators who name none. */
function readScope(req: FastifyRequest, asked: number | undefined): number | undefined {
  return tenantScope(requirePrincipal(req), asked);
}

export async function photosRest(app: FastifyInstance, ctx: Ctx): Promise<void> {
  const cfg = ctx.config.photos;
  // Encapsulated: the image body types are accepted on this plugin's routes only; the rest of
  // the native API stays JSON-only.
  await app.register(async (sub) => {
    sub.addContentTypeParser(PHOTO_BODY_TYPES, { parseAs: 'buffer', bodyLimit: cfg.maxBytes }, (req, body: Buffer, done) => {
      req.rawBody = body; // HMAC signs the bytes as sent
      done(null, body);
    });

    const ListQ = Type.Object(
      {
        tenant_id: TenantQ,
        status: Type.Optional(State),
        repair_type: Type.Optional(RepairType),
        app_id: Type.Optional(Type.Integer({ minimum: 0, description: 'jobs of this app; 0: uploaded in a developer session' })),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })),
        cursor: Type.Optional(Type.String({ maxLength: 200, description: 'next_cursor of the previous page' })),
      },
      { additionalProperties: false },
    );
    sub.get<{ Querystring: Static<typeof ListQ> }>(
      '/photo-jobs',
      {
        schema: {
          tags: ['photo jobs'],
          summary: 'Photo jobs, newest first (operators: every tenant unless tenant_id)',
          querystring: ListQ,
          response: { 200: Type.Object({ items: Type.Array(PhotoJobOut), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...problems(400, 401, 403, 429) },
        },
      },
      async (req) => {
        const q = req.query;
        const r = await listPhotoJobs(ctx, { tenantId: readScope(req, q.tenant_id), state: q.status, repairType: q.repair_type, appId: q.app_id, limit: q.limit, cursor: q.cursor });
        return { items: r.items.map(toOut), next_cursor: r.nextCursor };
      },
    );

    const CreateQ = Type.Object(
      {
        repair_type: RepairType,
        rgb: Type.Optional(Type.String({ maxLength: 32, description: 'background colour for bg: three integers 0-255, e.g. 255,255,255' })),
        tenant_id: TenantQ,
      },
      { additionalProperties: false },
    );
    sub.post<{ Querystring: Static<typeof CreateQ>; Body: Buffer }>(
      '/photo-jobs',
      {
        bodyLimit: cfg.maxBytes,
        schema: {
          tags: ['photo jobs'],
          summary: 'Start a job: the body is the image (JPEG, PNG or WebP), options in the query',
          description: `Send the image bytes as the body with \`Content-Type: image/jpeg\`, \`image/png\`, \`image/webp\` or \`application/octet-stream\` (the bytes decide the format either way). At most ${cfg.maxBytes} bytes and ${cfg.maxPixels} pixels. One unit of the tenant's \`fangtang\` quota is held, spent when the job succeeds and refunded when it fails or is cancelled. Answers 201 with the job and \`Location\`.`,
          querystring: CreateQ,
          body: { content: Object.fromEntries(PHOTO_BODY_TYPES.map((t) => [t, { schema: { description: 'the image bytes (binary)' } }])) },
          response: { 201: PhotoJobOut, ...problems(400, 401, 402, 403, 413, 415, 422, 429) },
        },
      },
      async (req, reply) => {
        const p = requirePrincipal(req);
        if (!Buffer.isBuffer(req.body)) throw new DomainError('UNSUPPORTED_MEDIA', `send the image as the body with Content-Type ${PHOTO_BODY_TYPES.join(', ')}`, { field: 'file' });
        const tenantId = tenantScope(p, req.query.tenant_id) ?? p.tenantId;
        const up = await uploadPhoto(ctx, { tenantId, appId: p.kind === 'app' ? p.app.id : 0, repairType: req.query.repair_type, rgb: req.query.rgb, file: req.body });
        const job = await findPhotoJob(ctx, tenantId, up.mdf);
        return reply.code(201).header('location', `${req.url.split('?')[0]}/${job.id}`).send(toOut(job));
      },
    );
  });

  app.get<ById>(
    '/photo-jobs/:id',
    { schema: { tags: ['photo jobs'], summary: 'A photo job: status, progress, options, times, error, charge', params: IdParams, querystring: ReadQ, response: { 200: PhotoJobOut, ...problems(401, 403, 404, 429) } } },
    async (req) => toOut(await findPhotoJob(ctx, readScope(req, req.query.tenant_id), req.params.id)),
  );

  const file = (which: 'input' | 'result') => async (req: FastifyRequest<ById>, reply: FastifyReply) => {
    const f = await photoJobFile(ctx, readScope(req, req.query.tenant_id), req.params.id, which);
    const ext = f.type === 'image/png' ? 'png' : f.type === 'image/webp' ? 'webp' : 'jpg';
    const { body } = await ctx.blobs.stream(f.key);
    return reply
      .type(f.type)
      .header('content-disposition', `inline; filename="${f.job.id}-${which}.${ext}"`)
      .header('cache-control', 'private, max-age=300')
      .header('x-content-type-options', 'nosniff')
      .send(body);
  };
  const fileSchema = (summary: string, errs: number[]) => ({ schema: { tags: ['photo jobs'], summary, params: IdParams, querystring: ReadQ, response: { 200: { description: 'the image', content: { 'image/*': { schema: { type: 'string', format: 'binary' } } } }, ...problems(...errs) } } });
  app.get<ById>('/photo-jobs/:id/input', fileSchema('The uploaded image, while kept', [401, 403, 404, 410, 429]), file('input'));
  app.get<ById>('/photo-jobs/:id/result', fileSchema('The result image once the job is done, while kept (409 while it runs, 422 when it failed)', [401, 403, 404, 409, 410, 422, 429]), file('result'));

  app.post<ById>(
    '/photo-jobs/:id/cancel',
    {
      schema: {
        tags: ['photo jobs'],
        summary: 'Cancel a queued or running job: it fails with error "cancelled" and its quota unit is refunded (409 once it has ended)',
        params: IdParams,
        querystring: ReadQ,
        response: { 200: PhotoJobOut, ...problems(401, 403, 404, 409, 429) },
      },
    },
    async (req) => toOut(await cancelPhotoJob(ctx, readScope(req, req.query.tenant_id), req.params.id)),
  );
}
