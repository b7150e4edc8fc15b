/** The code landing page in real Chromium, on a phone-sized viewport. */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import sharp from 'sharp';
import { createTenant } from '../../src/services/accounts/index.js';
import { checkValues, createRecords, createTemplate, recordUrl } from '../../src/services/codes/index.js';
import { startServer, type TestServer } from '../helpers.js';

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const XSS = `<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>"'&`;

describe('code landing page (Chromium)', () => {
  let s: TestServer;
  let browser: Browser;
  let url: string;
  let imgUrl: string;
  let images: Server;

  before(async () => {
    s = await startServer();
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ARGS });
    const tenantId = Number((await createTenant(s.ctx, 'page')).id);
    const t = await createTemplate(s.ctx, {
      tenantId,
      title: '消防设施',
      style: { accent: '#cc0000' },
      fields: [
        { name: '名称', type: 'single_line' },
        { name: '说明', type: 'multi_line' },
        { name: '数量', type: 'number' },
        { name: '检查日期', type: 'date' },
        { name: '状态', type: 'single_choice', options: ['正常', '维修'] },
        { name: '标签', type: 'multi_choice', options: ['室内', '室外', '重点'] },
        { name: '位置', type: 'location' },
        { name: '照片', type: 'image' },
        { name: '手册', type: 'file' },
        { name: '备注', type: 'single_line' },
        { name: '空字段', type: 'single_line' },
      ],
    });
    // the image comes from a local server (no network)
    const png = await sharp({ create: { width: 1600, height: 900, channels: 3, background: '#3366cc' } }).png().toBuffer();
    images = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
      res.end(png);
    });
    await new Promise<void>((r) => images.listen(0, '127.0.0.1', r));
    imgUrl = `http://127.0.0.1:${(images.address() as AddressInfo).port}/photo.png`;
    const long = 'W'.repeat(300); // one unbreakable word wider than any phone
    const values = checkValues(t.fields, [
      XSS,
      `第一行\n第二行 ${long}`,
      '42',
      '2024-02-29',
      '2',
      '1,3',
      JSON.stringify({ address: '浙江省宁波市鄞州区 <b>bold</b>', lat: 29.86089244498819, log: 121.54615961015224 }),
      imgUrl,
      'https://example.com/docs/%E6%89%8B%E5%86%8C.pdf',
      long,
      '',
    ]);
    const [rec] = await createRecords(s.ctx, t, [values], 'test');
    url = recordUrl(s.ctx, rec);
  });
  after(async () => {
    await browser?.close();
    images?.close();
    await s?.close();
  });

  it('renders every field on a phone without horizontal overflow, escaping the values', async () => {
    const page = await browser.newPage({ viewport: { width: 375, height: 667 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const res = await page.goto(url);
    assert.equal(res?.status(), 200);
    await page.waitForLoadState('load');
    // XSS payload shown as text, nothing executed, no injected elements
    assert.equal(await page.evaluate('window.__pwned'), undefined);
    assert.equal(await page.locator('script').count(), 0);
    assert.equal(await page.locator('img[src="x"]').count(), 0);
    assert.equal(await page.locator('h1').textContent(), XSS);
    assert.equal(await page.locator('b').count(), 0, 'markup in a location is text');
    // every field is there, in order, with its label
    const labels = await page.locator('dt').allTextContents();
    assert.deepEqual(labels, ['名称', '说明', '数量', '检查日期', '状态', '标签', '位置', '照片', '手册', '备注', '空字段']);
    assert.deepEqual(await page.locator('.chip').allTextContents(), ['维修', '室内', '重点']);
    const map = await page.locator('a.map').getAttribute('href');
    assert.match(map!, /^https:\/\/uri\.amap\.com\/marker\?position=121\.54615961015224,29\.86089244498819&name=/);
    const file = page.locator('a.file');
    assert.equal(await file.textContent(), '手册.pdf');
    assert.equal(await file.getAttribute('download'), '');
    assert.equal(await page.locator('.f').last().locator('dd').textContent(), '—');
    // the image loaded and fits the screen
    const img = page.locator('img.pic');
    await page.waitForFunction('document.querySelector("img.pic").complete');
    const box = await img.boundingBox();
    assert.ok(box && box.width > 200 && box.width <= 375, `image width ${box?.width}`);
    assert.equal(await page.evaluate('document.querySelector("img.pic").naturalWidth'), 1600);
    // layout: nothing wider than the viewport, every field visible when scrolled to
    const overflow = (await page.evaluate('({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })')) as { scroll: number; client: number };
    assert.ok(overflow.scroll <= overflow.client, `horizontal overflow: ${overflow.scroll} > ${overflow.client}`);
    for (const f of await page.locator('.f').all()) {
      await f.scrollIntoViewIfNeeded();
      assert.ok(await f.isVisible());
      const b = await f.boundingBox();
      assert.ok(b && b.x >= 0 && b.x + b.width <= 375.5, `field box ${JSON.stringify(b)}`);
    }
    // the screenshot has the accent colour bar at the top card and is phone-sized
    const shot = await page.screenshot({ fullPage: true });
    if (process.env.SHOT) (await import('node:fs')).writeFileSync(process.env.SHOT, shot);
    const meta = await sharp(shot).metadata();
    assert.equal(meta.width, 750);
    assert.ok(meta.height! > 1334, 'a long page');
    await page.evaluate('window.scrollTo(0, 0)');
    const head = page.locator('section.head');
    const hb = (await head.boundingBox())!;
    const { data } = await sharp(shot).extract({ left: Math.round((hb.x + hb.width / 2) * 2), top: Math.round(hb.y * 2) + 2, width: 1, height: 1 }).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([...data.subarray(0, 3)], [0xcc, 0, 0], 'accent border drawn');
    await page.close();
  });

  it('answers an unknown code with the 404 page', async () => {
    const page = await browser.newPage({ viewport: { width: 375, height: 667 } });
    const res = await page.goto(`${s.url}/s/zzzzzzzz`);
    assert.equal(res?.status(), 404);
    assert.match((await page.locator('h1').textContent()) ?? '', /二维码不存在/);
    await page.close();
  });
});
