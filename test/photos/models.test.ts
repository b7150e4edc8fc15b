import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { buildSrModel, srModelDir } from '../../src/services/photos/esrgan.js';
import { encodeModel } from '../../src/services/photos/onnx.js';
import { cleanUp, colourize, personMask, planTiles, replaceBackground, segSession, srMargin, srSession, superResolve, toPlanar } from '../../src/services/photos/processors.js';
import { noPersonSvg, personSvg, png, psnr, rawRgb, sceneSvg } from './fixtures.js';

describe('sr: ESRGAN-slim (RDN) weights from npm, rebuilt as ONNX', () => {
  it('matches the TensorFlow.js layers model the package ships, on the same input', async () => {
    const tf = await import('@tensorflow/tfjs');
    await tf.setBackend('cpu');
    const dir = srModelDir(2);
    const m = JSON.parse(readFileSync(join(dir, 'model.json'), 'utf8'));
    const wd = readFileSync(join(dir, m.weightsManifest[0].paths[0]));
    const model = await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: m.modelTopology, weightSpecs: m.weightsManifest[0].weights, weightData: wd.buffer.slice(wd.byteOffset, wd.byteOffset + wd.length) }),
    );
    const H = 12, W = 10;
    let seed = 7;
    const nhwc = Float32Array.from({ length: H * W * 3 }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 255);
    const expected = (model.predict(tf.tensor4d(nhwc, [1, H, W, 3])) as import('@tensorflow/tfjs').Tensor).dataSync();
    const nchw = new Float32Array(3 * H * W);
    for (let c = 0; c < 3; c++) for (let i = 0; i < H * W; i++) nchw[c * H * W + i] = nhwc[i * 3 + c];
    const s = await ort.InferenceSession.create(buildSrModel(2));
    const got = (await s.run({ input: new ort.Tensor('float32', nchw, [1, 3, H, W]) })).output;
    assert.deepEqual(got.dims, [1, 3, 2 * H, 2 * W]);
    const o = got.data as Float32Array;
    let maxd = 0;
    for (let c = 0; c < 3; c++) for (let i = 0; i < 4 * H * W; i++) maxd = Math.max(maxd, Math.abs(o[c * 4 * H * W + i] - expected[i * 3 + c]));
    assert.ok(maxd < 0.01, `max difference ${maxd}`);
  });

  it('doubles the size and beats bicubic by PSNR on a downscaled synthetic image', async () => {
    const truth = await rawRgb(await png(sceneSvg(128, 128)));
    const small = await sharp(truth.data, { raw: { width: 128, height: 128, channels: 3 } }).resize(64, 64, { kernel: 'cubic' }).raw().toBuffer();
    const lr = { data: new Uint8Array(small), width: 64, height: 64 };
    const sr = await superResolve(await srSession(2, 0), lr, 2, 512);
    assert.equal(sr.width, 128);
    assert.equal(sr.height, 128);
    const bicubic = await sharp(small, { raw: { width: 64, height: 64, channels: 3 } }).resize(128, 128, { kernel: 'cubic' }).raw().toBuffer();
    const pSr = psnr(sr.data, truth.data);
    const pBi = psnr(new Uint8Array(bicubic), truth.data);
    if (process.env.PHOTOS_VERBOSE) console.log(`PSNR sr ${pSr.toFixed(2)} dB, bicubic ${pBi.toFixed(2)} dB`);
    assert.ok(pSr > pBi + 0.3, `sr ${pSr.toFixed(2)} dB vs bicubic ${pBi.toFixed(2)} dB`);
  });

  it('the byte model (uint8 NHWC in and out, as the jobs run it) is the float model clipped and rounded', async () => {
    // a random image, so that every value range and many .5 boundaries occur
    const H = 24, W = 20;
    let seed = 5;
    const data = Uint8Array.from({ length: H * W * 3 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256);
    const f = await ort.InferenceSession.create(buildSrModel(2, 'float'));
    const planes = (await f.run({ input: new ort.Tensor('float32', toPlanar({ data, width: W, height: H }, { px0: 0, py0: 0, px1: W, py1: H }), [1, 3, H, W]) })).output.data as Float32Array;
    const got = await superResolve(await srSession(2, 0), { data, width: W, height: H }, 2, 512);
    assert.equal(got.data.length, 4 * H * W * 3);
    const P = 4 * H * W;
    const want = new Uint8ClampedArray(P * 3);
    for (let i = 0; i < P; i++) for (let c = 0; c < 3; c++) want[i * 3 + c] = planes[c * P + i];
    let differ = 0, maxd = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(want[i] - got.data[i]);
      if (d) differ++;
      maxd = Math.max(maxd, d);
    }
    // the graphs are optimised apart, so float rounding may flip a value sitting on .5 — by one, rarely
    assert.ok(maxd <= 1 && differ <= want.length / 1000, `${differ} of ${want.length} bytes differ, by up to ${maxd}`);
  });

  it('announces each run with its expected length before it starts (the run itself reports nothing)', async () => {
    const img = await rawRgb(await png(sceneSvg(120, 90)));
    const s = await srSession(2, 0);
    const events: string[] = [];
    const expect: number[] = [];
    await superResolve(s, img, 2, 40, (d, n) => events.push(`tile ${d}/${n}`), undefined, undefined, (d, n, ms) => (events.push(`run ${d}/${n}`), expect.push(ms)));
    const n = expect.length;
    assert.ok(n >= 4, `${n} tiles`);
    // every run is announced before its tile is done, in order
    assert.deepEqual(events, Array.from({ length: n }, (_, i) => [`run ${i}/${n}`, `tile ${i + 1}/${n}`]).flat());
    assert.ok(expect.every((ms) => ms > 0 && Number.isFinite(ms)), JSON.stringify(expect));
  });

  it('tiles with overlap: a tiled pass equals one pass over the whole image', async () => {
    const img = await rawRgb(await png(sceneSvg(70, 52)));
    const s = await srSession(2, 0);
    let runs = 0;
    const whole = await superResolve(s, img, 2, 1000, (_d, n) => (runs = n));
    assert.equal(runs, 1, 'an image under the run bound goes through in one run');
    let tiles = 0;
    const tiled = await superResolve(s, img, 2, 40, (_d, n) => (tiles = n));
    assert.ok(tiles >= 4, `${tiles} tiles`);
    let maxd = 0;
    for (let i = 0; i < whole.data.length; i++) maxd = Math.max(maxd, Math.abs(whole.data[i] - tiled.data[i]));
    assert.ok(maxd <= 1, `tiles differ from the whole-image pass by up to ${maxd}`);
  });

  it('the tile margin is the network’s receptive radius: enough context, and one pixel less is not', async () => {
    const radius = srMargin(2);
    assert.equal(radius, 10); // 9 convolutions (one 5×5) before the ×2 upsampling, one 3×3 after
    // Float outputs of the network on a 28×28 core cut from a 60×60 random image, against the whole
    // image's pass: with `radius` pixels of context they agree to float rounding; with one pixel
    // less, the zero padding at the tile's edge reaches the core.
    const N = 60, s = await ort.InferenceSession.create(buildSrModel(2, 'float'));
    let seed = 11;
    const data = Uint8Array.from({ length: N * N * 3 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256);
    const img = { data, width: N, height: N };
    const run = async (t: { px0: number; py0: number; px1: number; py1: number }) => {
      const [w, h] = [t.px1 - t.px0, t.py1 - t.py0];
      return { w: 2 * w, d: (await s.run({ input: new ort.Tensor('float32', toPlanar(img, t), [1, 3, h, w]) })).output.data as Float32Array, P: 4 * w * h };
    };
    const full = await run({ px0: 0, py0: 0, px1: N, py1: N });
    const coreDiff = async (m: number) => {
      const [x0, x1] = [16, 44];
      const t = await run({ px0: x0 - m, py0: x0 - m, px1: x1 + m, py1: x1 + m });
      let maxd = 0;
      for (let c = 0; c < 3; c++)
        for (let y = 2 * x0; y < 2 * x1; y++)
          for (let x = 2 * x0; x < 2 * x1; x++) {
            const a = full.d[c * full.P + y * full.w + x];
            const b = t.d[c * t.P + (y - 2 * (x0 - m)) * t.w + (x - 2 * (x0 - m))];
            maxd = Math.max(maxd, Math.abs(a - b));
          }
      return maxd;
    };
    const exact = await coreDiff(radius);
    const short = await coreDiff(radius - 1);
    assert.ok(exact < 1e-3, `with ${radius} pixels of context the core differs by ${exact}`);
    assert.ok(short > 1e-3, `with ${radius - 1} pixels of context the core still matches (${short}): the radius is overstated`);
  });

  it('plans one run when the image fits, else the grid that reads the fewest pixels', () => {
    assert.deepEqual(planTiles(866, 577, 1024 ** 2, 10), [{ x0: 0, x1: 866, y0: 0, y1: 577, px0: 0, px1: 866, py0: 0, py1: 577 }]);
    for (const [w, h, max] of [[1732, 1155, 1024 ** 2], [2000, 1000, 512 ** 2], [3000, 200, 400 * 400], [70, 52, 40 * 40], [1, 5000, 100 * 100]]) {
      const tiles = planTiles(w, h, max, 10);
      const covered = new Uint8Array(w * h);
      for (const t of tiles) {
        assert.ok((t.px1 - t.px0) * (t.py1 - t.py0) <= max, `a run of ${t.px1 - t.px0}×${t.py1 - t.py0} > ${max}`);
        assert.ok(t.px0 === Math.max(0, t.x0 - 10) && t.px1 === Math.min(w, t.x1 + 10) && t.py0 === Math.max(0, t.y0 - 10) && t.py1 === Math.min(h, t.y1 + 10));
        for (let y = t.y0; y < t.y1; y++) for (let x = t.x0; x < t.x1; x++) covered[y * w + x]++;
      }
      assert.ok(covered.every((c) => c === 1), `${w}×${h}: every pixel in exactly one tile's core`);
    }
    // 2 MP (the default cap) under the default bound: two runs side by side, 2 % of the pixels read twice
    const t2 = planTiles(1732, 1155, 1024 ** 2, 10);
    assert.equal(t2.length, 2);
  });
});

