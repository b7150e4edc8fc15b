/**
 * QR encoding and rendering: 1-bit PNG written directly (greyscale for plain codes, a two-colour
 * palette for coloured ones), SVG as one path, a centred logo composited with sharp (forces level H
 * and keeps the logo within LOGO_FRACTION of the symbol's side). Renders are cached by (content, style).
 */
import { createHash } from 'node:crypto';
import sharp, { type Sharp } from 'sharp';
import { DomainError } from '../errors.js';
import { encodeQr, type QrMatrix } from './matrix.js';
import { matrixToPng } from './png.js';
import { isPlain, resolveStyle, QR_LIMITS, type ResolvedStyle, type QrStyle } from './style.js';
import { matrixToSvg } from './svg.js';

export { encodeQr, type Ecl, type QrMatrix } from './matrix.js';
export { parseQrStyle, parseColour, resolveStyle, QR_DEFAULTS, QR_LIMITS, type QrStyle } from './style.js';

/**
 * The logo (with a one-module light border) covers at most this fraction of the symbol's side, so
 * at most ~5% of its area: level H restores up to 30% of codewords, which leaves a wide margin for
 * print defects on top of the logo.
 */
export const LOGO_FRACTION = 0.22;

// ---------------------------------------------------------------------------------------------
// LRU cache (Map keeps insertion order: re-insert on hit, evict from the front).

class Lru<V extends Buffer | string> {
  private map = new Map<string, V>();
  private bytes = 0;
  hits = 0;
  misses = 0;
  constructor(private readonly maxEntries: number, private readonly maxBytes: number) {}
  get(k: string): V | undefined {
    const v = this.map.get(k);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(k);
    this.map.set(k, v);
    return v;
  }
  set(k: string, v: V): void {
    const old = this.map.get(k);
    if (old !== undefined) {
      this.bytes -= old.length;
      this.map.delete(k);
    }
    this.map.set(k, v);
    this.bytes += v.length;
    while (this.map.size > this.maxEntries || this.bytes > this.maxBytes) {
      const first = this.map.keys().next();
      if (first.done) break;
      this.bytes -= this.map.get(first.value)!.length;
      this.map.delete(first.value);
    }
  }
  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }
  get size(): number {
    return this.map.size;
  }
}

const cache = new Lru<Buffer | string>(2000, 64 * 1024 * 1024);

export function qrCacheStats() {
  return { entries: cache.size, hits: cache.hits, misses: cache.misses };
}
export function clearQrCache(): void {
  cache.clear();
}

const logoHashes = new WeakMap<Buffer, string>();
function styleKey(kind: string, text: string, s: ResolvedStyle): string {
  let lh = '';
  if (s.logo) {
    lh = logoHashes.get(s.logo) ?? createHash('sha256').update(s.logo).digest('hex');
    logoHashes.set(s.logo, lh);
  }
  return `${kind}|${s.ecl}|${s.margin}|${s.scale}|${s.fg}|${s.bg}|${lh}|${text}`;
}

function checkPixels(m: QrMatrix, s: ResolvedStyle): void {
  const px = (m.size + 2 * s.margin) * s.scale;
  if (px > QR_LIMITS.maxPixels) {
    throw new DomainError('VALIDATION', `scale: the image would be ${px} px wide (at most ${QR_LIMITS.maxPixels}); lower scale or margin`, { field: 'scale' });
  }
}

/** Logo box in modules: odd-sized, centred, at most LOGO_FRACTION of the symbol's side. */
function logoBox(m: QrMatrix, margin: number): { x: number; size: number } {
  let size = Math.floor(m.size * LOGO_FRACTION);
  if (size % 2 === 0) size--;
  return { x: margin + (m.size - size) / 2, size };
}

async function logoImage(s: ResolvedStyle): Promise<Sharp> {
  try {
    const img = sharp(s.logo!, { limitInputPixels: 4096 * 4096, failOn: 'error' });
    const meta = await img.metadata();
    if (meta.format !== 'png' && meta.format !== 'jpeg') throw new Error(`format ${meta.format}`);
    return img;
  } catch (e) {
    throw new DomainError('VALIDATION', `logo: not a readable PNG or JPEG image (${(e as Error).message})`, { field: 'logo' });
  }
}

async function renderLogoPng(m: QrMatrix, s: ResolvedStyle): Promise<Buffer> {
  const base = matrixToPng(m, s.margin, s.scale, { fg: s.fg, bg: s.bg });
  const box = logoBox(m, s.margin);
  const outer = box.size * s.scale;
  const pad = s.scale; // one module of background around the logo
  const inner = Math.max(1, outer - 2 * pad);
  const logo = await (await logoImage(s))
    .resize(inner, inner, { fit: 'contain', background: s.bg })
    .flatten({ background: s.bg })
    .extend({ top: pad, bottom: pad, left: pad, right: pad, background: s.bg })
    .png()
    .toBuffer();
  const at = Math.round(box.x * s.scale);
  return sharp(base).composite([{ input: logo, left: at, top: at }]).png({ compressionLevel: 6 }).toBuffer();
}

/** Resolves the style, answers from the cache, or encodes (checking the image size) and renders. */
async function cached<T extends Buffer | string>(kind: string, text: string, style: QrStyle | undefined, render: (m: QrMatrix, s: ResolvedStyle) => T | Promise<T>): Promise<T> {
  const s = resolveStyle(style);
  const key = styleKey(kind, text, s);
  const hit = cache.get(key);
  if (hit !== undefined) return hit as T;
  const m = encodeQr(text, s.ecl);
  checkPixels(m, s);
  const out = await render(m, s);
  cache.set(key, out);
  return out;
}

export function renderQrPng(text: string, style?: QrStyle): Promise<Buffer> {
  return cached('png', text, style, (m, s) => (s.logo ? renderLogoPng(m, s) : matrixToPng(m, s.margin, s.scale, isPlain(s) ? undefined : { fg: s.fg, bg: s.bg })));
}

export function renderQrSvg(text: string, style?: QrStyle): Promise<string> {
  return cached('svg', text, style, async (m, s) => {
    let logo: { href: string; x: number; size: number } | undefined;
    if (s.logo) {
      const meta = await (await logoImage(s)).metadata();
      logo = { ...logoBox(m, s.margin), href: `data:image/${meta.format};base64,${s.logo.toString('base64')}` };
    }
    return matrixToSvg(m, s.margin, s.scale, s.fg, s.bg, logo);
  });
}

/** Uncached render of a plain PNG (benchmarks measure this; the cache is measured separately). */
export function renderQrPngUncached(text: string, style?: QrStyle): Buffer {
  const s = resolveStyle(style);
  if (s.logo) throw new DomainError('VALIDATION', 'uncached render has no logo support', { field: 'logo' });
  const m = encodeQr(text, s.ecl);
  checkPixels(m, s);
  return matrixToPng(m, s.margin, s.scale, isPlain(s) ? undefined : { fg: s.fg, bg: s.bg });
}
