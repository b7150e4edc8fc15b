/**
 * The photo processors. Each is a real algorithm on real pixels:
 * - sr: super-resolution with the ESRGAN-family RDN network of @upscalerjs/esrgan-slim on
 *   onnxruntime-node (CPU), in overlapping tiles so memory stays bounded on large inputs;
 * - repair: classical clean-up with sharp (3×3 median denoise, contrast normalisation, unsharp
 *   mask), then sr. It restores nothing it cannot see: it is not face restoration;
 * - colour: an operator-supplied ONNX colourization model (see docs/fangtang.md), then sr;
 * - bg: person segmentation with MediaPipe Selfie Segmentation (@mediapipe/selfie_segmentation)
 *   on onnxruntime-node, the mask feathered and the person composited onto the requested colour.
 * This module runs in the processing child process (worker.ts); it knows nothing of jobs or HTTP.
 */
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { DomainError } from '../../core/errors.js';
import { labToRgb, lightness } from './colour.js';
import { buildSrModel, type SrScale } from './esrgan.js';
import type { Recipe } from './steps.js';
import { buildSegModel, SEG_SIZE } from './tflite.js';

export interface ProcessOptions {
  maxPixels: number;
  srScale: number;
  tile: number;
  threads: number;
  colourModel: string;
}

export interface ProcessResult {
  data: Buffer;
  contentType: string;
  width: number;
  height: number;
}

