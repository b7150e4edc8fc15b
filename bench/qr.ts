/**
 * QR PNG renders per second: menhu's renderer vs `qrcode`'s toBuffer, same content, level, margin
 * and scale, in the same run. Every measured render has new content (no cache can help); cached
 * renders (same content and style again) are measured separately and not part of the ratio.
 *
 *   node --import tsx bench/qr.ts [seconds per side, default 5]
 */
import QRCode from 'qrcode';
import { clearQrCache, renderQrPng, renderQrPngUncached } from '../src/core/qr/index.js';

const seconds = Number(process.argv[2] ?? 5);
const style = { ecl: 'M' as const, margin: 4, scale: 8 };
const text = (i: number) => `https://menhu.example.com/s/${(1e7 + i).toString(36)}Ab${i % 97}`;

async function measure(label: string, fn: (i: number) => unknown): Promise<number> {
  for (let i = 0; i < 200; i++) await fn(1e6 + i); // warm up
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    for (let k = 0; k < 20; k++) await fn(n++);
  }
  const rate = n / ((performance.now() - t0) / 1000);
  console.log(`${label.padEnd(44)} ${rate.toFixed(0).padStart(8)} renders/s  (${(1e6 / rate).toFixed(0)} µs each, ${n} renders)`);
  return rate;
}

const ours = await measure('menhu renderQrPng, uncached (new content)', (i) => renderQrPngUncached(text(i), style));
const theirs = await measure('qrcode toBuffer (new content)', (i) => QRCode.toBuffer(text(i), { errorCorrectionLevel: 'M', margin: 4, scale: 8 }));
clearQrCache();
await renderQrPng(text(0), style);
const cached = await measure('menhu renderQrPng, cache hit (same content)', () => renderQrPng(text(0), style));
const png = renderQrPngUncached(text(1), style);
const ref = await QRCode.toBuffer(text(1), { errorCorrectionLevel: 'M', margin: 4, scale: 8 });
console.log(`\nPNG size: menhu ${png.length} bytes (1-bit greyscale), qrcode ${ref.length} bytes`);
console.log(`ratio uncached menhu / qrcode: ${(ours / theirs).toFixed(1)}x (goal >= 20x)`);
console.log(`cache hits: ${(cached / 1000).toFixed(0)}k/s (not part of the ratio)`);