describe('repair: classical clean-up', () => {
  it('removes salt-and-pepper noise and stretches contrast', async () => {
    const base = await rawRgb(await png(sceneSvg(96, 96)));
    // a low-contrast copy with 3% impulse noise
    const noisy = new Uint8Array(base.data.length);
    let seed = 3;
    for (let p = 0; p < 96 * 96; p++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      const r = seed / 2 ** 31;
      for (let c = 0; c < 3; c++) noisy[3 * p + c] = r < 0.015 ? 0 : r < 0.03 ? 255 : 80 + Math.round(base.data[3 * p + c] * 0.4);
    }
    const out = await cleanUp({ data: noisy, width: 96, height: 96 });
    const lowContrast = Uint8Array.from(base.data, (v) => 80 + Math.round(v * 0.4));
    // Reference: the clean low-contrast image, contrast-stretched; the noisy one stretched the same way.
    const stretch = async (d: Uint8Array) => new Uint8Array(await sharp(d, { raw: { width: 96, height: 96, channels: 3 } }).normalise().raw().toBuffer());
    const ref = await stretch(lowContrast);
    const impulses = (d: Uint8Array) => {
      let k = 0;
      for (let p = 0; p < 96 * 96; p++) if ([0, 1, 2].some((c) => Math.abs(d[3 * p + c] - ref[3 * p + c]) > 100)) k++;
      return k / (96 * 96);
    };
    const before = impulses(await stretch(noisy));
    const after = impulses(out.data);
    assert.ok(before > 0.05 && after < 0.02, `impulse pixels ${before} → ${after}`);
    assert.ok(psnr(out.data, ref) > psnr(await stretch(noisy), ref) + 5, 'clean-up did not bring the image closer to the clean one');
    const range = (d: Uint8Array) => Math.max(...d) - Math.min(...d);
    assert.ok(range(out.data) > range(lowContrast) + 60, 'contrast was not stretched');
  });
});

