/**
 * The console as a developer (role normal) on a phone-sized screen, in Chinese: the API shows them
 * only their tenant, and the console shows what it gets; every area is reachable through the
 * folded navigation, and no page scrolls sideways. Screenshots go to a temporary folder.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { http, jsonBody } from '../helpers.js';
import { login, openArea, overflowX, screenshot, startRig, type ConsoleRig } from './browser.js';

let rig: ConsoleRig;
let page: Page;
const PHONE = { width: 390, height: 844 };

before(async () => {
  rig = await startRig();
  const op = { authorization: `Bearer ${rig.demo.operator.key}.${rig.demo.operator.secret}` };
  const api = (path: string, body: unknown) => http(`${rig.server.url}/rest/v1${path}`, jsonBody(body, op));
  // a developer in the demo tenant, and another tenant with an app the developer must not see
  assert.equal((await api('/developers', { username: 'dev', password: 'dev-pass', tenant_id: rig.demo.tenantId })).status, 201);
  const other = await api('/tenants', { name: 'other-co' });
  assert.equal((await api('/apps', { name: 'other-secret-app', tenant_id: other.json.id })).status, 201);
  assert.equal((await api('/quotas', { tenant_id: other.json.id, service: 'fangtang', units: 7 })).status, 200);
  ({ page } = await rig.open({ lang: 'zh', viewport: PHONE, isMobile: true }));
});
after(() => rig?.close());

test('a developer logs in on a phone and sees only their tenant', async () => {
  await login(page, 'dev', 'dev-pass');
  assert.match((await page.textContent('[data-testid=who]')) ?? '', /dev\s*开发者/);
  await page.waitForSelector('[data-testid=apps] tbody tr');
  const apps = await page.$$eval('[data-testid=apps] tbody tr', (rows) => rows.map((r) => r.textContent ?? ''));
  assert.ok(apps.some((t) => t.includes('demo native')));
  assert.ok(!apps.some((t) => t.includes('other-secret-app') || t.includes('demo operator')), 'nothing of another tenant');
  assert.equal(await page.$('[data-testid=tenant-picker]'), null, 'no tenant picker for developers');
});

test('the navigation folds away on a phone and every area is reachable through the menu', async () => {
  const nav = page.locator('[data-testid=nav]');
  const box = async () => (await nav.boundingBox())!;
  assert.ok((await box()).x + (await box()).width <= 0, 'nav is off screen until the menu opens');
  await page.click('[data-testid=menu]');
  await page.waitForFunction(() => {
    const r = (globalThis as any).document.querySelector('[data-testid=nav]').getBoundingClientRect();
    return r.left >= 0;
  });
  const areas = await page.$$eval('[data-testid=nav] a', (as) => as.map((a) => a.getAttribute('data-area')!));
  await page.click('.scrim', { position: { x: 370, y: 400 } });
  await page.waitForSelector('.shell:not(.nav-open)');
  for (const area of areas) {
    await openArea(page, area);
    await page.waitForSelector('main h1');
    await page.waitForLoadState('networkidle');
    assert.equal(await overflowX(page), 0, `${area} scrolls sideways`);
    const shot = await screenshot(rig, page, `phone-${area}`);
    assert.equal(shot.width, PHONE.width, `${area} screenshot is phone-wide`);
    assert.ok(shot.height >= PHONE.height);
  }
});

test("what a developer may not do isn't offered, and the API would refuse it anyway", async () => {
  await openArea(page, 'tenants');
  const rows = await page.$$eval('[data-testid=tenants] tbody tr', (r) => r.map((x) => x.textContent ?? ''));
  assert.equal(rows.length, 1);
  assert.match(rows[0], /demo/);
  assert.equal(await page.$('[data-testid=tenant-form]'), null);
  await openArea(page, 'quotas');
  await page.waitForSelector(`[data-testid=quota-${rig.demo.tenantId}-fangtang]`);
  assert.equal(await page.$$eval('[data-testid=quotas] tbody tr', (r) => r.length), 1);
  assert.equal(await page.$('[data-testid=topup-form]'), null);
  await openArea(page, 'app-types');
  assert.equal(await page.$('[data-testid=app-type-form]'), null);
  await openArea(page, 'developers');
  await page.waitForSelector('[data-testid=developers] tbody tr');
  assert.equal(await page.$('[data-testid^=role-]:is(select)'), null, 'no role changes');
  // the session cookie the console holds cannot top up quotas through the API either
  const cookie = (await page.context().cookies()).find((c) => c.name === 'menhu_session')!;
  const r = await http(`${rig.server.url}/rest/v1/quotas`, jsonBody({ tenant_id: rig.demo.tenantId, service: 'fangtang', units: 5 }, { cookie: `menhu_session=${cookie.value}` }));
  assert.equal(r.status, 403);
});

test('a developer creates an app in their tenant and sees the secret once', async () => {
  await openArea(page, 'apps');
  await page.fill('[data-testid=app-form] input[name=name]', 'phone-app');
  await page.click('[data-testid=app-form] button[type=submit]');
  await page.waitForSelector('[data-testid=secret-modal]');
  assert.equal(await overflowX(page), 0);
  await screenshot(rig, page, 'phone-secret');
  const key = (await page.textContent('[data-testid=new-key]'))!;
  const secret = (await page.textContent('[data-testid=new-secret]'))!;
  const me = await http(`${rig.server.url}/rest/v1/me`, { headers: { authorization: `Bearer ${key}.${secret}` } });
  assert.equal(me.json.tenant_id, rig.demo.tenantId);
  await page.click('[data-testid=secret-modal] header button');
  await page.waitForSelector('[data-testid=apps] tbody tr:has-text("phone-app")');
});

test('switching to English on the phone changes the texts', async () => {
  assert.match((await page.textContent('main h1')) ?? '', /应用/);
  await page.click('[data-testid=lang]');
  await page.waitForSelector('main h1:text-is("Apps")');
  assert.match((await page.textContent('[data-testid=who]')) ?? '', /developer/);
  assert.equal(await overflowX(page), 0);
});
