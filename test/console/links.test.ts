/**
 * The short links area in a real browser: create a link, download its QR (PNG decoded back to the
 * short URL, SVG), retarget it, see scans in the chart, disable it. Checked against /s/<code>.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { decodeBoth } from '../qr/decode.js';
import { loginOperator, openArea, startRig, type ConsoleRig } from './browser.js';

let rig: ConsoleRig;
let page: Page;
before(async () => {
  rig = await startRig();
  ({ page } = await rig.open({ lang: 'en' }));
  await loginOperator(page);
});
after(() => rig?.close());

const scan = (url: string) => fetch(url, { redirect: 'manual', headers: { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148' } });

test('create a short link, download its QR as PNG and SVG, scan it, retarget it, disable it', async () => {
  await openArea(page, 'links');
  await page.fill('[data-testid=link-form] input[name=url]', 'https://example.com/first');
  await page.click('[data-testid=link-form] button[type=submit]');
  await page.waitForSelector('[data-testid=link-title]');
  const short = (await page.textContent('[data-testid=short-url]'))!;
  assert.match(short, new RegExp(`^${rig.server.url}/s/\\w{8}$`));

  // the preview image is served by the API to the session
  await page.waitForFunction(() => ((globalThis as any).document.querySelector('[data-testid=qr] img')?.naturalWidth ?? 0) > 0);
  const [png] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=qr-png]')]);
  assert.deepEqual(await decodeBoth(readFileSync((await png.path())!)), { jsqr: short, zxing: short });
  const [svg] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=qr-svg]')]);
  assert.deepEqual(await decodeBoth(readFileSync((await svg.path())!, 'utf8')), { jsqr: short, zxing: short });
  assert.match(svg.suggestedFilename(), /\.svg$/);

  let r = await scan(short);
  assert.equal(r.status, 302);
  assert.equal(r.headers.get('location'), 'https://example.com/first');
  await page.fill('[data-testid=link-url-form] input[name=url]', 'https://example.com/second');
  await page.click('[data-testid=link-url-form] button[type=submit]');
  await page.waitForSelector('dd:text-is("https://example.com/second")');
  r = await scan(short);
  assert.equal(r.headers.get('location'), 'https://example.com/second', 'the next scan sees the new target');

  // scans are buffered and flushed in batches; the chart shows them once written
  let scans = '0';
  for (let i = 0; i < 40 && scans !== '2'; i++) {
    await page.waitForTimeout(150);
    await page.reload();
    await page.waitForSelector('[data-testid=stat-scans]');
    scans = (await page.textContent('[data-testid=stat-scans]'))!;
  }
  assert.equal(scans, '2');
  assert.ok((await page.$$('[data-testid=scan-chart] rect')).length > 0);
  assert.match((await page.textContent('[data-testid=stats]')) ?? '', /iOS|mobile|phone/i);

  await page.click('[data-testid=link-toggle]');
  await page.waitForSelector('[data-testid=link-title] .badge.bad');
  assert.equal((await scan(short)).status, 404);
  await openArea(page, 'links');
  await page.waitForSelector(`[data-testid=links] tr:has-text("${short.slice(-8)}") .badge.bad`);
});