describe('bg: MediaPipe selfie segmentation (npm, Apache-2.0) rebuilt as ONNX', () => {
  it('finds the person-shaped figure and not a box and a disc', async () => {
    const s = await segSession(0);
    const person = await personMask(s, await rawRgb(await png(personSvg())));
    const at = (m: Uint8Array, x: number, y: number) => m[y * 256 + x];
    assert.ok(at(person, 128, 105) > 200, 'face');
    assert.ok(at(person, 128, 230) > 200, 'torso');
    assert.ok(at(person, 10, 10) < 30 && at(person, 245, 40) < 30 && at(person, 10, 200) < 30, 'background');
    const none = await personMask(s, await rawRgb(await png(noPersonSvg())));
    const mean = none.reduce((a, b) => a + b, 0) / none.length / 255;
    assert.ok(mean < 0.15, `no person, yet mean mask ${mean}`);
  });

  it('puts the requested colour behind the figure, feathered, as JPEG', async () => {
    const img = await rawRgb(await png(personSvg(320, 400)));
    const mask = await personMask(await segSession(0), img);
    const jpg = await replaceBackground(img, mask, [255, 0, 0]);
    const meta = await sharp(jpg).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.equal(meta.width, 320);
    assert.equal(meta.height, 400);
    const out = await rawRgb(jpg);
    const px = (x: number, y: number) => Array.from(out.data.slice((y * 320 + x) * 3, (y * 320 + x) * 3 + 3));
    for (const [x, y] of [[8, 8], [300, 30], [10, 300]]) {
      const [r, g, b] = px(x, y);
      assert.ok(r > 240 && g < 20 && b < 20, `background at ${x},${y} is ${[r, g, b]}`);
    }
    const [r, g, b] = px(160, 164); // the face keeps its skin tone
    assert.ok(Math.abs(r - 0xe8) < 20 && Math.abs(g - 0xb7) < 20 && Math.abs(b - 0x96) < 20, `face is ${[r, g, b]}`);
    // feathered: across the shoulder edge there are intermediate values, not a hard step
    const row = 360;
    const reds = Array.from({ length: 60 }, (_, i) => px(10 + i, row)[0]);
    assert.ok(reds.some((v) => v > 80 && v < 200), 'no soft transition at the edge');
  });
});