export interface Rgb {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Input pixels of context added around each tile; wider than the network's receptive field. */
export const TILE_MARGIN = 12;
const COLOUR_SIZE = 256;

// ---------------------------------------------------------------------------------------------
// Sessions, built once per process.

const sessions = new Map<string, Promise<ort.InferenceSession>>();

function sessionOptions(threads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    interOpNumThreads: 1,
    ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
    // Idle onnxruntime threads sleep instead of spinning, leaving the cores to the server.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

function cached(key: string, make: () => Promise<ort.InferenceSession>): Promise<ort.InferenceSession> {
  let s = sessions.get(key);
  if (!s) {
    s = make();
    s.catch(() => sessions.delete(key));
    sessions.set(key, s);
  }
  return s;
}

export const srSession = (scale: number, threads: number): Promise<ort.InferenceSession> => {
  if (![2, 3, 4, 8].includes(scale)) throw new Error(`super-resolution scale ${scale} is not shipped (2, 3, 4, 8)`);
  return cached(`sr${scale}:${threads}`, () => ort.InferenceSession.create(buildSrModel(scale as SrScale), sessionOptions(threads)));
};

export const segSession = (threads: number): Promise<ort.InferenceSession> =>
  cached(`seg:${threads}`, () => ort.InferenceSession.create(buildSegModel(), sessionOptions(threads)));

const colourSession = (path: string, threads: number): Promise<ort.InferenceSession> =>
  cached(`colour:${path}:${threads}`, () => ort.InferenceSession.create(path, sessionOptions(threads)));

// ---------------------------------------------------------------------------------------------
// Decoding

export interface Decoded extends Rgb {
  format: string;
}

/** Decodes an upload to 8-bit sRGB (EXIF orientation applied, alpha flattened on white). */
export async function decode(input: Buffer, maxPixels: number): Promise<Decoded> {
  let format: string | undefined;
  try {
    const meta = await sharp(input, { limitInputPixels: maxPixels }).metadata();
    format = meta.format;
    const { data, info } = await sharp(input, { limitInputPixels: maxPixels, failOn: 'warning' })
      .rotate()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height, format: format ?? 'unknown' };
  } catch (e) {
    const msg = (e as Error).message;
    if (/pixel limit/i.test(msg)) throw new DomainError('VALIDATION', `image larger than ${maxPixels} pixels`, { field: 'file' });
    throw new DomainError('PROCESSING_FAILED', `image cannot be decoded: ${msg}`);
  }
}

const raw = (img: Rgb, channels = 3) => ({ raw: { width: img.width, height: img.height, channels: channels as 1 | 3 } });

// ---------------------------------------------------------------------------------------------
// sr

/**
 * Runs the super-resolution network over the image in tiles of `tile` input pixels, each with
 * TILE_MARGIN pixels of context that are cut off the output, so the seams are invisible and the
 * result equals one pass over the whole image (up to float rounding).
 */
export async function superResolve(session: ort.InferenceSession, img: Rgb, scale: number, tile: number, onTile?: (done: number, total: number) => void): Promise<Rgb> {
  const { width: w, height: h, data } = img;
  const W = w * scale;
  const out = new Uint8Array(W * h * scale * 3);
  const t = Math.max(16, tile);
  const cols = Math.ceil(w / t);
  const rows = Math.ceil(h / t);
  let done = 0;
  for (let ty = 0; ty < rows; ty++) {
    for (let tx = 0; tx < cols; tx++) {
      const x0 = tx * t, y0 = ty * t;
      const x1 = Math.min(w, x0 + t), y1 = Math.min(h, y0 + t);
      const px0 = Math.max(0, x0 - TILE_MARGIN), py0 = Math.max(0, y0 - TILE_MARGIN);
      const px1 = Math.min(w, x1 + TILE_MARGIN), py1 = Math.min(h, y1 + TILE_MARGIN);
      const pw = px1 - px0, ph = py1 - py0;
      const plane = pw * ph;
      const x = new Float32Array(3 * plane);
      for (let y = 0; y < ph; y++) {
        let s = ((py0 + y) * w + px0) * 3;
        const row = y * pw;
        for (let i = 0; i < pw; i++, s += 3) {
          x[row + i] = data[s];
          x[plane + row + i] = data[s + 1];
          x[2 * plane + row + i] = data[s + 2];
        }
      }
      const res = await session.run({ input: new ort.Tensor('float32', x, [1, 3, ph, pw]) });
      const o = res.output.data as Float32Array;
      const OW = pw * scale, OP = OW * ph * scale;
      const ox = (x0 - px0) * scale, oy = (y0 - py0) * scale;
      const cw = (x1 - x0) * scale, ch = (y1 - y0) * scale;
      for (let y = 0; y < ch; y++) {
        let d = ((y0 * scale + y) * W + x0 * scale) * 3;
        const srow = (oy + y) * OW + ox;
        for (let i = 0; i < cw; i++, d += 3) {
          const si = srow + i;
          out[d] = clamp255(o[si]);
          out[d + 1] = clamp255(o[OP + si]);
          out[d + 2] = clamp255(o[2 * OP + si]);
        }
      }
      res.output.dispose?.();
      onTile?.(++done, rows * cols);
    }
  }
  return { data: out, width: W, height: h * scale };
}

const clamp255 = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

// ---------------------------------------------------------------------------------------------
// repair (classical)

/** Median denoise (3×3), contrast normalisation (1st–99th percentile stretch), unsharp mask. */
export async function cleanUp(img: Rgb): Promise<Rgb> {
  const { data, info } = await sharp(img.data, raw(img)).median(3).normalise().sharpen({ sigma: 1 }).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

// ---------------------------------------------------------------------------------------------
// colour (pluggable model)

/**
 * Colourizes with the configured ONNX model: input float32 [1, 1, 256, 256] = (L − 50) / 100 of
 * the image resized to 256×256; output float32 [1, 2, h, w] = (a, b) / 110. The predicted a/b are
 * resized to the image and combined with the image's own L.
 */
export async function colourize(session: ort.InferenceSession, img: Rgb): Promise<Rgb> {
  const small = await sharp(img.data, raw(img)).resize(COLOUR_SIZE, COLOUR_SIZE, { fit: 'fill' }).raw().toBuffer();
  const L = lightness(small, COLOUR_SIZE * COLOUR_SIZE);
  const x = Float32Array.from(L, (v) => (v - 50) / 100);
  const res = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, 1, COLOUR_SIZE, COLOUR_SIZE]) });
  const o = res[session.outputNames[0]];
  if (o.dims.length !== 4 || o.dims[1] !== 2) throw new Error(`colour model output must be [1, 2, h, w], got [${o.dims.join(', ')}]`);
  const [, , oh, ow] = o.dims as number[];
  const ab = o.data as Float32Array;
  // a and b to the image's size: shifted into 0..255 (one Lab unit per step, below what the eye sees).
  const plane = async (k: number): Promise<Float32Array> => {
    const u8 = Buffer.from(Array.from({ length: oh * ow }, (_, i) => clamp255(ab[k * oh * ow + i] * 110 + 128)));
    const big = await sharp(u8, { raw: { width: ow, height: oh, channels: 1 } }).resize(img.width, img.height, { fit: 'fill' }).extractChannel(0).raw().toBuffer();
    return Float32Array.from(big, (q) => q - 128);
  };
  const [a, b] = [await plane(0), await plane(1)];
  return { data: labToRgb(lightness(img.data, img.width * img.height), a, b), width: img.width, height: img.height };
}

