/**
 * The photo processors. Each is a real algorithm on real pixels:
 * - sr: super-resolution with the ESRGAN-family RDN network of @upscalerjs/esrgan-slim on
 *   onnxruntime-node (CPU): one run over the image, or overlapping tiles when it is larger than
 *   the run bound (memory grows with the pixels of a run);
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
import { buildSrModel, srReceptiveRadius, type SrScale } from './esrgan.js';
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
  /** Where the time went, ms: decoding, model runs (onnxruntime only), everything else, encoding; and CPU time used (all threads). */
  timings: { decode: number; model: number; other: number; encode: number; cpu: number };
}

export interface Rgb {
  data: Uint8Array;
  width: number;
  height: number;
}

const COLOUR_SIZE = 256;

// ---------------------------------------------------------------------------------------------
// Sessions, built once per process.

const sessions = new Map<string, Promise<ort.InferenceSession>>();

/** Session options of every model here (bench/photos-bare.ts runs its baseline with the same). */
export function sessionOptions(threads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    interOpNumThreads: 1,
    // Image sizes vary from job to job: a memory pattern is planned per input shape and each one
    // keeps its own block in the arena (RSS grew from 1.1 to 1.9 GB on the second 0.5 MP run with
    // it). Without it the arena's chunks are reused across shapes.
    enableMemPattern: false,
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
  // the image's bytes in and out (uint8 NHWC): onnxruntime converts inside the graph
  return cached(`sr${scale}:${threads}`, () => ort.InferenceSession.create(buildSrModel(scale as SrScale, 'rgb8'), sessionOptions(threads)));
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

/** One run of the network: the core [x0, x1) × [y0, y1) it produces and the padded region it reads. */
export interface Tile {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  px0: number;
  py0: number;
  px1: number;
  py1: number;
}

/** `n` split into `parts` near-equal segments, each widened by `margin` (clipped to [0, n)). */
function segments(n: number, parts: number, margin: number): { a: number; b: number; pa: number; pb: number }[] {
  const out = [];
  const base = Math.floor(n / parts), extra = n % parts;
  for (let i = 0, a = 0; i < parts; i++) {
    const b = a + base + (i < extra ? 1 : 0);
    out.push({ a, b, pa: Math.max(0, a - margin), pb: Math.min(n, b + margin) });
    a = b;
  }
  return out;
}

/**
 * The tiles for a w×h image when one run may read at most `maxRun` pixels (context included): the
 * whole image in one run when it fits, else the grid of near-equal tiles with the fewest pixels
 * read in all (the context read twice is the cost of tiling), then the fewest runs. Memory of a run
 * grows with its pixels (about 2 KB per pixel for the ×2 model), so maxRun bounds the memory.
 */
export function planTiles(w: number, h: number, maxRun: number, margin: number): Tile[] {
  const longest = (n: number, parts: number) => Math.max(...segments(n, parts, margin).map((s) => s.pb - s.pa));
  const total = (n: number, parts: number) => segments(n, parts, margin).reduce((a, s) => a + s.pb - s.pa, 0);
  let best: { cols: number; rows: number; read: number } | null = null;
  const limit = 256; // grids beyond 256 × 256 only if nothing smaller fits (see below)
  for (let cols = 1; cols <= Math.min(w, limit); cols++) {
    const pw = longest(w, cols);
    if (pw > maxRun) continue;
    let rows = Math.max(1, Math.ceil(h / Math.max(1, Math.floor(maxRun / pw) - 2 * margin)));
    while (rows > 1 && longest(h, rows - 1) * pw <= maxRun) rows--;
    while (rows < h && longest(h, rows) * pw > maxRun) rows++;
    if (longest(h, rows) * pw > maxRun) continue;
    const read = total(w, cols) * total(h, rows);
    if (!best || read < best.read || (read === best.read && cols * rows < best.cols * best.rows)) best = { cols, rows, read };
  }
  // A bound too small for any grid (tiny maxRun on a huge image): square tiles of maxRun's side.
  const side = Math.max(1, Math.floor(Math.sqrt(maxRun)) - 2 * margin);
  const { cols, rows } = best ?? { cols: Math.ceil(w / side), rows: Math.ceil(h / side) };
  const tiles: Tile[] = [];
  for (const y of segments(h, rows, margin)) for (const x of segments(w, cols, margin)) tiles.push({ x0: x.a, x1: x.b, y0: y.a, y1: y.b, px0: x.pa, px1: x.pb, py0: y.pa, py1: y.pb });
  return tiles;
}

/** Interleaved 8-bit RGB of a region → planar float32 [3, h, w] (the network's input, 0..255). */
export function toPlanar(img: Rgb, t: Pick<Tile, 'px0' | 'py0' | 'px1' | 'py1'>): Float32Array {
  const { data, width } = img;
  const pw = t.px1 - t.px0, ph = t.py1 - t.py0, plane = pw * ph;
  const x = new Float32Array(3 * plane);
  for (let y = 0, j = 0; y < ph; y++) {
    for (let s = ((t.py0 + y) * width + t.px0) * 3, e = j + pw; j < e; j++, s += 3) {
      x[j] = data[s];
      x[plane + j] = data[s + 1];
      x[2 * plane + j] = data[s + 2];
    }
  }
  return x;
}

/**
 * Runs the super-resolution network over the image: in one run when the image is at most `tile`²
 * pixels, else in tiles of at most that many pixels (planTiles), each with `margin` pixels of
 * context (the network's receptive radius) that are cut off the output, so the result equals one
 * pass over the whole image.
 */
/**
 * Milliseconds per input pixel of this process's recent sr runs (an average): the expected length of
 * the next run, announced before it starts (onnxruntime blocks this process's event loop for the
 * whole run and reports nothing until it ends; one run is the whole image by default), so that the
 * server can move the job's progress meanwhile. Seeded with ~2.5 s per megapixel.
 */
let srMsPerPixel = 2.5e-3;

export async function superResolve(
  session: ort.InferenceSession,
  img: Rgb,
  scale: number,
  tile: number,
  onTile?: (done: number, total: number) => void,
  clock?: { model: number },
  margin: number = srMargin(scale),
  onRun?: (done: number, total: number, expectedMs: number) => void,
): Promise<Rgb> {
  const { width: w, height: h } = img;
  const W = w * scale;
  const tiles = planTiles(w, h, Math.max(32, tile) ** 2, margin);
  // srSession's model takes and gives the image's bytes (uint8 NHWC): no per-pixel work here, only
  // row copies when the image is cut into tiles
  const out = tiles.length === 1 ? null : new Uint8Array(W * h * scale * 3);
  let done = 0;
  for (const t of tiles) {
    const pw = t.px1 - t.px0, ph = t.py1 - t.py0;
    const input = new ort.Tensor('uint8', cropRgb(img, t), [1, ph, pw, 3]);
    if (onRun) {
      onRun(done, tiles.length, srMsPerPixel * pw * ph);
      await new Promise((r) => setImmediate(r)); // let the announcement leave before the run blocks
    }
    const t0 = performance.now();
    const res = await session.run({ input });
    const ms = performance.now() - t0;
    if (clock) clock.model += ms;
    srMsPerPixel = 0.5 * srMsPerPixel + (0.5 * ms) / (pw * ph);
    const o = res.output.data as Uint8Array;
    onTile?.(++done, tiles.length);
    if (!out) return { data: o, width: W, height: h * scale };
    const OW = pw * scale;
    const ox = (t.x0 - t.px0) * scale, oy = (t.y0 - t.py0) * scale;
    const cw = (t.x1 - t.x0) * scale, ch = (t.y1 - t.y0) * scale;
    for (let y = 0; y < ch; y++) {
      const s0 = ((oy + y) * OW + ox) * 3;
      out.set(o.subarray(s0, s0 + cw * 3), ((t.y0 * scale + y) * W + t.x0 * scale) * 3);
    }
  }
  return { data: out!, width: W, height: h * scale };
}

/** The bytes of one tile (with its context) of an RGB image: the image itself when the tile is all of it. */
function cropRgb(img: Rgb, t: Pick<Tile, 'px0' | 'py0' | 'px1' | 'py1'>): Uint8Array {
  const { data, width, height } = img;
  const pw = t.px1 - t.px0, ph = t.py1 - t.py0;
  if (pw === width && ph === height && data.length === width * height * 3) return data;
  const x = new Uint8Array(pw * ph * 3);
  for (let y = 0; y < ph; y++) {
    const s0 = ((t.py0 + y) * width + t.px0) * 3;
    x.set(data.subarray(s0, s0 + pw * 3), y * pw * 3);
  }
  return x;
}

const margins = new Map<number, number>();
/** Context each tile needs: the receptive radius of the ×`scale` network (10 input pixels for ×2). */
export function srMargin(scale: number): number {
  let m = margins.get(scale);
  if (m === undefined) margins.set(scale, (m = srReceptiveRadius(scale as SrScale)));
  return m;
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

/** Progress in [0, 1]; `next`: the work now starting should reach `to` in about `ms` (a run that reports nothing until it ends). */
export type Progress = (p: number, next?: { to: number; ms: number }) => void;

export async function processPhoto(input: Buffer, recipe: Recipe, opts: ProcessOptions, progress: Progress): Promise<ProcessResult> {
  const start = performance.now();
  const cpu0 = process.cpuUsage();
  const clock = { model: 0 };
  let img: Rgb = await decode(input, opts.maxPixels);
  const format = (img as Decoded).format;
  const decodeMs = performance.now() - start;
  progress(0.05);
  const timed = async <T>(fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      clock.model += performance.now() - t0;
    }
  };
  const finish = async (data: Promise<Buffer>, contentType: string, t0: number): Promise<ProcessResult> => {
    const out = await data;
    const encode = performance.now() - t0;
    const total = performance.now() - start;
    const cpu = process.cpuUsage(cpu0);
    return {
      data: out,
      contentType,
      width: img.width,
      height: img.height,
      timings: { decode: decodeMs, model: clock.model, other: total - decodeMs - clock.model - encode, encode, cpu: (cpu.user + cpu.system) / 1000 },
    };
  };
  if (recipe.steps[0] === 'bg') {
    const session = await segSession(opts.threads);
    const mask = await personMask(session, img);
    progress(0.7);
    return finish(replaceBackground(img, mask, recipe.rgb ?? [255, 255, 255]), 'image/jpeg', performance.now());
  }
  for (const step of recipe.steps) {
    if (step === 'repair') img = await cleanUp(img);
    else if (step === 'colour') {
      if (!opts.colourModel) throw new DomainError('VALIDATION', 'colour is not available: no colourization model is configured');
      const session = await colourSession(opts.colourModel, opts.threads);
      const cur = img;
      img = await timed(() => colourize(session, cur));
    } else if (step === 'sr') {
      const session = await srSession(opts.srScale, opts.threads);
      progress(0.1);
      const at = (d: number, n: number) => 0.1 + (0.85 * d) / n;
      img = await superResolve(session, img, opts.srScale, opts.tile, (d, n) => progress(at(d, n)), clock, undefined, (d, n, ms) => progress(at(d, n), { to: at(d + 1, n), ms }));
    }
  }
  const t0 = performance.now();
  const enc = sharp(img.data, raw(img));
  const png = format === 'png';
  return finish(png ? enc.png({ compressionLevel: 6 }).toBuffer() : enc.jpeg({ quality: 92, chromaSubsampling: '4:4:4' }).toBuffer(), png ? 'image/png' : 'image/jpeg', t0);
}
