/**
 * Bare onnxruntime for bench/photos.ts, in its own process at the processing children's niceness
 * (set before onnxruntime starts its threads), so the bare baseline and the job pipeline compete
 * for the CPU on equal terms. Messages in: {type:'init', png, scale, tile} then {type:'run', what:
 * 'whole'|'tiles'}; out: {type:'ready', tiles} and {type:'ms', ms, cpu} (wall and CPU milliseconds).
 */
import { setPriority } from 'node:os';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { buildSrModel, type SrScale } from '../src/services/photos/esrgan.js';
import { WORKER_NICE } from '../src/services/photos/pool.js';
import { planTiles, sessionOptions, srMargin } from '../src/services/photos/processors.js';

try {
  setPriority(WORKER_NICE);
} catch {
  // not permitted: run at the inherited priority
}

let session: ort.InferenceSession;
let whole: ort.Tensor;
const tiles: ort.Tensor[] = [];

process.on('message', async (m: any) => {
  if (m.type === 'init') {
    const { data, info } = await sharp(Buffer.from(m.png)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const { width: w, height: h } = info;
    // the model the jobs run: the image's bytes in and out (uint8 NHWC), converted inside the graph
    const x = new Uint8Array(data);
    whole = new ort.Tensor('uint8', x, [1, h, w, 3]);
    // The same tiles the pipeline runs (processors.ts planTiles: the whole image in one run when it
    // is at most tile² pixels), each with the network's receptive radius of context.
    for (const t of planTiles(w, h, Math.max(32, m.tile) ** 2, srMargin(m.scale))) {
      const tw = t.px1 - t.px0, th = t.py1 - t.py0;
      const tx = new Uint8Array(3 * tw * th);
      for (let yy = 0; yy < th; yy++) tx.set(x.subarray(((t.py0 + yy) * w + t.px0) * 3, ((t.py0 + yy) * w + t.px0 + tw) * 3), yy * tw * 3);
      tiles.push(new ort.Tensor('uint8', tx, [1, th, tw, 3]));
    }
    // The pipeline's session options (processors.ts sessionOptions, the default thread count).
    session = await ort.InferenceSession.create(buildSrModel(m.scale as SrScale, 'rgb8'), sessionOptions(m.threads ?? 0));
    await session.run({ input: new ort.Tensor('uint8', new Uint8Array(3 * 32 * 32), [1, 32, 32, 3]) });
    process.send!({ type: 'ready', tiles: tiles.length });
  } else if (m.type === 'run') {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    if (m.what === 'whole') await session.run({ input: whole });
    else for (const tile of tiles) await session.run({ input: tile });
    const c = process.cpuUsage(c0);
    process.send!({ type: 'ms', ms: performance.now() - t0, cpu: (c.user + c.system) / 1000 });
  }
});
process.on('disconnect', () => process.exit(0));
