/**
 * The dynamic codes area in a real browser: a template built in the field editor, a code created
 * and edited (the scanned page changes, the code does not), a CSV batch import with progress, the
 * Excel export read back, the scan chart, and the template's own cli.im key shown once.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import ExcelJS from 'exceljs';
import type { Page } from 'playwright-core';
import { loginOperator, openArea, overflowX, screenshot, startRig, type ConsoleRig } from './browser.js';

let rig: ConsoleRig;
let page: Page;
before(async () => {
  rig = await startRig();
  ({ page } = await rig.open({ lang: 'zh' }));
  await loginOperator(page);
});
after(() => rig?.close());

test('template editor, a code edited in place, CSV import with progress, Excel export, scans, API key', async () => {
  await openArea(page, 'codes');
  await page.waitForSelector('[data-testid=templates] td:has-text("资产信息")');

  const f = '[data-testid=template-form]';
  await page.fill(`${f} input[name=title]`, '泵站巡检');
  await page.fill(`${f} input[name=field-name-0]`, '备注');
  await page.selectOption(`${f} select[name=field-type-0]`, 'multi_line');
  await page.click('[data-testid=add-field]');
  await page.fill(`${f} input[name=field-name-1]`, '状态');
  await page.selectOption(`${f} select[name=field-type-1]`, 'single_choice');
  await page.fill(`${f} textarea[name=field-options-1]`, '正常\n维修');
  await page.click('[data-testid=add-field]');
  await page.fill(`${f} input[name=field-name-2]`, '名称');
  // order: move 名称 to the top (two steps up)
  await page.click(`${f} [data-field="2"] button[aria-label="上移"]`);
  await page.click(`${f} [data-field="1"] button[aria-label="上移"]`);
  await page.click(`${f} button[type=submit]`);
  await page.waitForSelector('[data-testid=template-title]');
  const id = Number(/codes\/(\d+)/.exec(page.url())![1]);
  const auth = { authorization: `Bearer ${rig.demo.operator.key}.${rig.demo.operator.secret}` };
  const tpl = await (await fetch(`${rig.server.url}/rest/v1/code-templates/${id}`, { headers: auth })).json() as { fields: { name: string; type: string; options?: string[] }[] };
  assert.deepEqual(tpl.fields.map((x) => x.name), ['名称', '备注', '状态']);
  assert.deepEqual(tpl.fields[2].options, ['正常', '维修']);

  // one code, then an edit: same code, new values on the scanned page
  await page.click('[data-testid=new-record]');
  await page.fill('[data-testid=record-dialog] input[name=value-0]', '一号泵站');
  await page.selectOption('[data-testid=record-dialog] select[name=value-2]', '1');
  await page.click('[data-testid=record-dialog] button[type=submit]');
  await page.waitForSelector('[data-testid=records] td:has-text("一号泵站")');
  const recs = await (await fetch(`${rig.server.url}/rest/v1/code-templates/${id}/records`, { headers: auth })).json() as { id: number; code: string; web_url: string }[];
  assert.equal(recs.length, 1);
  await page.click(`[data-testid=edit-${recs[0].id}]`);
  await page.fill('[data-testid=record-dialog] input[name=value-0]', '一号泵站（改）');
  await page.selectOption('[data-testid=record-dialog] select[name=value-2]', '2');
  await page.click('[data-testid=record-dialog] button[type=submit]');
  await page.waitForSelector('[data-testid=records] td:has-text("一号泵站（改）")');
  const landing = await (await fetch(recs[0].web_url)).text();
  assert.match(landing, /一号泵站（改）/);
  assert.match(landing, /维修/);
  const again = await (await fetch(`${rig.server.url}/rest/v1/code-records/${recs[0].id}`, { headers: auth })).json() as { code: string; version: number };
  assert.equal(again.code, recs[0].code);
  assert.equal(again.version, 2);

  // batch import: a header line, choices by text or number
  await page.click('[role=tab]:text-is("批量导入")');
  await page.fill('[data-testid=import-text]', '名称,备注,状态\n二号泵站,"多行\n备注",维修\n三号泵站,,1\n四号泵站,无,正常\n');
  await page.click('[data-testid=import-run]');
  await page.waitForSelector('[data-testid=import-status].ok-text');
  assert.match((await page.textContent('[data-testid=import-status]')) ?? '', /已导入 3 个码/);
  assert.equal(await page.getAttribute('[data-testid=import-progress] [role=progressbar]', 'aria-valuenow'), '3');
  // a bad batch writes nothing and says which rows
  await page.fill('[data-testid=import-text]', '五号泵站,,3\n');
  await page.click('[data-testid=import-run]');
  await page.waitForSelector('[data-testid=import-status].error');

  await page.click('[role=tab]:text-is("码记录")');
  await page.waitForSelector('[data-testid=records] td:has-text("四号泵站")');
  assert.equal(await page.$$eval('[data-testid=records] tbody tr', (r) => r.length), 4);
  const [xlsx] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=export-xlsx]')]);
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.readFile((await xlsx.path())!);
  assert.equal(wb.worksheets[0].actualRowCount, 5);
  assert.equal(await overflowX(page), 0);
  await screenshot(rig, page, 'codes-records');

  // scans of the edited code show in the template's chart
  await fetch(recs[0].web_url, { headers: { 'user-agent': 'Mozilla/5.0 (Linux; Android 14) Mobile' } });
  let scans = '0';
  for (let i = 0; i < 30 && scans === '0'; i++) {
    await page.waitForTimeout(200);
    await page.click('[role=tab]:text-is("码记录")');
    await page.click('[role=tab]:text-is("扫描统计")');
    await page.waitForSelector('[data-testid=stat-scans]');
    scans = (await page.textContent('[data-testid=stat-scans]'))!;
  }
  assert.ok(Number(scans) >= 1, `scans: ${scans}`);

  await page.click('[role=tab]:text-is("cli.im 接口")');
  await page.click('[data-testid=api-enable]');
  await page.waitForSelector('[data-testid=api-secret]');
  assert.match((await page.textContent('[data-testid=api-secret]')) ?? '', /\S{16,}/);
});
