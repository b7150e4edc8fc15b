/**
 * Native REST for declared objects (the schema the BQP dialect serves): the objects with their
 * fields and rules, and rows read through the objects service's query path (role rules, hidden
 * fields, `cond` parsed and compiled to parameterised SQL) — for operators, since the objects'
 * tables belong to the deployment, not to a tenant (docs/bqp.md, "Tenancy").
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Caller } from '../../services/objects/index.js';
import type { ObjectDescription, ObjectsService } from '../../services/objects/index.js';
import { DomainError } from '../../core/errors.js';
import { etagMatches } from '../http.js';
import { requireOperator, requirePrincipal, type Principal } from './auth.js';
import { problems } from './links.js';
import { contentDisposition } from '../../services/objects/files.js';

const FieldType = Type.Union(['id', 'int', 'dec', 'real', 'text', 'datetime', 'date', 'flag'].map((t) => Type.Literal(t)));
const PerRole = <T extends TSchema>(t: T) => Type.Object({ guest: Type.Optional(t), user: Type.Optional(t), employee: Type.Optional(t), admin: Type.Optional(t) });

export const ObjectOut = Type.Object({
  name: Type.String(),
  fields: Type.Array(
    Type.Object({
      name: Type.String(),
      type: FieldType,
      length: Type.Integer({ description: 'text length (0: unbounded, and for other types)' }),
      required: Type.Boolean(),
      readonly: Type.Boolean({ description: 'readonly for every role' }),
      readonly_for: Type.Array(Type.String(), { description: 'roles for which the field is readonly by their rules' }),
      hidden: Type.Boolean({ description: 'never returned, and not usable in cond or orderby' }),
      password: Type.Boolean({ description: 'stored as a hash' }),
      enum: Type.Union([Type.Record(Type.String(), Type.String()), Type.Null()], { description: 'stored value → the text a query answers with' }),
      attachment: Type.Boolean({ description: 'holds ids of uploaded files (attId, picId: one id; atts, pics: a comma-separated list), served by GET /objects/{name}/attachments/{id}' }),
    }),
  ),
  virtual_fields: Type.Array(Type.Object({ name: Type.String(), type: FieldType, object: Type.String(), field: Type.String(), default: Type.Boolean({ description: 'included in res=*' }) })),
  sub_objects: Type.Array(Type.Object({ name: Type.String(), object: Type.String(), foreign_key: Type.String(), default: Type.Boolean() })),
  operations: PerRole(Type.Array(Type.String())),
  row_filters: PerRole(Type.Record(Type.String(), Type.String({ description: 'session variable' }))),
  max_page_size: Type.Integer(),
});

const toOut = (d: ObjectDescription): Static<typeof ObjectOut> => ({
  name: d.name,
  fields: d.fields.map((f) => ({ name: f.name, type: f.type, length: f.length, required: f.required, readonly: f.readonly, readonly_for: f.readonlyFor, hidden: f.hidden, password: f.password, enum: f.enum, attachment: f.attachment })),
  virtual_fields: d.virtualFields,
  sub_objects: d.subObjects.map((s) => ({ name: s.name, object: s.object, foreign_key: s.foreignKey, default: s.default })),
  operations: d.operations,
  row_filters: d.rowFilters,
  max_page_size: d.maxPageSize,
});

const NameParams = Type.Object({ name: Type.String({ pattern: '^[A-Z][A-Za-z0-9_]{0,62}$', description: 'object name as declared' }) });

/** Operators act as the BQP admin role; a developer session binds its id to `adminId` for row filters. */
const adminCaller = (p: Principal): Caller => ({ role: 'admin', loggedIn: true, vars: p.kind === 'developer' ? { adminId: p.developer.id } : {} });

const Row = Type.Record(Type.String(), Type.Unknown());
const RowParams = Type.Object({ name: NameParams.properties.name, id: Type.Integer({ minimum: 1, maximum: 2147483647, description: 'the row id' }) });
const EditBody = Type.Record(Type.String({ maxLength: 64 }), Type.Union([Type.String({ maxLength: 100000 }), Type.Number(), Type.Boolean(), Type.Null()]), {
  description: 'field → new value, as `Obj.set` takes them: null or "" clears a field, "empty" stores an empty text; sub-objects are not written here',
  maxProperties: 200,
});
const AttParams = Type.Object({ name: NameParams.properties.name, id: Type.Integer({ minimum: 1, maximum: 2147483647, description: 'id of the uploaded file' }) });
const AttQ = Type.Object({ thumb: Type.Optional(Type.Boolean({ description: "the image's thumbnail (uploaded with genThumb=1)" })) }, { additionalProperties: false });

