/**
 * The ledger area in a real browser: the demo admin's funded developer account, wallets created and
 * funded by the operator, a transfer with the pay password, the audit, a statement and its Excel file.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import ExcelJS from 'exceljs';
import type { Page } from 'playwright-core';
import { loginOperator, openArea, startRig, type ConsoleRig } from './browser.js';

let rig: ConsoleRig;
let page: Page;
before(async () => {
  rig = await startRig();
  ({ page } = await rig.open({ lang: 'en' }));
  await loginOperator(page);
});
after(() => rig?.close());

test('wallets, funding, a transfer, the audit and a statement exported to Excel', async () => {
  await openArea(page, 'ledger');
  await page.waitForSelector('[data-testid=my-balance]');
  assert.match((await page.textContent('[data-testid=my-balance]'))!, /^1000$/);
  await page.selectOption('[data-testid=ledger-app]', String(rig.demo.ulord.id));

  for (const u of ['alice', 'bob']) {
    await page.fill('[data-testid=wallet-form] input[name=username]', u);
    await page.fill('[data-testid=wallet-form] input[name=pay_password]', `${u}-pay`);
    await page.click('[data-testid=wallet-form] button[type=submit]');
    await page.waitForSelector(`[data-testid=balance-${u}]`);
  }

  await page.selectOption('[data-testid=fund-form] select[name=app_id]', String(rig.demo.ulord.id));
  await page.fill('[data-testid=fund-form] input[name=wallet]', 'alice');
  await page.fill('[data-testid=fund-form] input[name=amount]', '50');
  await page.click('[data-testid=fund-form] button[type=submit]');
  await page.waitForSelector('[data-testid=fund-done]');

  await page.click('[role=tab]:text-is("Transfers")');
  const f = '[data-testid=transfer-form]';
  await page.fill(`${f} input[name=from]`, 'alice');
  await page.fill(`${f} input[name=pay_password]`, 'wrong');
  await page.fill(`${f} input[name=to]`, 'bob');
  await page.fill(`${f} input[name=amount]`, '12.5');
  await page.click(`${f} button[type=submit]`);
  await page.waitForSelector('[role=alert]');
  await page.fill(`${f} input[name=pay_password]`, 'alice-pay');
  await page.click(`${f} button[type=submit]`);
  await page.waitForSelector('[data-testid=transfer-done]');
  await page.waitForSelector('[data-testid=transfers] td:text-is("12.5")');

  await page.click('[role=tab]:text-is("Wallets")');
  await page.waitForSelector('[data-testid=balance-alice]:text-is("37.5")');
  assert.equal(await page.textContent('[data-testid=balance-bob]'), '12.5');

  await page.click('[data-testid=audit]');
  await page.waitForSelector('[data-testid=audit-result] .badge.ok');

  await page.click('[role=tab]:text-is("Statements")');
  await page.fill('[data-testid=statement-form] input[name=username]', 'alice');
  await page.click('[data-testid=statement-form] button[type=submit]');
  await page.waitForSelector('[data-testid=statement-form] ~ .empty, [data-testid=statement]');
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=statement-xlsx]')]);
  assert.match(dl.suggestedFilename(), /\.xlsx$/);
  const wb = new ExcelJS.Workbook();
  await wb.xlsx.readFile((await dl.path())!);
  const header = wb.worksheets[0].getRow(1).values as unknown[];
  assert.ok(header.includes('price (ULD)'));
});
