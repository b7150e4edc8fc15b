/**
 * The photo jobs area in a real browser: a photo uploaded from the page is processed by the real
 * processors (the in-process job runner), the list follows it to "done" on its own, the result
 * previews and downloads at twice the size; a queued job is cancelled and its upload given back.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { DEMO } from '../../src/demo.js';
import { png, sceneSvg } from '../photos/fixtures.js';
import { loginOperator, openArea, screenshot, startRig, type ConsoleRig } from './browser.js';

let rig: ConsoleRig;
let page: Page;

before(async () => {
  rig = await startRig();
  ({ page } = await rig.open({ lang: 'en' }));
  await loginOperator(page);
});
after(() => rig?.close());

const left = async () => Number(((await page.textContent('[data-testid=uploads-left]')) ?? '').replace(/\D/g, ''));

test('cancel a queued job: it fails as cancelled and its upload is given back', async () => {
  // no job runner yet: the job stays queued
  await openArea(page, 'photos');
  await page.waitForFunction((n) => (globalThis as any).document.querySelector('[data-testid=uploads-left]')?.textContent === String(n), DEMO.fangtang.uploads);
  await page.setInputFiles('[data-testid=new-job] input[name=photo]', { name: 'queued.png', mimeType: 'image/png', buffer: await png(sceneSvg(20, 20)) });
  await page.click('[data-testid=new-job] button[type=submit]');
  await page.waitForSelector('[data-testid=photo-jobs] [data-status=queued]');
  await page.waitForFunction((n) => (globalThis as any).document.querySelector('[data-testid=uploads-left]')?.textContent === String(n), DEMO.fangtang.uploads - 1);
  await page.click('[data-testid=photo-jobs] tbody tr a');
  await page.waitForSelector('[data-testid=job-title] [data-status=queued]');
  page.once('dialog', (d) => void d.accept());
  await page.click('[data-testid=cancel-job]');
  await page.waitForSelector('[data-testid=job-title] [data-status=failed]');
  assert.equal(await page.textContent('[data-testid=job-error]'), 'cancelled');
  assert.equal(await page.textContent('[data-testid=job-charge]'), 'refunded');
  assert.equal(await page.$('[data-testid=cancel-job]'), null, 'nothing left to cancel');
  await openArea(page, 'photos');
  await page.waitForFunction((n) => (globalThis as any).document.querySelector('[data-testid=uploads-left]')?.textContent === String(n), DEMO.fangtang.uploads);
});

test('upload a photo, watch the job finish, preview and download the result; filter by status', async () => {
  rig.server.ctx.jobs.start(1);
  const src = await png(sceneSvg(48, 40));
  await openArea(page, 'photos');
  await page.setInputFiles('[data-testid=new-job] input[name=photo]', { name: 'scene.png', mimeType: 'image/png', buffer: src });
  await page.selectOption('[data-testid=new-job] select[name=repair_type]', 'sr');
  await page.click('[data-testid=new-job] button[type=submit]');
  // the list refreshes itself while the job runs, until it is done
  await page.waitForSelector('[data-testid=photo-jobs] tbody tr:first-child [data-status=done]', { timeout: 60_000 });
  assert.equal(await page.getAttribute('[data-testid=photo-jobs] tbody tr:first-child [role=progressbar]', 'aria-valuenow'), '100');
  assert.match((await page.textContent('[data-testid=photo-jobs] tbody tr:first-child')) ?? '', /charged/);
  assert.equal(await left(), DEMO.fangtang.uploads - 1, 'one upload spent');

  await page.selectOption('[data-testid=status-filter]', 'queued');
  await page.waitForSelector('[data-testid=photo-jobs] tbody tr', { state: 'detached' });
  await page.selectOption('[data-testid=status-filter]', 'done');
  await page.waitForSelector('[data-testid=photo-jobs] tbody tr [data-status=done]');
  assert.equal(await page.$$eval('[data-testid=photo-jobs] tbody tr', (r) => r.length), 1);

  await page.click('[data-testid=photo-jobs] tbody tr a');
  await page.waitForSelector('[data-testid=job-result] img');
  await page.waitForFunction(() => (globalThis as any).document.querySelector('[data-testid=job-result] img')?.naturalWidth === 96);
  await page.waitForFunction(() => (globalThis as any).document.querySelector('[data-testid=job-input] img')?.naturalWidth === 48);
  assert.match((await page.textContent('[data-testid=result-size]')) ?? '', /96 × 80/);

  const [result] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=download-result]')]);
  assert.match(result.suggestedFilename(), /^[0-9a-f]{32}-result\.png$/);
  const meta = await sharp(readFileSync((await result.path())!)).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height], ['png', 96, 80]);
  const [input] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid=download-input]')]);
  assert.deepEqual(readFileSync((await input.path())!), src);
  assert.equal((await screenshot(rig, page, 'photo-job')).width, 1280);

  // the same job, seen through the native API with the demo operator's key
  const id = result.suggestedFilename().slice(0, 32);
  const api = await fetch(`${rig.server.url}/rest/v1/photo-jobs/${id}`, { headers: { authorization: `Bearer ${rig.demo.operator.key}.${rig.demo.operator.secret}` } });
  const job = (await api.json()) as { status: string; charge: string; app_id: number | null; tenant_id: number };
  assert.deepEqual([job.status, job.charge, job.app_id, job.tenant_id], ['done', 'committed', null, rig.demo.tenantId]);
});
