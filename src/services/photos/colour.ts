/**
 * sRGB ⇄ CIE L*a*b* (D65) for colourization: a model predicts a/b from L, and the result keeps the
 * input's own lightness. Pure functions on interleaved 8-bit RGB.
 */
const XN = 0.95047;
const ZN = 1.08883;

const toLinear = (c: number): number => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
const toSrgb = (c: number): number => (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055);
const f = (t: number): number => (t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116);
const finv = (t: number): number => (t ** 3 > 216 / 24389 ? t ** 3 : (116 * t - 16) / (24389 / 27));

/** L in [0, 100] for every pixel of interleaved RGB. */
export function lightness(rgb: Uint8Array, pixels: number): Float32Array {
  const L = new Float32Array(pixels);
  for (let i = 0; i < pixels; i++) {
    const r = toLinear(rgb[3 * i] / 255);
    const g = toLinear(rgb[3 * i + 1] / 255);
    const b = toLinear(rgb[3 * i + 2] / 255);
    const y = 0.2126729 * r + 0.7151522 * g + 0.072175 * b;
    L[i] = 116 * f(y) - 16;
  }
  return L;
}

/** Interleaved 8-bit RGB from L (0..100) and a, b planes. */
export function labToRgb(L: Float32Array, a: Float32Array, b: Float32Array): Uint8Array {
  const out = new Uint8Array(L.length * 3);
  const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v * 255)));
  for (let i = 0; i < L.length; i++) {
    const fy = (L[i] + 16) / 116;
    const x = XN * finv(fy + a[i] / 500);
    const y = finv(fy);
    const z = ZN * finv(fy - b[i] / 200);
    const r = 3.2404542 * x - 1.5371385 * y - 0.4985314 * z;
    const g = -0.969266 * x + 1.8760108 * y + 0.041556 * z;
    const bl = 0.0556434 * x - 0.2040259 * y + 1.0572252 * z;
    out[3 * i] = clamp(toSrgb(Math.max(0, r)));
    out[3 * i + 1] = clamp(toSrgb(Math.max(0, g)));
    out[3 * i + 2] = clamp(toSrgb(Math.max(0, bl)));
  }
  return out;
}