// ---------------------------------------------------------------------------------------------
// bg

/** Person probability (0..255) at the image's size, from the 256×256 segmentation network. */
export async function personMask(session: ort.InferenceSession, img: Rgb): Promise<Uint8Array> {
  const small = await sharp(img.data, raw(img)).resize(SEG_SIZE, SEG_SIZE, { fit: 'fill' }).raw().toBuffer();
  const plane = SEG_SIZE * SEG_SIZE;
  const x = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) x[c * plane + i] = small[3 * i + c] / 255;
  const res = await session.run({ input: new ort.Tensor('float32', x, [1, 3, SEG_SIZE, SEG_SIZE]) });
  const m = res.output.data as Float32Array;
  const m8 = Buffer.from(Array.from(m, (v) => clamp255(v * 255)));
  // Back to the image's size, then feathered: a blur proportional to the image softens the edge.
  const sigma = Math.max(0.8, Math.min(img.width, img.height) / 300);
  const big = await sharp(m8, { raw: { width: SEG_SIZE, height: SEG_SIZE, channels: 1 } })
    .resize(img.width, img.height, { fit: 'fill', kernel: 'cubic' })
    .blur(sigma)
    .extractChannel(0)
    .raw()
    .toBuffer();
  return new Uint8Array(big.buffer, big.byteOffset, big.length);
}

/** The person over a solid background of `rgb` (alpha blend by the feathered mask), as JPEG. */
export async function replaceBackground(img: Rgb, mask: Uint8Array, rgb: [number, number, number]): Promise<Buffer> {
  const n = img.width * img.height;
  const out = Buffer.allocUnsafe(n * 3);
  const d = img.data;
  for (let i = 0; i < n; i++) {
    const a = mask[i] / 255;
    const j = 3 * i;
    out[j] = Math.round(d[j] * a + rgb[0] * (1 - a));
    out[j + 1] = Math.round(d[j + 1] * a + rgb[1] * (1 - a));
    out[j + 2] = Math.round(d[j + 2] * a + rgb[2] * (1 - a));
  }
  return sharp(out, raw(img)).jpeg({ quality: 92, chromaSubsampling: '4:4:4' }).toBuffer();
}

// ---------------------------------------------------------------------------------------------

export async function processPhoto(input: Buffer, recipe: Recipe, opts: ProcessOptions, progress: (p: number) => void): Promise<ProcessResult> {
  let img: Rgb = await decode(input, opts.maxPixels);
  const format = (img as Decoded).format;
  progress(0.05);
  if (recipe.steps[0] === 'bg') {
    const mask = await personMask(await segSession(opts.threads), img);
    progress(0.7);
    const data = await replaceBackground(img, mask, recipe.rgb ?? [255, 255, 255]);
    return { data, contentType: 'image/jpeg', width: img.width, height: img.height };
  }
  for (const step of recipe.steps) {
    if (step === 'repair') img = await cleanUp(img);
    else if (step === 'colour') {
      if (!opts.colourModel) throw new DomainError('VALIDATION', 'colour is not available: no colourization model is configured');
      img = await colourize(await colourSession(opts.colourModel, opts.threads), img);
    } else if (step === 'sr') {
      const session = await srSession(opts.srScale, opts.threads);
      progress(0.1);
      img = await superResolve(session, img, opts.srScale, opts.tile, (d, n) => progress(0.1 + (0.85 * d) / n));
    }
  }
  const enc = sharp(img.data, raw(img));
  const png = format === 'png';
  const data = png ? await enc.png({ compressionLevel: 6 }).toBuffer() : await enc.jpeg({ quality: 92, chromaSubsampling: '4:4:4' }).toBuffer();
  return { data, contentType: png ? 'image/png' : 'image/jpeg', width: img.width, height: img.height };
}
