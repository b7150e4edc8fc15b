/** Declared objects + the BQP dialect (issue 7); native REST under /rest/v1/objects. */
import type { Ctx } from '../core/context.js';
import { hashPassword } from '../core/crypto.js';
import { BqpLane, bqpDialect } from '../dialects/bqp/index.js';
import { objectsRest } from '../dialects/rest/objects.js';
import type { Module } from '../module.js';
import { ObjectsService } from '../services/objects/index.js';
import { syncSchema } from '../services/objects/ddl.js';
import { loadSchemaFile } from '../services/objects/schema.js';
import { timeText } from '../services/objects/crud.js';

const services = new WeakMap<Ctx, ObjectsService>();
/** Each platform's BQP lane (entered when the dialect is mounted; see Module.fast). */
const lanes = new WeakMap<Ctx, BqpLane>();

/** The BQP dialect's lane of a platform (tests read how many requests it answered). */
export const bqpLaneOf = (ctx: Ctx): BqpLane | undefined => lanes.get(ctx);

/** The objects service of a platform (created by the module's init). */
export function objectsOf(ctx: Ctx): ObjectsService {
  const s = services.get(ctx);
  if (!s) throw new Error('objects module not initialised');
  return s;
}

export const objectsModule: Module = {
  name: 'objects',
  schema: async (db, config) => syncSchema(db, loadSchemaFile(config.bqpSchema)),
  async init(ctx) {
    const svc = ObjectsService.load(ctx);
    const done = await svc.sync();
    if (done.length) ctx.log.info({ changes: done }, 'bqp schema applied');
    services.set(ctx, svc);
  },
  rest: (app, ctx) => objectsRest(app, objectsOf(ctx)),
  fast(ctx) {
    const lane = new BqpLane();
    lanes.set(ctx, lane);
    return (req, res, ip, id) => (lane.handler ? lane.handler(req, res, ip, id) : null);
  },
  async mount(app, ctx) {
    const svc = objectsOf(ctx);
    const lane = lanes.get(ctx) ?? new BqpLane();
    await app.register(async (sub) => bqpDialect(sub, { ctx, svc, lane }), { prefix: ctx.config.bqpPrefix.replace(/\/+$/, '') });
  },
  async demo(ctx) {
    const svc = objectsOf(ctx);
    const db = ctx.db.kysely as any;
    const t = (n: string) => svc.schema.objects.get(n)?.table;
    const now = timeText(ctx.clock.now());
    const pwd = await hashPassword('1234');
    if (t('User')) {
      const u = await db.insertInto(t('User')).values({ uname: 'rtest', phone: '19900000001', pwd, name: 'jdcloud-test', createTm: now }).returning('id').executeTakeFirstOrThrow();
      if (t('Ordr')) {
        for (const [amount, dscr, status] of [[12800, '洗车', 'CR'], [5000, '保养', 'RE']] as const) {
          await db.insertInto(t('Ordr')).values({ userId: Number(u.id), createTm: now, status, amount, dscr }).execute();
        }
      }
    }
    if (t('Employee')) await db.insertInto(t('Employee')).values({ uname: 'emp', phone: '13700000001', pwd, name: '店员', perms: 'emp,mgr' }).execute();
    if (t('Store')) {
      for (const [name, addr] of [['一号店', '上海市浦东新区'], ['二号店', '北京市海淀区']]) await db.insertInto(t('Store')).values({ name, addr, pause: 0, updateTm: now }).execute();
    }
  },
  banner: (ctx) => [`BQP objects   ${ctx.config.publicUrl}${ctx.config.bqpPrefix}/<Obj>.query   schema ${ctx.config.bqpSchema}`],
  async close(ctx) {
    await services.get(ctx)?.close();
  },
};
