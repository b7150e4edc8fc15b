/**
 * Usage and the request log in a real browser: requests made through two dialects (native bearer
 * and cli.im signed) show up in the per-service and per-app charts and in the log, the filters and
 * the auto-refresh work, and the pages fit a phone.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Page } from 'playwright-core';
import { cliSign } from '../../src/core/credentials/schemes.js';
import { DEMO } from '../../src/demo.js';
import { FLUSH_MS } from '../../src/services/usage/index.js';
import { bearer, http, jsonBody } from '../helpers.js';
import { loginOperator, openArea, overflowX, screenshot, startRig, type ConsoleRig } from './browser.js';

let rig: ConsoleRig;
let page: Page;
before(async () => {
  rig = await startRig();
  ({ page } = await rig.open({ lang: 'en' }));
  await loginOperator(page);
});
after(() => rig?.close());

/** Every server's buffer written (each writes its own every FLUSH_MS; in cluster mode there are two). */
const settle = () => sleep(FLUSH_MS + 300);
const nativeCall = (secret?: string) => http(`${rig.server.url}/rest/v1/me`, { headers: bearer({ key: rig.demo.native.key, secret: secret ?? rig.demo.native.secret }) });
async function cliCall(): Promise<void> {
  const params = { template_num: 'M8', api_key: DEMO.cli.key, values: ['a', 'b', 'c', 'd', 'e', 'f', '', ''] };
  const r = await http(`${rig.server.url}/cli-open-platform-service/v1/dynamicQrcode/dynamicSingleCreate`, jsonBody({ ...params, sign: cliSign(params, DEMO.cli.secret) }));
  assert.equal(r.json.code, 0, r.text);
}

test('requests through two dialects appear in the usage charts, per service and per app', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await nativeCall()).status, 200);
  for (let i = 0; i < 2; i++) await cliCall();
  await settle();
  await openArea(page, 'usage');
  await page.waitForSelector('[data-testid=usage-service-chart] rect[data-series=cli]');
  // the per-service chart stacks both dialects; the table says how many each
  assert.ok((await page.$$('[data-testid=usage-service-chart] rect[data-series=native]')).length > 0);
  assert.equal(await page.textContent('[data-testid=requests-cli]'), '2');
  assert.ok(Number((await page.textContent('[data-testid=requests-native]'))!.replace(/\D/g, '')) >= 3);
  // per app: the demo native app and the cli.im app, by name
  const apps = (await page.textContent('[data-testid=usage-app-table]'))!;
  assert.match(apps, /demo native/);
  assert.match(apps, /demo cli/i);
  assert.ok((await page.$$(`[data-testid=usage-app-chart] rect[data-series="${rig.demo.native.id}"]`)).length > 0);

  // another range: 30 days, daily buckets
  await page.click('[data-testid=range] button:text-is("30 days")');
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('[data-testid=usage-service-chart] g').length === 31);
  assert.equal(await page.textContent('[data-testid=requests-cli]'), '2');
  await screenshot(rig, page, 'usage');
});

test('the request log lists them newest first, filters, and refreshes itself', async () => {
  assert.equal((await nativeCall('wrong')).status, 401);
  await settle();
  await openArea(page, 'requests');
  await page.waitForSelector('[data-testid=request-log] tbody tr');
  const services = await page.$$eval('[data-testid=request-log] [data-col=service]', (els) => els.map((e) => e.textContent));
  assert.ok(services.includes('cli') && services.includes('native'), services.join(','));

  // filter: cli.im only
  await page.selectOption('[data-testid=log-filters] select[name=service]', 'cli');
  await page.click('[data-testid=log-filters] button[type=submit]');
  await page.waitForFunction(() => {
    const cells = [...(globalThis as any).document.querySelectorAll('[data-testid=request-log] [data-col=service]')];
    return cells.length === 2 && cells.every((c: any) => c.textContent === 'cli');
  });
  assert.deepEqual(await page.$$eval('[data-testid=request-log] [data-col=route]', (els) => els.map((e) => e.textContent)), [
    '/cli-open-platform-service/v1/dynamicQrcode/dynamicSingleCreate',
    '/cli-open-platform-service/v1/dynamicQrcode/dynamicSingleCreate',
  ]);

  // filter: failures with error code SECRET_INVALID
  await page.selectOption('[data-testid=log-filters] select[name=service]', '');
  await page.check('[data-testid=log-filters] input[name=errors]');
  await page.fill('[data-testid=log-filters] input[name=error_code]', 'SECRET_INVALID');
  await page.click('[data-testid=log-filters] button[type=submit]');
  await page.waitForFunction(() => {
    const cells = [...(globalThis as any).document.querySelectorAll('[data-testid=request-log] [data-col=error]')];
    return cells.length === 1 && cells[0].textContent === 'SECRET_INVALID';
  });

  // auto-refresh: a new failing call shows up without touching the page
  await page.check('[data-testid=auto-refresh]');
  assert.equal((await nativeCall('wrong-again')).status, 401);
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('[data-testid=request-log] [data-col=error]').length === 2, undefined, { timeout: 12_000 });
  await page.uncheck('[data-testid=auto-refresh]');
  await screenshot(rig, page, 'request-log');
});

test('both pages fit a phone, in Chinese', async () => {
  const { context, page: phone } = await rig.open({ viewport: { width: 390, height: 844 }, isMobile: true, lang: 'zh' });
  try {
    await loginOperator(phone);
    await openArea(phone, 'requests');
    await phone.waitForSelector('[data-testid=request-log] tbody tr');
    assert.match((await phone.textContent('h1'))!, /请求日志/);
    assert.ok((await overflowX(phone)) <= 0, 'no horizontal scrolling');
    await openArea(phone, 'usage');
    await phone.waitForSelector('[data-testid=usage-service-chart]');
    assert.match((await phone.textContent('h1'))!, /用量/);
    assert.ok((await overflowX(phone)) <= 0, 'no horizontal scrolling');
    await screenshot(rig, phone, 'usage-phone');
  } finally {
    await context.close();
  }
});
