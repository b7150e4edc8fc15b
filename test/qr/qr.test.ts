import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import QRCode from 'qrcode';
import sharp from 'sharp';
import { DomainError } from '../../src/core/errors.js';
import { clearQrCache, encodeQr, parseQrStyle, qrCacheStats, renderQrPng, renderQrSvg } from '../../src/core/qr/index.js';
import { decodeBoth } from './decode.js';

const URL1 = 'http://127.0.0.1:8080/s/Ab3dE6gH';
const TEXTS = [URL1, 'https://example.com/a/very/long/path?with=query&and=more#fragment-' + 'x'.repeat(120), '消防栓 A23154 宁波市', 'HELLO 123'];

/** IHDR bit depth and colour type of a PNG. */
function ihdr(png: Buffer): { width: number; depth: number; colourType: number } {
  assert.equal(png.subarray(12, 16).toString('latin1'), 'IHDR');
  return { width: png.readUInt32BE(16), depth: png[24], colourType: png[25] };
}

async function assertDecodes(image: Buffer | string, text: string): Promise<void> {
  const got = await decodeBoth(image);
  assert.equal(got.jsqr, text, 'jsQR reads the encoded text');
  assert.equal(got.zxing, text, 'ZXing reads the encoded text');
}

const svgLogo = (colour: string) => sharp(Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="120" height="120"><circle cx="60" cy="60" r="55" fill="${colour}"/><text x="60" y="75" font-size="40" text-anchor="middle" fill="#fff">m</text></svg>`));

describe('QR matrix', () => {
  it('is the same symbol as qrcode chooses (mask selection by penalty)', () => {
    for (const t of [...TEXTS, 'a', '0123456789', 'x'.repeat(500)]) {
      for (const ecl of ['L', 'M', 'Q', 'H'] as const) {
        const ref = QRCode.create(t, { errorCorrectionLevel: ecl });
        const m = encodeQr(t, ecl);
        assert.equal(m.mask, ref.maskPattern, `${t.slice(0, 20)} ${ecl}`);
        assert.deepEqual(Buffer.from(m.data), Buffer.from((ref.modules as unknown as { data: Uint8Array }).data));
      }
    }
  });

  it('refuses empty and oversized content', () => {
    assert.throws(() => encodeQr('', 'M'), (e: unknown) => e instanceof DomainError && e.code === 'VALIDATION' && e.field === 'text');
    assert.throws(() => encodeQr('x'.repeat(2954), 'L'), (e: unknown) => e instanceof DomainError && e.field === 'text');
    assert.throws(() => encodeQr('x'.repeat(2000), 'H'), /does not fit/);
  });
});

describe('QR PNG', () => {
  it('plain codes are 1-bit greyscale PNGs that both decoders read', async () => {
    for (const t of TEXTS) {
      for (const ecl of ['L', 'H'] as const) {
        const png = await renderQrPng(t, { ecl });
        const h = ihdr(png);
        assert.equal(h.depth, 1, 'bit depth 1');
        assert.equal(h.colourType, 0, 'greyscale');
        await assertDecodes(png, t);
      }
    }
  });

  it('size is (modules + 2 margin) × scale', async () => {
    const m = encodeQr(URL1, 'M');
    const png = await renderQrPng(URL1, { margin: 2, scale: 3 });
    assert.equal(ihdr(png).width, (m.size + 4) * 3);
    const meta = await sharp(png).metadata();
    assert.equal(meta.width, (m.size + 4) * 3);
    await assertDecodes(await renderQrPng(URL1, { margin: 0, scale: 5 }).then((b) => sharp(b).extend({ top: 20, bottom: 20, left: 20, right: 20, background: '#fff' }).png().toBuffer()), URL1);
  });

  it('coloured codes are 1-bit palette PNGs that both decoders read', async () => {
    const png = await renderQrPng(URL1, { fg: '#1a3d7c', bg: '#fffbe6', ecl: 'Q', margin: 3, scale: 6 });
    const h = ihdr(png);
    assert.equal(h.depth, 1);
    assert.equal(h.colourType, 3, 'palette');
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([...data.subarray(0, 3)], [0xff, 0xfb, 0xe6], 'background colour in the corner');
    await assertDecodes(png, URL1);
  });

  it('a logo is composited in the centre and the code still reads (level H forced)', async () => {
    for (const [fmt, logo] of [
      ['png', await svgLogo('#c00').png().toBuffer()],
      ['jpeg', await svgLogo('#06c').jpeg().toBuffer()],
    ] as const) {
      const png = await renderQrPng(URL1, { logo, ecl: 'L', scale: 8 });
      const meta = await sharp(png).metadata();
      const m = encodeQr(URL1, 'H');
      assert.equal(meta.width, (m.size + 8) * 8, `${fmt}: level H symbol size`);
      // the centre pixel is the logo's colour, not black or white
      const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const c = ((info.height >> 1) * info.width + (info.width >> 1)) * 3;
      const centre = [...data.subarray(c, c + 3)];
      assert.ok(centre[0] !== centre[2], `${fmt}: centre is coloured (${centre})`);
      await assertDecodes(png, URL1);
    }
  });

  it('caches renders by content and style', async () => {
    clearQrCache();
    const a = await renderQrPng(URL1 + 'cache');
    const b = await renderQrPng(URL1 + 'cache');
    assert.equal(a, b, 'same buffer from the cache');
    const c = await renderQrPng(URL1 + 'cache', { scale: 4 });
    assert.notEqual(a, c);
    assert.ok(qrCacheStats().hits >= 1);
  });
});

describe('QR SVG', () => {
  it('is one path that both decoders read once rasterised', async () => {
    for (const t of TEXTS) {
      const svg = await renderQrSvg(t, { scale: 4 });
      assert.equal((svg.match(/<path /g) ?? []).length, 1);
      await assertDecodes(svg, t);
    }
    const coloured = await renderQrSvg(URL1, { fg: '#203040', bg: '#f0f8ff' });
    assert.match(coloured, /fill="#203040"/);
    await assertDecodes(coloured, URL1);
  });

  it('with a logo', async () => {
    const svg = await renderQrSvg(URL1, { logo: await svgLogo('#0a0').png().toBuffer() });
    assert.match(svg, /<image [^>]*href="data:image\/png;base64,/);
    await assertDecodes(svg, URL1);
  });
});

describe('QR styles', () => {
  const refused = (input: Record<string, unknown>, field: string) =>
    assert.throws(() => parseQrStyle(input), (e: unknown) => e instanceof DomainError && e.code === 'VALIDATION' && e.field === field && e.message.includes(field), JSON.stringify(input));

  it('parses query-string style values', () => {
    assert.deepEqual(parseQrStyle({ ecl: 'h', margin: '2', scale: '10', fg: '%23000'.replace('%23', '#'), bg: 'FFF', other: 'ignored' }), { ecl: 'H', margin: 2, scale: 10, fg: '#000000', bg: '#ffffff' });
    assert.deepEqual(parseQrStyle({}), {});
  });

  it('refuses bad styles naming the field', async () => {
    refused({ ecl: 'X' }, 'ecl');
    refused({ margin: -1 }, 'margin');
    refused({ margin: '1.5' }, 'margin');
    refused({ margin: 21 }, 'margin');
    refused({ scale: 0 }, 'scale');
    refused({ scale: 41 }, 'scale');
    refused({ scale: 'big' }, 'scale');
    refused({ fg: 'red' }, 'fg');
    refused({ fg: '#12345' }, 'fg');
    refused({ bg: '#ggg' }, 'bg');
    refused({ fg: '#fff', bg: '#000' }, 'fg'); // inverted
    refused({ fg: '#777', bg: '#888' }, 'fg'); // too little contrast
    refused({ logo: 'not bytes' }, 'logo');
    refused({ logo: Buffer.from('GIF89a.......') }, 'logo');
    await assert.rejects(renderQrPng('x'.repeat(1000), { scale: 40 }), (e: unknown) => e instanceof DomainError && e.field === 'scale');
    const broken = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('garbage')]);
    await assert.rejects(renderQrPng(URL1, { logo: broken }), (e: unknown) => e instanceof DomainError && e.field === 'logo');
  });
});
