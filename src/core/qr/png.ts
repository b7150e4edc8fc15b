/** Minimal PNG writer for 1-bit images: greyscale (plain black on white) or a two-colour palette. */
import { crc32, deflateSync } from 'node:zlib';
import type { QrMatrix } from './matrix.js';
import { rgb } from './style.js';

/** Level 1: the rows repeat (scale copies of each module row), so even the fastest level compresses them well. */
const DEFLATE_LEVEL = 1;

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/**
 * Renders the matrix as a 1-bit PNG. Without colours: greyscale (colour type 0, 0 = black).
 * With colours: palette (colour type 3) [bg, fg], 1 = dark module.
 */
export function matrixToPng(m: QrMatrix, margin: number, scale: number, colours?: { fg: string; bg: string }): Buffer {
  const modules = m.size + 2 * margin;
  const w = modules * scale;
  const rowBytes = (w + 7) >> 3;
  const stride = rowBytes + 1;
  const raw = Buffer.alloc(stride * w);
  // greyscale: bit 1 = white, so the light ground is all ones and dark modules clear bits;
  // palette: index 0 = bg, so the ground is all zeros and dark modules set bits.
  const grey = !colours;
  const line = Buffer.alloc(stride);
  // Quiet-zone rows: one line, copied.
  line[0] = 0;
  line.fill(grey ? 0xff : 0x00, 1);
  if (grey && w % 8) line[stride - 1] = (0xff << (8 - (w % 8))) & 0xff; // padding bits are zero (they are ignored anyway)
  const quiet = Buffer.from(line);
  let y = 0;
  for (; y < margin * scale; y++) quiet.copy(raw, y * stride);
  for (let r = 0; r < m.size; r++) {
    quiet.copy(line);
    const o = r * m.size;
    for (let c = 0; c < m.size; c++) {
      if (!m.data[o + c]) continue;
      let x = (margin + c) * scale;
      const end = x + scale;
      for (; x < end; x++) {
        const byte = 1 + (x >> 3);
        const bit = 0x80 >> (x & 7);
        if (grey) line[byte] &= ~bit;
        else line[byte] |= bit;
      }
    }
    for (let k = 0; k < scale; k++, y++) line.copy(raw, y * stride);
  }
  for (; y < w; y++) quiet.copy(raw, y * stride);

  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(w, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = grey ? 0 : 3; // colour type
  ihdr[10] = 0;
  ihdr[11] = 0;
  ihdr[12] = 0;
  const parts = [SIGNATURE, chunk('IHDR', ihdr)];
  if (!grey) parts.push(chunk('PLTE', Buffer.from([...rgb(colours!.bg), ...rgb(colours!.fg)])));
  parts.push(chunk('IDAT', deflateSync(raw, { level: DEFLATE_LEVEL })), chunk('IEND', Buffer.alloc(0)));
  return Buffer.concat(parts);
}
