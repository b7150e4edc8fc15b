/**
 * The reports area in a real browser: a report registered through the MiningLamp API, then
 * updated, shows both versions; its file downloads as registered; the proof bundle downloads and
 * is summarised; a recall with the registered metadata marks it recalled.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { PDFDocument } from 'pdf-lib';
import type { Page } from 'playwright-core';
import { decodeBoth } from '../qr/decode.js';
import { DEMO } from '../../src/demo.js';
import { loginOperator, openArea, screenshot, startRig, type ConsoleRig } from './browser.js';

let rig: ConsoleRig;
let page: Page;
const META = { title: '月度监播报告', type: '监播报告', period: '2026.10.01 - 2026.10.31', geom: '中国大陆' };
const form = (pdf: string) => {
  const fd = new FormData();
  for (const [k, v] of Object.entries({ user: DEMO.mininglamp.key, passcode: DEMO.mininglamp.secret, ...META })) fd.append(k, v);
  fd.append('file', new Blob([Buffer.from(pdf)]), 'MZ-CONSOLE-1.pdf');
  return fd;
};

before(async () => {
  rig = await startRig();
  for (const [op, pdf] of [
    ['commitreport', '%PDF-1.4 first version'],
    ['updatereport', '%PDF-1.4 second version'],
  ]) {
    const r = await fetch(`${rig.server.url}/api/v1/${op}/MZ-CONSOLE-1`, { method: 'POST', body: form(pdf) });
    assert.equal(r.status, 200, `${op}: ${r.status} ${await r.text()}`);
  }
  ({ page } = await rig.open({ lang: 'en' }));
  await loginOperator(page);
});
after(() => rig?.close());

test('list, versions, file download, proof bundle, stamp a PDF, the QR as PNG and SVG, recall', async () => {
  await openArea(page, 'reports');
  await page.click('[data-testid=reports] a:has-text("MZ-CONSOLE-1")');
  await page.waitForSelector('[data-testid=report-title] .badge.ok');
  assert.equal(await page.$$eval('[data-testid=versions] tbody tr', (r) => r.length), 2);

  const [file] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=report-file]')]);
  assert.equal(readFileSync((await file.path())!, 'utf8'), '%PDF-1.4 second version');
  const sha = createHash('sha256').update('%PDF-1.4 second version').digest('hex');
  assert.ok(await page.$(`[data-testid=versions] code[title="${sha}"]`), 'the version row shows the file hash');

  const [proof] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=proof-download]')]);
  const bundle = JSON.parse(readFileSync((await proof.path())!, 'utf8'));
  assert.equal(bundle.report_id, 'MZ-CONSOLE-1');
  assert.equal(bundle.entries.length, 2);
  await page.waitForSelector('[data-testid=proof-summary]');
  assert.match((await page.textContent('[data-testid=proof-summary]')) ?? '', new RegExp(bundle.log.origin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));

  // stamp the cover QR on a PDF; the report's short link then has a QR to download
  await page.waitForSelector('[data-testid=report-qr]');
  const doc = await PDFDocument.create();
  doc.addPage([595, 842]);
  await page.setInputFiles('[data-testid=stamp] input[name=pdf]', { name: 'cover.pdf', mimeType: 'application/pdf', buffer: Buffer.from(await doc.save()) });
  await page.selectOption('[data-testid=stamp] select[name=corner]', 'bottom-left');
  const [stamped] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=stamp] button[type=submit]')]);
  const out = await PDFDocument.load(readFileSync((await stamped.path())!));
  assert.equal(out.getPageCount(), 1);
  const link = (await page.textContent('[data-testid=stamped] code'))!;
  assert.match(link, new RegExp(`^${rig.server.url}/s/\\w{8}$`));
  await page.waitForSelector(`[data-testid=report-link]:text-is("${link}")`);
  const [qr] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=report-qr] [data-testid=qr-png]')]);
  assert.deepEqual(await decodeBoth(readFileSync((await qr.path())!)), { jsqr: link, zxing: link });
  const [svg] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=report-qr] [data-testid=qr-svg]')]);
  assert.deepEqual(await decodeBoth(readFileSync((await svg.path())!, 'utf8')), { jsqr: link, zxing: link });

  page.once('dialog', (d) => void d.accept());
  await page.click('[data-testid=recall]');
  await page.fill('[data-testid=recall-dialog] input[name=title]', 'not the registered title');
  await page.click('[data-testid=recall-dialog] button[type=submit]');
  await page.waitForSelector('[data-testid=recall-dialog] [role=alert]');
  await page.fill('[data-testid=recall-dialog] input[name=title]', META.title);
  page.once('dialog', (d) => void d.accept());
  await page.click('[data-testid=recall-dialog] button[type=submit]');
  await page.waitForSelector('[data-testid=report-title] .badge.bad');
  assert.equal((await screenshot(rig, page, 'report')).width, 1280);
  const api = await fetch(`${rig.server.url}/rest/v1/reports/MZ-CONSOLE-1?tenant_id=${rig.demo.tenantId}`, { headers: { authorization: `Bearer ${rig.demo.operator.key}.${rig.demo.operator.secret}` } });
  assert.equal(((await api.json()) as { status: string }).status, 'recalled');
});
