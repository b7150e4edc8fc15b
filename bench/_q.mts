import { mkdtempSync } from 'node:fs'; import { tmpdir } from 'node:os'; import { join } from 'node:path';
import { sql } from 'kysely';
import { loadConfig } from '../src/core/config.js';
import { createPlatform } from '../src/platform.js';
import { createTenant, getTenant } from '../src/services/accounts/index.js';
const ctx = await createPlatform(loadConfig({ MENHU_DATA: mkdtempSync(join(tmpdir(), 'q-')), LOG_LEVEL: 'silent' }, { port: 0, jobConcurrency: 0 }));
const t = await createTenant(ctx, 'b'); const id = Number(t.id);
const k = ctx.db.kysely;
const raw = (ctx.db as any).sqlite ?? null;
async function time(name: string, f: () => Promise<unknown>, n = 20000) { for (let i = 0; i < 2000; i++) await f(); const c0 = process.cpuUsage(); for (let i = 0; i < n; i++) await f(); const c = process.cpuUsage(c0); console.log(name.padEnd(30), ((c.user + c.system) / n).toFixed(2), 'µs'); }
for (let r = 0; r < 2; r++) {
await time('getTenant (kysely builder)', () => getTenant(ctx, id));
const compiled = k.selectFrom('tenants').selectAll().where('id', '=', id).compile();
await time('kysely executeQuery(compiled)', () => k.executeQuery(compiled));
await time('kysely sql template', () => sql`select * from tenants where id = ${id}`.execute(k));
await time('compile only', async () => k.selectFrom('tenants').selectAll().where('id', '=', id).compile());
}
