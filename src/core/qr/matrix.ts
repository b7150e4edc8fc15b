/**
 * The QR module matrix. `qrcode` encodes the data (segments, version, Reed-Solomon, placement);
 * the mask is chosen here with the standard's penalty rules (ISO/IEC 18004 §7.8.3, the same rules
 * and tie-breaking as `qrcode`'s getBestMask, so the symbol is identical) over typed arrays, which is
 * about three times faster than letting `qrcode` evaluate the eight masks itself.
 */
import QRCode from 'qrcode';
import { DomainError } from '../errors.js';

export type Ecl = 'L' | 'M' | 'Q' | 'H';

export interface QrMatrix {
  /** Modules per side (without quiet zone). */
  size: number;
  /** size*size, row-major, 1 = dark. */
  data: Uint8Array;
  version: number;
  mask: number;
}

/** Format-info ECL bits (L=01, M=00, Q=11, H=10). */
const ECL_BITS: Record<Ecl, number> = { L: 1, M: 0, Q: 3, H: 2 };

const G15 = 0b10100110111;
const G15_MASK = 0b101010000010010;

function formatBits(ecl: Ecl, mask: number): number {
  const data = (ECL_BITS[ecl] << 3) | mask;
  let d = data << 10;
  for (let i = 14; i >= 10; i--) if (d & (1 << i)) d ^= G15 << (i - 10);
  return ((data << 10) | d) ^ G15_MASK;
}

const maskAt = (p: number, i: number, j: number): boolean => {
  switch (p) {
    case 0: return (i + j) % 2 === 0;
    case 1: return i % 2 === 0;
    case 2: return j % 3 === 0;
    case 3: return (i + j) % 3 === 0;
    case 4: return (Math.floor(i / 2) + Math.floor(j / 3)) % 2 === 0;
    case 5: return ((i * j) % 2) + ((i * j) % 3) === 0;
    case 6: return (((i * j) % 2) + ((i * j) % 3)) % 2 === 0;
    default: return (((i * j) % 3) + ((i + j) % 2)) % 2 === 0;
  }
};

/** Per symbol size: for each mask, the indices of the data modules it flips; the 2×15 format cells. */
interface Layout {
  flips: Int32Array[];
  format: Int32Array; // 30 indices: [vertical i=0..14, horizontal i=0..14]
}
const layouts = new Map<number, Layout>();

function layoutFor(size: number, reserved: Uint8Array): Layout {
  let l = layouts.get(size);
  if (l) return l;
  const flips: Int32Array[] = [];
  for (let p = 0; p < 8; p++) {
    const idx: number[] = [];
    for (let r = 0; r < size; r++) for (let c = 0; c < size; c++) if (!reserved[r * size + c] && maskAt(p, r, c)) idx.push(r * size + c);
    flips.push(Int32Array.from(idx));
  }
  const format = new Int32Array(30);
  for (let i = 0; i < 15; i++) {
    const vr = i < 6 ? i : i < 8 ? i + 1 : size - 15 + i;
    format[i] = vr * size + 8;
    const hc = i < 8 ? size - i - 1 : i < 9 ? 15 - i : 15 - i - 1;
    format[15 + i] = 8 * size + hc;
  }
  l = { flips, format };
  layouts.set(size, l);
  return l;
}

/** Penalty score of a masked symbol (N1 + N2 + N3 + N4 with weights 3, 3, 40, 10). */
export function penalty(d: Uint8Array, size: number): number {
  let n1 = 0;
  let n3 = 0;
  let n2 = 0;
  let dark = 0;
  // rows (with N2 and N4 on the way)
  for (let r = 0; r < size; r++) {
    const o = r * size;
    let last = d[o];
    let run = 1;
    let bits = last;
    dark += last;
    for (let c = 1; c < size; c++) {
      const m = d[o + c];
      dark += m;
      if (m === last) run++;
      else {
        if (run >= 5) n1 += run - 2;
        last = m;
        run = 1;
      }
      bits = ((bits << 1) & 0x7ff) | m;
      if (c >= 10 && (bits === 0x5d0 || bits === 0x05d)) n3++;
      if (r < size - 1) {
        const s = d[o + c - 1] + m + d[o + size + c - 1] + d[o + size + c];
        if (s === 4 || s === 0) n2++;
      }
    }
    if (run >= 5) n1 += run - 2;
  }
  // columns
  for (let c = 0; c < size; c++) {
    let last = d[c];
    let run = 1;
    let bits = last;
    for (let r = 1, o = size + c; r < size; r++, o += size) {
      const m = d[o];
      if (m === last) run++;
      else {
        if (run >= 5) n1 += run - 2;
        last = m;
        run = 1;
      }
      bits = ((bits << 1) & 0x7ff) | m;
      if (r >= 10 && (bits === 0x5d0 || bits === 0x05d)) n3++;
    }
    if (run >= 5) n1 += run - 2;
  }
  const k = Math.abs(Math.ceil((dark * 100) / d.length / 5) - 10);
  return n1 + n2 * 3 + n3 * 40 + k * 10;
}

function applyMask(work: Uint8Array, base: Uint8Array, l: Layout, ecl: Ecl, p: number): void {
  work.set(base);
  const f = l.flips[p];
  for (let k = 0; k < f.length; k++) work[f[k]] ^= 1;
  const bits = formatBits(ecl, p);
  const fm = l.format;
  for (let i = 0; i < 15; i++) {
    const v = (bits >> i) & 1;
    work[fm[i]] = v;
    work[fm[15 + i]] = v;
  }
}

/** Longest text accepted (bytes, UTF-8); the largest symbol holds 2,953 bytes at level L. */
export const MAX_QR_BYTES = 2953;

export function encodeQr(text: string, ecl: Ecl): QrMatrix {
  if (typeof text !== 'string' || text.length === 0) throw new DomainError('VALIDATION', 'QR content is empty', { field: 'text' });
  if (Buffer.byteLength(text) > MAX_QR_BYTES) throw new DomainError('VALIDATION', `QR content is longer than ${MAX_QR_BYTES} bytes`, { field: 'text' });
  let qr: QRCode.QRCode;
  try {
    // Mask 0 first (qrcode then skips its own, slower, mask search); the best mask is chosen below.
    qr = QRCode.create(text, { errorCorrectionLevel: ecl, maskPattern: 0 as QRCode.QRCodeMaskPattern });
  } catch (e) {
    throw new DomainError('VALIDATION', `QR content does not fit a QR code at level ${ecl}: ${(e as Error).message}`, { field: 'text' });
  }
  const mods = qr.modules as unknown as { size: number; data: Uint8Array; reservedBit: Uint8Array };
  const size = mods.size;
  const l = layoutFor(size, mods.reservedBit);
  // Undo mask 0 to get the unmasked symbol.
  const base = mods.data;
  const f0 = l.flips[0];
  for (let k = 0; k < f0.length; k++) base[f0[k]] ^= 1;
  const work = new Uint8Array(base.length);
  let best = 0;
  let bestScore = Infinity;
  for (let p = 0; p < 8; p++) {
    applyMask(work, base, l, ecl, p);
    const s = penalty(work, size);
    if (s < bestScore) {
      bestScore = s;
      best = p;
    }
  }
  if (best !== 7) applyMask(work, base, l, ecl, best);
  return { size, data: work, version: qr.version, mask: best };
}
