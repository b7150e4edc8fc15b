/**
 * POST /rest/v1/reports/<id>/stamp: the cover QR on page 1 of real PDFs — plain, rotated 90/180/270,
 * with crop boxes — rendered by poppler's pdftoppm and decoded by jsQR and ZXing, in the corner a
 * reader sees.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { degrees, PDFDocument, StandardFonts } from 'pdf-lib';
import sharp from 'sharp';
import { seedDemo } from '../../src/demo.js';
import { decodeBoth } from '../qr/decode.js';
import { http, startServer, type TestServer } from '../helpers.js';

const run = promisify(execFile);

async function makePdf(o: { media: [number, number]; crop?: [number, number, number, number]; rotate?: number }): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const page = doc.addPage(o.media);
  const font = await doc.embedFont(StandardFonts.Helvetica);
  page.drawText('Monthly monitoring report', { x: 60, y: o.media[1] / 2, size: 18, font });
  if (o.crop) page.setCropBox(...o.crop);
  if (o.rotate) page.setRotation(degrees(o.rotate));
  doc.addPage([300, 300]).drawText('page 2', { x: 20, y: 20, size: 12, font });
  return Buffer.from(await doc.save());
}

describe('PDF stamping', () => {
  let s: TestServer;
  let auth: Record<string, string>;
  let dir: string;

  before(async () => {
    s = await startServer();
    const demo = await seedDemo(s.ctx);
    auth = { authorization: `Bearer ${demo.native.key}.${demo.native.secret}` };
    dir = mkdtempSync(join(tmpdir(), 'menhu-stamp-'));
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await s.close();
  });

  const stamp = (pdf: Buffer, query = '', id = 'STAMP-1') =>
    fetch(`${s.url}/rest/v1/reports/${id}/stamp${query}`, { method: 'POST', headers: { ...auth, 'content-type': 'application/pdf' }, body: pdf });

  /** Renders page 1 as a viewer shows it (crop box, rotation) and decodes each quadrant. */
  async function render(pdf: Buffer, name: string) {
    const file = join(dir, `${name}.pdf`);
    writeFileSync(file, pdf);
    await run('pdftoppm', ['-cropbox', '-r', '200', '-f', '1', '-l', '1', '-png', '-singlefile', file, join(dir, name)]);
    const png = readFileSync(join(dir, `${name}.png`));
    const { width, height } = await sharp(png).metadata();
    const quad = async (left: number, top: number) =>
      decodeBoth(await sharp(png).extract({ left, top, width: Math.floor(width! / 2), height: Math.floor(height! / 2) }).png().toBuffer());
    const hw = Math.floor(width! / 2);
    const hh = Math.floor(height! / 2);
    return { width: width!, height: height!, whole: await decodeBoth(png), tl: await quad(0, 0), tr: await quad(hw, 0), bl: await quad(0, hh), br: await quad(hw, hh) };
  }

  const cases: { name: string; media: [number, number]; crop?: [number, number, number, number]; rotate?: number; corner?: string; want: 'tl' | 'tr' | 'bl' | 'br'; landscape?: boolean }[] = [
    { name: 'plain A4', media: [595, 842], want: 'tr' },
    { name: 'rotated 90', media: [595, 842], rotate: 90, want: 'tr', landscape: true },
    { name: 'rotated 180, bottom-left', media: [595, 842], rotate: 180, corner: 'bottom-left', want: 'bl' },
    { name: 'rotated 270 with a crop box', media: [600, 800], crop: [50, 100, 400, 500], rotate: 270, want: 'tr', landscape: true },
    { name: 'offset crop box, top-left', media: [1000, 1000], crop: [300, 250, 420, 380], corner: 'top-left', want: 'tl', landscape: true },
  ];

  for (const c of cases) {
    it(`${c.name}: QR decodes to the report link in the ${c.want} corner`, async () => {
      const res = await stamp(await makePdf(c), c.corner ? `?corner=${c.corner}` : '');
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(res.headers.get('content-type'), 'application/pdf');
      const url = res.headers.get('x-menhu-link')!;
      const out = Buffer.from(await res.arrayBuffer());
      assert.equal((await PDFDocument.load(out)).getPageCount(), 2);
      const r = await render(out, c.name.replace(/\W+/g, '-'));
      assert.equal(r.width > r.height, !!c.landscape, 'rendered orientation');
      assert.deepEqual(r.whole, { jsqr: url, zxing: url });
      for (const q of ['tl', 'tr', 'bl', 'br'] as const) {
        // both decoders read the whole page above; the corner is located with jsQR (ZXing's
        // detector misses a few percent of clean symbols on a cropped quadrant)
        if (q === c.want) assert.equal(r[q].jsqr, url, `QR expected in ${q}`);
        else assert.equal(r[q].jsqr, null, `no QR expected in ${q}`);
      }
    });
  }

  it('uses the same short link as generateqr, and refuses what it cannot stamp', async () => {
    const res = await stamp(await makePdf({ media: [595, 842] }));
    await res.arrayBuffer();
    const link = await (await fetch(`${s.url}/api/v1/getqrlink/STAMP-1`, { method: 'POST', body: new URLSearchParams({ user: 'test', passcode: 'test' }) })).text();
    assert.equal(res.headers.get('x-menhu-link'), link);
    const bad = async (body: Buffer, status: number, code: string, headers: Record<string, string> = { ...auth, 'content-type': 'application/pdf' }, id = 'STAMP-1') => {
      const r = await http(`${s.url}/rest/v1/reports/${id}/stamp`, { method: 'POST', headers, body });
      assert.equal(r.status, status, r.text);
      assert.equal(r.json.code, code);
    };
    await bad(Buffer.from('hello'), 415, 'UNSUPPORTED_MEDIA');
    await bad(Buffer.from('%PDF-1.7\ngarbage'), 400, 'VALIDATION');
    await bad(await makePdf({ media: [595, 842] }), 401, 'NOT_LOGGED_IN', { 'content-type': 'application/pdf' });
    await bad(await makePdf({ media: [595, 842] }), 400, 'VALIDATION', undefined, 'a..b');
    await bad(await makePdf({ media: [40, 40] }), 400, 'VALIDATION');
    await bad(Buffer.from('{}'), 415, 'UNSUPPORTED_MEDIA', { ...auth, 'content-type': 'application/json' });
  });
});
