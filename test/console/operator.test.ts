/**
 * The console as an operator, in a real Chromium against a real server with the demo data:
 * tenants, developers and roles, the app type tree, apps (secret shown once, rotation with grace,
 * block, IP allow-list, rate limit), quota top-up, language switch, logout. Each step is checked
 * against the native API the console drives, so what the console shows is what the platform did.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import { http } from '../helpers.js';
import { loginOperator, openArea, overflowX, screenshot, startRig, type ConsoleRig } from './browser.js';

let rig: ConsoleRig;
let page: Page;
let op: Record<string, string>;
const api = (path: string, init: RequestInit = {}) => http(`${rig.server.url}/rest/v1${path}`, { ...init, headers: { ...op, ...(init.headers as Record<string, string>) } });
const bearer = (key: string, secret: string) => http(`${rig.server.url}/rest/v1/me`, { headers: { authorization: `Bearer ${key}.${secret}` } });

before(async () => {
  rig = await startRig();
  op = { authorization: `Bearer ${rig.demo.operator.key}.${rig.demo.operator.secret}` };
  ({ page } = await rig.open({ lang: 'en' }));
});
after(() => rig?.close());

test('an operator logs in and sees every area of the platform', async () => {
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', 'wrong');
  await page.click('button[type=submit]');
  await page.waitForSelector('[role=alert]');
  assert.match(await page.textContent('[role=alert]') ?? '', /Wrong password/);
  await loginOperator(page);
  assert.match((await page.textContent('[data-testid=who]')) ?? '', /admin\s*operator/);
  const areas = await page.$$eval('[data-testid=nav] a', (as) => as.map((a) => a.getAttribute('data-area')));
  for (const a of ['apps', 'tenants', 'developers', 'app-types', 'quotas']) assert.ok(areas.includes(a), a);
  assert.match(page.url(), /\/console\/apps$/);
  const names = await page.$$eval('[data-testid=apps] tbody tr', (rows) => rows.map((r) => r.children[1].textContent));
  assert.ok(names.includes('demo native') && names.includes('demo operator'));
});

test('tenants: create one', async () => {
  await openArea(page, 'tenants');
  await page.fill('[data-testid=tenant-form] input[name=name]', 'acme');
  await page.click('[data-testid=tenant-form] button[type=submit]');
  await page.waitForSelector('[data-testid=tenants] td:text-is("acme")');
  const t = (await api('/tenants')).json as { id: number; name: string }[];
  assert.ok(t.some((x) => x.name === 'acme'));
});

test('developers and roles: create a developer in a tenant, change the role, add a role', async () => {
  const acme = ((await api('/tenants')).json as { id: number; name: string }[]).find((x) => x.name === 'acme')!;
  await openArea(page, 'developers');
  const f = '[data-testid=developer-form]';
  await page.fill(`${f} input[name=username]`, 'acme-dev');
  await page.fill(`${f} input[name=password]`, 'acme-pass');
  await page.fill(`${f} input[name=email]`, 'dev@acme.test');
  await page.selectOption(`${f} select[name=tenant_id]`, String(acme.id));
  await page.click(`${f} button[type=submit]`);
  const row = page.locator('[data-testid=developers] tbody tr', { hasText: 'acme-dev' });
  await row.waitFor();
  assert.match((await row.textContent()) ?? '', /acme/);
  const dev = ((await api(`/developers?tenant_id=${acme.id}`)).json as { id: number; username: string; role: string }[]).find((d) => d.username === 'acme-dev')!;
  assert.equal(dev.role, 'normal');
  await page.selectOption(`[data-testid=role-${dev.id}]`, 'blocked');
  for (let i = 0; i < 40 && ((await api(`/developers?tenant_id=${acme.id}`)).json as { id: number; role: string }[]).find((d) => d.id === dev.id)!.role !== 'blocked'; i++) await page.waitForTimeout(50);
  assert.equal(((await api(`/developers?tenant_id=${acme.id}`)).json as { id: number; role: string }[]).find((d) => d.id === dev.id)!.role, 'blocked');
  await page.selectOption(`[data-testid=role-${dev.id}]`, 'normal');
  await page.fill('[data-testid=role-form] input >> nth=0', 'auditor');
  await page.click('[data-testid=role-form] button[type=submit]');
  await page.waitForSelector('[data-testid=roles] td:text-is("auditor")');
});

test('app types: a tree with a child', async () => {
  await openArea(page, 'app-types');
  const f = '[data-testid=app-type-form]';
  await page.fill(`${f} input[name=name]`, 'IoT');
  await page.click(`${f} button[type=submit]`);
  await page.waitForSelector('[data-testid=app-types] strong:text-is("IoT")');
  await page.click('[data-testid=app-types] li:has(strong:text-is("IoT")) >> button:text-is("Add child")');
  await page.fill(`${f} input[name=name]`, 'Sensors');
  await page.click(`${f} button[type=submit]`);
  await page.waitForSelector('[data-testid=app-types] li:has(> .tree-row strong:text-is("IoT")) li strong:text-is("Sensors")');
  const tree = (await api('/app-types')).json as { name: string; children?: { name: string }[] }[];
  assert.deepEqual(tree.find((n) => n.name === 'IoT')?.children?.map((c) => c.name), ['Sensors']);
});

test('apps: create one and see its secret once, rotate with grace, block, IP allow-list and rate limit', async () => {
  const acme = ((await api('/tenants')).json as { id: number; name: string }[]).find((x) => x.name === 'acme')!;
  await openArea(page, 'apps');
  const f = '[data-testid=app-form]';
  await page.fill(`${f} input[name=name]`, 'console-app');
  await page.selectOption(`${f} select[name=tenant_id]`, String(acme.id));
  await page.check(`${f} input[value=cli]`);
  await page.click(`${f} button[type=submit]`);
  await page.waitForSelector('[data-testid=secret-modal]');
  const key = (await page.textContent('[data-testid=new-key]'))!;
  const secret = (await page.textContent('[data-testid=new-secret]'))!;
  assert.match(secret, /\S{16,}/);
  const me = await bearer(key, secret);
  assert.equal(me.status, 200);
  assert.equal(me.json.tenant_id, acme.id);
  assert.deepEqual(me.json.app.services.sort(), ['cli', 'native']);
  await page.click('[data-testid=secret-modal] button:text-is("Close")');
  await page.waitForSelector('[data-testid=secret-modal]', { state: 'detached' });
  assert.ok(!(await page.content()).includes(secret), 'the secret is gone once the dialog is closed');

  await page.click('[data-testid=apps] a:text-is("console-app")');
  await page.waitForSelector('[data-testid=app-title]');
  assert.ok(!(await page.content()).includes(secret), 'the app page never shows the secret');

  // rotate: the new secret is shown once; the old one keeps working through the grace period
  await page.fill('[data-testid=rotate-form] input[name=grace_seconds]', '3600');
  await page.click('[data-testid=rotate-form] button[type=submit]');
  await page.waitForSelector('[data-testid=secret-modal]');
  const secret2 = (await page.textContent('[data-testid=new-secret]'))!;
  assert.notEqual(secret2, secret);
  assert.match((await page.textContent('[data-testid=secret-modal]')) ?? '', /old secret stays valid until/);
  assert.equal((await bearer(key, secret2)).status, 200);
  assert.equal((await bearer(key, secret)).status, 200, 'old secret valid during the grace period');
  await page.click('[data-testid=secret-modal] button:text-is("Close")');

  // block, then unblock
  await page.click('[data-testid=block]');
  await page.waitForSelector('[data-testid=app-title] .badge.bad');
  const blocked = await bearer(key, secret2);
  assert.equal(blocked.status, 403);
  assert.equal(blocked.json.code, 'APP_BLOCKED');
  await page.click('[data-testid=block]');
  await page.waitForSelector('[data-testid=app-title] .badge.ok');
  assert.equal((await bearer(key, secret2)).status, 200);

  // settings: IP allow-list and rate limit
  const s = '[data-testid=app-settings]';
  await page.fill(`${s} textarea[name=ip_allow]`, '10.0.0.0/8\n192.0.2.7');
  await page.fill(`${s} input[name=rate_limit]`, '5');
  await page.selectOption(`${s} select[name=type_id]`, { label: '— Sensors' });
  await page.click(`${s} button[type=submit]`);
  await page.waitForSelector(`${s} .ok-text`);
  const id = Number(/apps\/(\d+)/.exec(page.url())![1]);
  const saved = (await api(`/apps/${id}`)).json;
  assert.deepEqual(saved.ip_allow, ['10.0.0.0/8', '192.0.2.7']);
  assert.equal(saved.rate_limit, 5);
  assert.ok(saved.type_id);
  const refused = await bearer(key, secret2);
  assert.equal(refused.status, 403);
  assert.equal(refused.json.code, 'IP_FORBIDDEN');
  const shot = await screenshot(rig, page, 'operator-app');
  assert.equal(shot.width, 1280);
});

test('quotas: top up Fangtang uploads for a tenant', async () => {
  const acme = ((await api('/tenants')).json as { id: number; name: string }[]).find((x) => x.name === 'acme')!;
  await openArea(page, 'quotas');
  await page.waitForSelector(`[data-testid=quota-${rig.demo.tenantId}-fangtang]`);
  assert.equal(await page.textContent(`[data-testid=quota-${rig.demo.tenantId}-fangtang]`), '100');
  assert.equal(await page.textContent(`[data-testid=quota-${acme.id}-fangtang]`), '0');
  await page.selectOption('[data-testid=topup-form] select[name=tenant_id]', String(acme.id));
  await page.fill('[data-testid=topup-form] input[name=units]', '25');
  await page.click('[data-testid=topup-form] button[type=submit]');
  await page.waitForSelector(`[data-testid=quota-${acme.id}-fangtang]:text-is("25")`);
  assert.equal((await api(`/quotas?tenant_id=${acme.id}&service=fangtang`)).json.remaining, 25);
});

test('language switch: every label of the shell changes, and the choice survives a reload', async () => {
  const nav = () => page.$$eval('[data-testid=nav] a', (as) => as.map((a) => a.textContent));
  const en = await nav();
  assert.ok(en.includes('Apps') && en.includes('Quotas'));
  await page.click('[data-testid=lang]');
  await page.waitForSelector('[data-testid=nav] a:text-is("应用")');
  const zh = await nav();
  assert.equal(zh.length, en.length);
  for (let i = 0; i < zh.length; i++) assert.notEqual(zh[i], en[i]);
  assert.match((await page.textContent('h1')) ?? '', /配额/);
  assert.equal(await page.getAttribute('html', 'lang'), 'zh-CN');
  await page.reload();
  await page.waitForSelector('[data-testid=nav] a:text-is("应用")');
  await page.click('[data-testid=lang]');
  await page.waitForSelector('[data-testid=nav] a:text-is("Apps")');
  assert.equal(await overflowX(page), 0);
});

test('logout ends the session: the cookie no longer works', async () => {
  const cookie = (await page.context().cookies()).find((c) => c.name === 'menhu_session')!;
  assert.ok(cookie?.httpOnly);
  await page.click('[data-testid=logout]');
  await page.waitForSelector('[data-testid=login-form]');
  const r = await http(`${rig.server.url}/rest/v1/me`, { headers: { cookie: `menhu_session=${cookie.value}` } });
  assert.equal(r.status, 401);
});
