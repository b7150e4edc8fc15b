/** `menhu codes import <template> <file.csv|file.xlsx> [--tenant N]`: bulk creation with the CLI's progress bar. */
import type { Ctx } from '../core/context.js';
import { getTemplate, parseTemplateNum, templateByNum } from '../services/codes/index.js';
import { importFile } from '../services/codes/import.js';
import { progressBar } from './progress.js';

export async function codesCommand(ctx: Ctx, args: string[], tenant: number | undefined, fail: (msg: string) => never): Promise<void> {
  const [sub, which, file] = args;
  if (sub !== 'import' || !which || !file) fail('usage: menhu codes import <template id | Mn --tenant N> <file.csv|file.xlsx>');
  const num = parseTemplateNum(which);
  const t = num !== null ? (tenant === undefined ? fail('--tenant is required with a template number like M8') : await templateByNum(ctx, tenant, num)) : /^\d+$/.test(which) ? await getTemplate(ctx, Number(which)) : null;
  if (!t) fail(`no template ${which}${tenant !== undefined ? ` in tenant ${tenant}` : ''}`);
  const bar = progressBar(`import ${t!.templateNum}`);
  const report = await importFile(ctx, t!, file, 'import', (done, total) => bar.update(done, total));
  bar.end();
  console.log(`${report.created} codes created from ${report.rows} rows (${report.mapping === 'by-name' ? 'columns matched by field name' : 'columns in field order'}); ${report.rejected.length} rejected`);
  for (const r of report.rejected) console.log(`  row ${r.row}: ${r.reason}`);
  if (report.rejected.length) process.exitCode = 3;
}
