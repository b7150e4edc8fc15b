/** `menhu codes import <template> <file.csv|file.xlsx> [--tenant N]`: bulk creation with a progress bar. */
import { SingleBar, Presets } from 'cli-progress';
import type { Ctx } from '../core/context.js';
import { getTemplate, parseTemplateNum, templateByNum } from '../services/codes/index.js';
import { importFile } from '../services/codes/import.js';

export async function codesCommand(ctx: Ctx, args: string[], tenant: number | undefined, fail: (msg: string) => never): Promise<void> {
  const [sub, which, file] = args;
  if (sub !== 'import' || !which || !file) fail('usage: menhu codes import <template id | Mn --tenant N> <file.csv|file.xlsx>');
  const num = parseTemplateNum(which);
  const t = num !== null ? (tenant === undefined ? fail('--tenant is required with a template number like M8') : await templateByNum(ctx, tenant, num)) : /^\d+$/.test(which) ? await getTemplate(ctx, Number(which)) : null;
  if (!t) fail(`no template ${which}${tenant !== undefined ? ` in tenant ${tenant}` : ''}`);
  const bar = new SingleBar({ format: `${t!.templateNum} {bar} {percentage}% | {value}/{total} rows | {eta_formatted} left`, stream: process.stderr, hideCursor: true, noTTYOutput: true, notTTYSchedule: 1000 }, Presets.shades_classic);
  let started = false;
  const report = await importFile(ctx, t!, file, 'import', (done, total) => {
    if (!started) {
      bar.start(total, 0);
      started = true;
    }
    bar.update(done);
  });
  if (started) bar.stop();
  console.log(`${report.created} codes created from ${report.rows} rows (${report.mapping === 'by-name' ? 'columns matched by field name' : 'columns in field order'}); ${report.rejected.length} rejected`);
  for (const r of report.rejected) console.log(`  row ${r.row}: ${r.reason}`);
  if (report.rejected.length) process.exitCode = 3;
}