describe('colour: a pluggable ONNX model', () => {
  it('combines the model’s a/b prediction with the image’s own lightness', async () => {
    // A stand-in model built here (not a colourization model): a/b = constants (0.3, 0.4) × 110,
    // i.e. a warm orange, whatever the input. It checks the plumbing (shapes, scaling, Lab → RGB).
    const model = encodeModel({
      name: 'constant-ab',
      nodes: [{ op: 'Conv', inputs: ['L', 'w', 'b'], outputs: ['ab'], attrs: { kernel_shape: [1, 1] } }],
      initializers: [
        { name: 'w', dims: [2, 1, 1, 1], data: new Float32Array([0, 0]) },
        { name: 'b', dims: [2], data: new Float32Array([0.3, 0.4]) },
      ],
      inputs: [{ name: 'L', dims: [1, 1, 256, 256] }],
      outputs: [{ name: 'ab', dims: [1, 2, 256, 256] }],
    });
    const s = await ort.InferenceSession.create(model);
    const grey = await sharp({ create: { width: 40, height: 30, channels: 3, background: { r: 128, g: 128, b: 128 } } }).raw().toBuffer();
    const out = await colourize(s, { data: new Uint8Array(grey), width: 40, height: 30 });
    const [r, g, b] = out.data.slice(0, 3);
    assert.ok(r > g && g > b && r - b > 60, `expected a warm colour, got ${[r, g, b]}`);
  });
});
