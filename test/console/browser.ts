/**
 * Browser harness for the console tests: Debian's Chromium driven by playwright-core against a real
 * server (test/helpers.ts) seeded with the demo data. Screenshots go to a temporary folder.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { readFileSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { seedDemo, DEMO, type DemoInfo } from '../../src/demo.js';
import { startServer, type TestServer } from '../helpers.js';

// Callbacks given to page.evaluate run in the page, where globalThis is the window; this file is
// typed for Node (no DOM lib), so they reach the window through (globalThis as any).

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const LAUNCH_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface ConsoleRig {
  server: TestServer;
  demo: DemoInfo;
  browser: Browser;
  shots: string;
  /** A fresh browser context (own cookies) on a page at /console/. */
  open(opts?: { viewport?: { width: number; height: number }; lang?: 'zh' | 'en'; isMobile?: boolean }): Promise<{ context: BrowserContext; page: Page }>;
  close(): Promise<void>;
}

export async function startRig(): Promise<ConsoleRig> {
  const server = await startServer();
  let browser: Browser | undefined;
  try {
    const demo = await seedDemo(server.ctx);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    const shots = mkdtempSync(join(tmpdir(), 'menhu-console-shots-'));
    const b = browser;
    return {
      server,
      demo,
      browser: b,
      shots,
      async open(opts = {}) {
        const context = await b.newContext({ reducedMotion: 'reduce', viewport: opts.viewport ?? { width: 1280, height: 860 }, isMobile: opts.isMobile, hasTouch: opts.isMobile, locale: opts.lang === 'zh' ? 'zh-CN' : 'en-GB' });
        // generous: CI runs the suite on 2 shared cores, two files at a time, each with its own Chromium
        context.setDefaultTimeout(15_000);
        if (opts.lang) await context.addInitScript((l) => (globalThis as any).localStorage.getItem('menhu.lang') || (globalThis as any).localStorage.setItem('menhu.lang', l), opts.lang);
        const page = await context.newPage();
        page.on('pageerror', (e) => {
          throw e;
        });
        await page.goto(`${server.url}/console/`);
        return { context, page };
      },
      async close() {
        await b.close();
        await server.close();
        // MENHU_KEEP_SHOTS=1 keeps the screenshots to look at; otherwise the folder goes with the run.
        if (process.env.MENHU_KEEP_SHOTS !== '1') rmSync(shots, { recursive: true, force: true });
        else console.log(`screenshots kept in ${shots}`);
      },
    };
  } catch (e) {
    await browser?.close();
    await server.close();
    throw e;
  }
}

export async function login(page: Page, username: string, password: string): Promise<void> {
  await page.fill('[data-testid=login-form] input[name=username]', username);
  await page.fill('[data-testid=login-form] input[name=password]', password);
  await page.click('[data-testid=login-form] button[type=submit]');
  await page.waitForSelector('[data-testid=nav]');
}

export const loginOperator = (page: Page) => login(page, DEMO.admin.username, DEMO.admin.password);

/** Opens an area from the navigation, through the menu button where the nav is folded away (phones). */
export async function openArea(page: Page, key: string): Promise<void> {
  const folded = await page.isVisible('[data-testid=menu]');
  if (folded && !(await page.$('.shell.nav-open'))) await page.click('[data-testid=menu]');
  await page.locator(`[data-testid=nav] a[data-area="${key}"]`).click();
  await page.waitForURL(new RegExp(`/console/${key}(/|$)`));
  if (folded) await page.waitForSelector('.shell:not(.nav-open)');
}

/** Takes a full-page screenshot into the rig's folder and returns its size, read back from the PNG. */
export async function screenshot(rig: ConsoleRig, page: Page, name: string): Promise<{ path: string; width: number; height: number }> {
  const path = join(rig.shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  const png = PNG.sync.read(readFileSync(path));
  return { path, width: png.width, height: png.height };
}

/** How far the page is wider than its viewport (0 = no horizontal scrolling). */
export const overflowX = (page: Page): Promise<number> => page.evaluate(() => Math.max((globalThis as any).document.documentElement.scrollWidth, (globalThis as any).document.body.scrollWidth) - (globalThis as any).innerWidth);
