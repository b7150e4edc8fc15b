/**
 * The objects area in a real browser: the declared objects of the shipped example schema, an
 * object's fields and role rules, and the rows browser (operators): a `cond` filter, paging with
 * the total, a refused condition shown as an error; editing a row in the form (PATCH, field errors
 * shown at the field); file previews of attachment fields; a developer sees the schema but no rows.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Page } from 'playwright-core';
import sharp from 'sharp';
import { objectsOf } from '../../src/modules/objects.js';
import { upload } from '../../src/services/objects/files.js';
import { registerDeveloper } from '../../src/services/accounts/index.js';
import { login, loginOperator, openArea, overflowX, screenshot, startRig, type ConsoleRig } from './browser.js';

let rig: ConsoleRig;
let page: Page;

before(async () => {
  rig = await startRig();
  // the demo seeds two stores; 30 more make three pages of 10
  const table = objectsOf(rig.server.ctx).schema.objects.get('Store')!.table;
  for (let i = 1; i <= 30; i++) await (rig.server.ctx.db.kysely as any).insertInto(table).values({ name: `分店 ${i}`, addr: `路 ${i} 号`, pause: i % 5 === 0 ? 1 : 0, updateTm: '2026-11-23 12:00:00' }).execute();
  ({ page } = await rig.open({ lang: 'en' }));
  await loginOperator(page);
});
after(() => rig?.close());

const rowCount = () => page.$$eval('[data-testid=rows] tbody tr', (r) => r.length);

test('objects, fields and rules; rows with a cond filter and paging (operator)', async () => {
  await openArea(page, 'objects');
  await page.waitForSelector('[data-testid=objects] tbody tr');
  const names = await page.$$eval('[data-testid=objects] tbody tr', (rows) => rows.map((r) => r.getAttribute('data-key')));
  for (const n of ['ApiLog', 'Employee', 'OrderAtt', 'OrderLog', 'Ordr', 'Store', 'User']) assert.ok(names.includes(n), `${n} in ${names}`);

  await page.click('[data-testid=objects] a:has-text("Store")');
  await page.waitForSelector('[data-testid=object-title]:has-text("Store")');
  await page.waitForSelector('[data-testid=rows] tbody tr');
  assert.equal(await rowCount(), 20);
  assert.equal(await page.textContent('[data-testid=rows-total]'), '32 in all');
  assert.deepEqual(await page.$$eval('[data-testid=rows] thead th', (h) => h.map((x) => x.textContent)), ['id', 'name', 'addr', 'pause', 'updateTm', ''], 'the last column holds the edit buttons');

  await page.selectOption('[data-testid=rows-filter] select[name=limit]', '10');
  await page.fill('[data-testid=rows-filter] input[name=cond]', "name like '%分店%' and pause=0");
  await page.click('[data-testid=rows-filter] button[type=submit]');
  await page.waitForSelector('[data-testid=rows-total]:text-is("24 in all")');
  assert.equal(await rowCount(), 10);
  const firstIds = await page.$$eval('[data-testid=rows] tbody tr', (r) => r.map((x) => x.getAttribute('data-key')));
  await page.click('[data-testid=rows-next]');
  await page.waitForFunction((first) => (globalThis as any).document.querySelector('[data-testid=rows] tbody tr')?.getAttribute('data-key') !== first, firstIds[0]);
  await page.click('[data-testid=rows-next]');
  await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('[data-testid=rows] tbody tr').length === 4);
  assert.equal(await page.isDisabled('[data-testid=rows-next]'), true, 'the last page');

  // a condition on a field the object does not declare is refused, and says so
  await page.fill('[data-testid=rows-filter] input[name=cond]', "secret='x'");
  await page.click('[data-testid=rows-filter] button[type=submit]');
  await page.waitForSelector('[data-testid=object-rows] [role=alert]');
  assert.match((await page.textContent('[data-testid=object-rows] [role=alert]')) ?? '', /secret/);

  await page.click('[role=tab]:has-text("Fields")');
  await page.waitForSelector('[data-testid=fields] tbody tr[data-key=pause]');
  assert.match((await page.textContent('[data-testid=fields] tbody tr[data-key=pause]')) ?? '', /因低温暂停服务/);
  assert.match((await page.textContent('[data-testid=object-roles]')) ?? '', /guest\s*get query/);
  assert.equal((await screenshot(rig, page, 'object-store')).width, 1280);

  // User: the password is hidden, and never among the rows
  await page.goto(`${rig.server.url}/console/objects/User`);
  await page.waitForSelector('[data-testid=rows] tbody tr');
  assert.ok(!(await page.$$eval('[data-testid=rows] thead th', (h) => h.map((x) => x.textContent))).includes('pwd'));
  await page.click('[role=tab]:has-text("Fields")');
  assert.match((await page.textContent('[data-testid=fields] tbody tr[data-key=pwd]')) ?? '', /hidden.*password/);
});

test('edit a row in the form; attachments previewed (operator)', async () => {
  const ctx = rig.server.ctx;
  const table = (n: string) => objectsOf(ctx).schema.objects.get(n)!.table;
  const storeId = Number((await (ctx.db.kysely as any).insertInto(table('Store')).values({ name: '待改名', addr: '广州', pause: 0, updateTm: '2026-11-23 12:00:00' }).returning('id').executeTakeFirstOrThrow()).id);
  await page.goto(`${rig.server.url}/console/objects/Store`);
  await page.waitForSelector('[data-testid=rows] tbody tr');
  await page.fill('[data-testid=rows-filter] input[name=cond]', `id=${storeId}`);
  await page.click('[data-testid=rows-filter] button[type=submit]');
  await page.waitForSelector('[data-testid=rows-total]:text-is("1 in all")');
  await page.click(`[data-testid=rows] tbody tr[data-key="${storeId}"] [data-testid=edit-row-button]`);
  await page.waitForSelector('[data-testid=edit-form]');
  assert.equal(await page.inputValue('[data-testid=edit-form] input[name=name]'), '待改名');
  assert.equal(await page.inputValue('[data-testid=edit-form] select[name=pause]'), '0');
  assert.equal(await page.$('[data-testid=edit-form] [name=id]'), null, 'the id is not a form field');

  // a value too long for name(m) is refused at the field, and nothing changes
  await page.$eval('[data-testid=edit-form] input[name=name]', (el: any) => el.removeAttribute('maxlength'));
  await page.fill('[data-testid=edit-form] input[name=name]', 'x'.repeat(60));
  await page.click('[data-testid=edit-form] button[type=submit]');
  await page.waitForSelector('[data-testid=field-error]');
  assert.match((await page.textContent('[data-testid=field-error]')) ?? '', /Store\.name/);

  await page.fill('[data-testid=edit-form] input[name=name]', '新名字 O\'Hara');
  await page.selectOption('[data-testid=edit-form] select[name=pause]', '1');
  await page.click('[data-testid=edit-form] button[type=submit]');
  await page.waitForSelector('[data-testid=edit-note]:text-is("Saved")');
  await page.waitForSelector(`[data-testid=rows] tbody tr[data-key="${storeId}"]:has-text("新名字 O'Hara")`);
  await page.click('[data-testid=edit-row] button[aria-label]');
  const stored = await (ctx.db.kysely as any).selectFrom(table('Store')).select(['name', 'pause']).where('id', '=', storeId).executeTakeFirstOrThrow();
  assert.deepEqual(stored, { name: "新名字 O'Hara", pause: 1 });

  // OrderAtt.attId refers to uploaded files: a picture for an image, a download link otherwise
  const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#2a6' } }).png().toBuffer();
  const [img, txt] = await upload(ctx, [{ name: 'shop.png', data: png }, { name: 'notes.txt', data: Buffer.from('hello') }], { genThumb: false, autoResize: false, by: null });
  for (const attId of [img.id, txt.id]) await (ctx.db.kysely as any).insertInto(table('OrderAtt')).values({ orderId: 1, attId }).execute();
  await page.goto(`${rig.server.url}/console/objects/OrderAtt`);
  await page.waitForSelector(`[data-testid=rows] [data-att="${img.id}"] img`);
  await page.waitForFunction((id) => ((globalThis as any).document.querySelector(`[data-att="${id}"] img`)?.naturalWidth ?? 0) === 64, String(img.id));
  await page.waitForSelector(`[data-testid=rows] [data-att="${txt.id}"]:text-is("file #${txt.id}")`);
  assert.equal(await page.getAttribute(`[data-att="${txt.id}"]`, 'href'), `/rest/v1/objects/OrderAtt/attachments/${txt.id}`);
  assert.equal((await screenshot(rig, page, 'object-attachments')).width, 1280);
});

test('a developer on a phone sees the declared objects but no rows', async () => {
  await registerDeveloper(rig.server.ctx, { username: 'objects-dev', password: 'objects-dev-pw', tenantId: rig.demo.tenantId });
  const { context, page: phone } = await rig.open({ viewport: { width: 390, height: 844 }, isMobile: true, lang: 'zh' });
  try {
    await login(phone, 'objects-dev', 'objects-dev-pw');
    await openArea(phone, 'objects');
    await phone.click('[data-testid=objects] a:has-text("Ordr")');
    await phone.waitForSelector('[data-testid=object-fields]');
    assert.match((await phone.textContent('[data-testid=fields] tr[data-key=status]')) ?? '', /新创建/);
    assert.match((await phone.textContent('[data-testid=operators-only]')) ?? '', /只对运营者开放/);
    assert.equal(await phone.$('[role=tab]'), null, 'no rows tab');
    assert.equal(await overflowX(phone), 0);
    assert.equal((await screenshot(rig, phone, 'object-phone')).width, 390);
  } finally {
    await context.close();
  }
});
