/**
 * Native REST for declared objects (the schema the BQP dialect serves): the objects with their
 * fields and rules, and rows read through the objects service's query path (role rules, hidden
 * fields, `cond` parsed and compiled to parameterised SQL) — for operators, since the objects'
 * tables belong to the deployment, not to a tenant (docs/bqp.md, "Tenancy").
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { ObjectDescription, ObjectsService } from '../../services/objects/index.js';
import { DomainError } from '../../core/errors.js';
import { requireOperator, requirePrincipal } from './auth.js';
import { problems } from './links.js';

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
  fields: d.fields.map((f) => ({ name: f.name, type: f.type, length: f.length, required: f.required, readonly: f.readonly, readonly_for: f.readonlyFor, hidden: f.hidden, password: f.password, enum: f.enum })),
  virtual_fields: d.virtualFields,
  sub_objects: d.subObjects.map((s) => ({ name: s.name, object: s.object, foreign_key: s.foreignKey, default: s.default })),
  operations: d.operations,
  row_filters: d.rowFilters,
  max_page_size: d.maxPageSize,
});

const NameParams = Type.Object({ name: Type.String({ pattern: '^[A-Z][A-Za-z0-9_]{0,62}$', description: 'object name as declared' }) });

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
      const p = requireOperator(req);
      const caller = { role: 'admin' as const, loggedIn: true, vars: p.kind === 'developer' ? { adminId: p.developer.id } : {} };
      const r = await svc.browse(caller, req.params.name, req.query);
      return { columns: r.cols, items: r.rows, next_cursor: r.next, total: r.total };
    },
  );
}
