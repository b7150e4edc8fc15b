import type { Ctx } from './core/context.js';
import { createApp, listApps, type App } from './core/credentials/apps.js';
import { addQuota } from './core/limits/quotas.js';
import { MODULES } from './modules/index.js';
import { createTenant, PLATFORM_TENANT, registerDeveloper } from './services/accounts/index.js';

/** The credentials used in the seed documents, so their sample code works against a demo server. */
export const DEMO = {
  tenant: 'demo',
  admin: { username: 'admin', password: 'admin' },
  mininglamp: { key: 'test', secret: 'test' },
  fangtang: { key: 'hiliad', secret: 'hiliad', uploads: 100 },
  cli: { key: 'CLb87ea759f877622c', secret: 'ddb42b7299b90cb5e0fd6c41e154c15d' },
  bqpBasic: { key: 'test', secret: '1234' },
  bqpSign: { key: '1', secret: 'demo' },
} as const;

export interface DemoInfo {
  tenantId: number;
  operator: App;
  native: App;
  ulord: App;
}

/**
 * Seeds the demo tenant once (on an empty data folder); later starts find it and return it.
 */
export async function seedDemo(ctx: Ctx): Promise<DemoInfo> {
  const db = ctx.db.kysely;
  const seeded = await db.selectFrom('settings').select('value').where('key', '=', 'demo_tenant').executeTakeFirst();
  if (seeded) {
    const tenantId = Number(seeded.value);
    const demoApps = await listApps(ctx, { tenantId });
    const opApps = await listApps(ctx, { tenantId: PLATFORM_TENANT });
    return {
      tenantId,
      operator: opApps.find((a) => a.name === 'demo operator')!,
      native: demoApps.find((a) => a.name === 'demo native')!,
      ulord: demoApps.find((a) => a.name === 'demo ulord')!,
    };
  }
  const tenant = await createTenant(ctx, DEMO.tenant);
  const tenantId = Number(tenant.id);
  const admin = await registerDeveloper(ctx, { ...DEMO.admin, role: 'admin', tenantId });
  const mk = (name: string, services: string[], key?: string, secret?: string, t = tenantId) =>
    createApp(ctx, { tenantId: t, name, services, key, secret, developerId: admin.id });
  await mk('demo mininglamp', ['mininglamp'], DEMO.mininglamp.key, DEMO.mininglamp.secret);
  await mk('demo fangtang', ['fangtang'], DEMO.fangtang.key, DEMO.fangtang.secret);
  await mk('demo cli.im', ['cli'], DEMO.cli.key, DEMO.cli.secret);
  await mk('demo bqp basic', ['bqp'], DEMO.bqpBasic.key, DEMO.bqpBasic.secret);
  await mk('demo bqp sign', ['bqp-sign'], DEMO.bqpSign.key, DEMO.bqpSign.secret);
  const ulord = await mk('demo ulord', ['ulord']);
  const native = await mk('demo native', ['native']);
  const operator = await createApp(ctx, { tenantId: PLATFORM_TENANT, name: 'demo operator', services: ['native'] });
  await addQuota(db, tenantId, 'fangtang', DEMO.fangtang.uploads);
  for (const m of MODULES) await m.demo?.(ctx, { tenantId, adminId: admin.id });
  await db.insertInto('settings').values({ key: 'demo_tenant', value: String(tenantId) }).execute();
  return { tenantId, operator, native, ulord };
}
