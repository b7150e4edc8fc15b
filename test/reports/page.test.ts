/**
 * The verification page in real Chromium (playwright-core, Debian's chromium): badge, metadata,
 * download, the in-browser inclusion proof check, and the local file check with a matching, an
 * older and a non-matching file; the same over a non-secure origin (the JS SHA-256 fallback).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { seedDemo } from '../../src/demo.js';
import { startServer, type TestServer } from '../helpers.js';

const META = { title: '2020年1月 监播报告', type: '监播报告', period: '2020.01.01 - 2020.01.31', geom: '中国大陆' };
const V1 = Buffer.from('%PDF-1.4\n% first issue <script>alert(1)</script>\n');
const V2 = Buffer.concat([Buffer.from('%PDF-1.4\n% corrected issue\n'), Buffer.alloc(200_000, 0x41)]);

// Callbacks run in the page; this file is compiled without the DOM lib, hence (globalThis as any).document.
function form(fields: Record<string, string>, file?: Buffer): FormData {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  if (file) fd.append('file', new Blob([file]), 'report.pdf');
  return fd;
}

describe('report verification page (Chromium)', () => {
  let s: TestServer;
  let browser: Browser;
  let dir: string;
  let pageUrl: string;
  const ml = (op: string, id: string, fields: Record<string, string>, file?: Buffer) =>
    fetch(`${s.url}/api/v1/${op}/${id}`, { method: 'POST', body: form({ user: 'test', passcode: 'test', ...fields }, file) });

  before(async () => {
    s = await startServer();
    await seedDemo(s.ctx);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    dir = mkdtempSync(join(tmpdir(), 'menhu-page-'));
    writeFileSync(join(dir, 'v1.pdf'), V1);
    writeFileSync(join(dir, 'v2.pdf'), V2);
    writeFileSync(join(dir, 'forged.pdf'), Buffer.from('%PDF-1.4\n% forged\n'));
    await (await ml('generateqr', 'MZ-PAGE-1', {})).arrayBuffer();
    pageUrl = await (await ml('getqrlink', 'MZ-PAGE-1', {})).text();
  });
  after(async () => {
    // also when before() failed half-way (no browser, no folder): the server must still close,
    // or the open server keeps the test process alive
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await s?.close();
  });

  async function open(url: string): Promise<{ page: Page; errors: string[] }> {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('request', (r) => {
      if (!r.url().startsWith(new URL(url).origin)) errors.push(`external request ${r.url()}`);
    });
    await page.goto(url);
    return { page, errors };
  }

  const pick = async (page: Page, name: string) => {
    await page.setInputFiles('#file', join(dir, name));
    await page.waitForFunction(() => {
      const r = (globalThis as any).document.getElementById('result');
      return r.dataset.state !== 'busy' && r.dataset.match !== '';
    });
    return page.evaluate(() => {
      const r = (globalThis as any).document.getElementById('result');
      return { state: r.dataset.state as string, match: r.dataset.match as string, text: r.textContent as string, hash: (globalThis as any).document.getElementById('file-hash').textContent as string };
    });
  };

  it('says "unknown" for a generated QR whose report is not committed yet', async () => {
    const { page, errors } = await open(pageUrl);
    assert.equal(await page.getAttribute('#badge', 'data-status'), 'unknown');
    assert.equal(await page.textContent('#issuer'), 'demo');
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  it('shows a valid report, verifies the inclusion proof and checks files locally', async () => {
    assert.equal((await ml('commitreport', 'MZ-PAGE-1', META, V1)).statusText, 'DATA_UPDATED');
    assert.equal((await ml('updatereport', 'MZ-PAGE-1', META, V2)).statusText, 'DATA_UPDATED');
    const { page, errors } = await open(pageUrl);
    assert.equal(await page.getAttribute('#badge', 'data-status'), 'valid');
    assert.equal(await page.textContent('#title'), META.title);
    assert.equal(await page.textContent('#period'), META.period);
    assert.equal(await page.textContent('#geom'), META.geom);
    assert.equal(await page.textContent('#version'), '2');
    const { createHash } = await import('node:crypto');
    const h2 = createHash('sha256').update(V2).digest('hex');
    assert.equal(await page.textContent('#sha256'), h2);
    await page.waitForFunction(() => (globalThis as any).document.getElementById('proof-check').dataset.state !== 'pending');
    assert.equal(await page.getAttribute('#proof-check', 'data-state'), 'ok', await page.textContent('#proof-check') ?? '');
    // download of the registered copy
    const href = await page.getAttribute('#download', 'href');
    const dl = await fetch(new URL(href!, pageUrl));
    assert.deepEqual(Buffer.from(await dl.arrayBuffer()), V2);
    // local checks: current, older, forged
    assert.deepEqual(await pick(page, 'v2.pdf').then((r) => [r.state, r.match, r.hash]), ['ok', '2', h2]);
    const old = await pick(page, 'v1.pdf');
    assert.deepEqual([old.state, old.match], ['warn', '1']);
    assert.match(old.text!, /version 1; version 2 replaced it/);
    const bad = await pick(page, 'forged.pdf');
    assert.deepEqual([bad.state, bad.match], ['bad', 'none']);
    // the drop zone: a real drop event with a DataTransfer
    await page.evaluate((b64) => {
      const g = globalThis as any;
      const bytes = Uint8Array.from(g.atob(b64) as string, (c) => c.charCodeAt(0));
      const dt = new g.DataTransfer();
      dt.items.add(new g.File([bytes], 'dropped.pdf'));
      g.document.getElementById('drop').dispatchEvent(new g.DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, V1.toString('base64'));
    await page.waitForFunction(() => (globalThis as any).document.getElementById('result').dataset.match === '1');
    // an older version's page says superseded
    await page.goto(pageUrl + '?v=1');
    assert.equal(await page.getAttribute('#badge', 'data-status'), 'superseded');
    assert.ok(!(await page.content()).includes('<script>alert(1)</script>'));
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  it('hashes with the built-in SHA-256 where WebCrypto is unavailable (plain http on a LAN address)', async () => {
    const { page, errors } = await open(pageUrl);
    // Simulate a non-secure context: remove crypto.subtle before the page script runs.
    await page.addInitScript(() => Object.defineProperty((globalThis as any).crypto, 'subtle', { value: undefined }));
    await page.reload();
    assert.equal(await page.evaluate(() => (globalThis as any).crypto.subtle === undefined), true);
    await page.waitForFunction(() => (globalThis as any).document.getElementById('proof-check').dataset.state !== 'pending');
    assert.equal(await page.getAttribute('#proof-check', 'data-state'), 'ok');
    const r = await pick(page, 'v2.pdf');
    assert.deepEqual([r.state, r.match], ['ok', '2']);
    assert.deepEqual(errors, []);
    await page.context().close();
  });

  it('says recalled after a recall', async () => {
    assert.equal((await ml('recallreport', 'MZ-PAGE-1', META)).statusText, 'DATA_RECALLED');
    const { page, errors } = await open(pageUrl);
    assert.equal(await page.getAttribute('#badge', 'data-status'), 'recalled');
    const r = await pick(page, 'v2.pdf');
    assert.deepEqual([r.state, r.match], ['bad', '2']);
    assert.match(r.text!, /recalled/);
    assert.deepEqual(errors, []);
    await page.context().close();
  });
});