export async function objectsRest(app: FastifyInstance, svc: ObjectsService): Promise<void> {
  const describe = (name: string) => {
    const def = svc.schema.objects.get(name);
    if (!def) throw new DomainError('NOT_FOUND', `no declared object ${name}`);
    return toOut(svc.describe(def));
  };

  app.get('/objects', { schema: { tags: ['objects'], summary: 'The declared objects (the BQP schema) with their fields, rules and operations per role', response: { 200: Type.Array(ObjectOut), ...problems(401, 429) } } }, async (req) => {
    requirePrincipal(req);
    return [...svc.schema.objects.keys()].sort().map(describe);
  });

  app.get<{ Params: Static<typeof NameParams> }>(
    '/objects/:name',
    { schema: { tags: ['objects'], summary: 'One declared object', params: NameParams, response: { 200: ObjectOut, ...problems(401, 404, 429) } } },
    async (req) => {
      requirePrincipal(req);
      return describe(req.params.name);
    },
  );

  const RowsQ = Type.Object(
    {
      cond: Type.Optional(Type.String({ maxLength: 4000, description: 'a BQP condition, e.g. `status=\'CR\' and amount>100` or `name like \'%店%\'` (docs/bqp.md)' })),
      orderby: Type.Optional(Type.String({ maxLength: 500, description: 'e.g. `id desc` (default: id)' })),
      res: Type.Optional(Type.String({ maxLength: 2000, description: 'columns (default `*`: every visible field, default virtual fields and sub-objects)' })),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50, description: "at most the object's max_page_size" })),
      cursor: Type.Optional(Type.String({ maxLength: 20, description: 'next_cursor of the previous page' })),
    },
    { additionalProperties: false },
  );
  app.get<{ Params: Static<typeof NameParams>; Querystring: Static<typeof RowsQ> }>(
    '/objects/:name/rows',
    {
      schema: {
        tags: ['objects'],
        summary: "Rows of an object, read as the BQP admin role would (operators); the first page carries the total",
        params: NameParams,
        querystring: RowsQ,
        response: {
          200: Type.Object({
            columns: Type.Array(Type.String()),
            items: Type.Array(Type.Record(Type.String(), Type.Unknown())),
            next_cursor: Type.Union([Type.String(), Type.Null()]),
            total: Type.Union([Type.Integer(), Type.Null()], { description: 'on the first page only' }),
          }),
          ...problems(400, 401, 403, 404, 429),
        },
      },
    },
    async (req) => {
      const r = await svc.browse(adminCaller(requireOperator(req)), req.params.name, req.query);
      return { columns: r.cols, items: r.rows, next_cursor: r.next, total: r.total };
    },
  );

  app.patch<{ Params: Static<typeof RowParams>; Body: Static<typeof EditBody> }>(
    '/objects/:name/rows/:id',
    {
      schema: {
        tags: ['objects'],
        summary: 'Changes fields of one row as `Obj.set` would for the BQP admin role (operators): readonly, required, enum and type rules, row filter, status log; answers the row as read back',
        params: RowParams,
        body: EditBody,
        response: { 200: Row, ...problems(400, 401, 403, 404, 429) },
      },
    },
    async (req) => svc.edit(adminCaller(requireOperator(req)), req.params.name, req.params.id, req.body),
  );

  app.get<{ Params: Static<typeof AttParams>; Querystring: Static<typeof AttQ> }>(
    '/objects/:name/attachments/:id',
    {
      schema: {
        tags: ['objects'],
        summary: 'An uploaded file (BQP `upload`) that a row of this object refers to in an attachment field, with its stored content type (operators); images inline, other files as a download',
        params: AttParams,
        querystring: AttQ,
        response: { 200: Type.Unknown({ description: 'the file' }), ...problems(400, 401, 403, 404, 429) },
      },
    },
    async (req, reply) => {
      const found = await svc.attachment(adminCaller(requireOperator(req)), req.params.name, req.params.id, req.query.thumb === true);
      if (!found) throw new DomainError('NOT_FOUND', `no file ${req.params.id} of ${req.params.name}`);
      const { row, etag } = found;
      const tag = `"${etag}"`;
      // a browser revalidating what it has (after max-age) gets 304 without the bytes
      if (etagMatches(req.headers['if-none-match'], tag)) return reply.code(304).header('ETag', tag).header('Cache-Control', 'private, max-age=3600').send();
      const body = await svc.ctx.blobs.stream(row.blob_key).catch(() => null);
      if (!body) throw new DomainError('NOT_FOUND', `the bytes of file ${req.params.id} are gone`);
      return reply
        .type(row.mime)
        .header('Content-Length', String(body.row.size))
        .header('ETag', tag)
        .header('Cache-Control', 'private, max-age=3600')
        .header('X-Content-Type-Options', 'nosniff')
        .header('Content-Security-Policy', "default-src 'none'; sandbox")
        .header('Content-Disposition', contentDisposition(row.org_name, /^image\//.test(row.mime)))
        .send(body.body);
    },
  );
}
