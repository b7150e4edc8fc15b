/** Two independent QR decoders (jsQR and ZXing) over the pixels sharp reads from an image. */
import { BarcodeFormat, BinaryBitmap, DecodeHintType, GlobalHistogramBinarizer, HybridBinarizer, QRCodeReader, RGBLuminanceSource } from '@zxing/library';
import jsQRModule from 'jsqr';
import sharp from 'sharp';

// jsqr ships CommonJS with a default export; under NodeNext its typing is the module object.
const jsQR = ((jsQRModule as unknown as { default?: unknown }).default ?? jsQRModule) as unknown as (d: Uint8ClampedArray, w: number, h: number, o?: { inversionAttempts?: 'dontInvert' | 'onlyInvert' | 'attemptBoth' | 'invertFirst' }) => { data: string } | null;

export async function pixels(image: Buffer | string): Promise<{ rgba: Uint8ClampedArray; width: number; height: number }> {
  const input = typeof image === 'string' ? Buffer.from(image) : image;
  const { data, info } = await sharp(input).flatten({ background: '#ffffff' }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return { rgba: new Uint8ClampedArray(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

export function decodeJsqr(p: { rgba: Uint8ClampedArray; width: number; height: number }): string | null {
  return jsQR(p.rgba, p.width, p.height, { inversionAttempts: 'dontInvert' })?.data ?? null;
}

/**
 * ZXing: the finder-pattern detector first, then ZXing's PURE_BARCODE mode (made for computer-made
 * images: module grid read from the quiet-zone corner). The detector alone misses some clean
 * synthetic symbols (about 4% of version-3 URLs at mask 2, for `qrcode`'s own output as much as ours).
 */
export function decodeZxing(p: { rgba: Uint8ClampedArray; width: number; height: number }): string | null {
  const lum = new Uint8ClampedArray(p.width * p.height);
  for (let i = 0, j = 0; i < lum.length; i++, j += 4) lum[i] = (p.rgba[j] * 299 + p.rgba[j + 1] * 587 + p.rgba[j + 2] * 114) / 1000;
  const src = new RGBLuminanceSource(lum, p.width, p.height);
  for (const [pure, Binarizer] of [[false, HybridBinarizer], [false, GlobalHistogramBinarizer], [true, HybridBinarizer]] as const) {
    const hints = new Map<DecodeHintType, unknown>([
      [DecodeHintType.POSSIBLE_FORMATS, [BarcodeFormat.QR_CODE]],
      [DecodeHintType.CHARACTER_SET, 'UTF-8'],
      [DecodeHintType.TRY_HARDER, true],
    ]);
    if (pure) hints.set(DecodeHintType.PURE_BARCODE, true);
    try {
      return new QRCodeReader().decode(new BinaryBitmap(new Binarizer(src)), hints).getText();
    } catch {
      // next mode
    }
  }
  return null;
}

/** Both decoders' readings of an image (PNG/JPEG bytes or SVG text). */
export async function decodeBoth(image: Buffer | string): Promise<{ jsqr: string | null; zxing: string | null }> {
  const p = await pixels(image);
  let zxing = decodeZxing(p);
  // ZXing's finder-pattern detector is sensitive to how module edges fall on the pixel grid (a
  // page rendered at 240 dpi can fail where 120 or 360 dpi reads): retry at other scales, as
  // zxing-cpp's own downscaling does. The bits still come from ZXing reading the real pixels.
  for (const f of [0.5, 1.5]) {
    if (zxing !== null || Math.round(p.width * f) < 64) break;
    const input = typeof image === 'string' ? Buffer.from(image) : image;
    zxing = decodeZxing(await pixels(await sharp(input).flatten({ background: '#ffffff' }).resize(Math.round(p.width * f)).png().toBuffer()));
  }
  return { jsqr: decodeJsqr(p), zxing };
}
