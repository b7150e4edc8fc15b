/**
 * Photo jobs benchmark (bench/results/photos.md).
 *
 * 1. `sr` time per input megapixel through the whole job pipeline (HTTP upload → job claim →
 *    child process → tiled onnxruntime → encode → blob → status 200) against bare onnxruntime on
 *    the same decoded image in the same process run (one session.run over the whole image, same
 *    thread settings). Goal: pipeline ≤ 1.1 × bare.
 * 2. Server latency (/healthz, autocannon) with no job running, then while an `sr` job runs.
 *
 *   node --import tsx bench/photos.ts [megapixels=1] [seconds=5]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cpus, tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { pino } from 'pino';
import sharp from 'sharp';
import { loadConfig } from '../src/core/config.js';
import { createApp } from '../src/core/credentials/apps.js';
import { fangtangToken } from '../src/core/credentials/schemes.js';
import { addQuota } from '../src/core/limits/quotas.js';
import { closePlatform, createPlatform } from '../src/platform.js';
import { buildServer } from '../src/server.js';
import { createTenant } from '../src/services/accounts/index.js';
import { buildSrModel } from '../src/services/photos/esrgan.js';
import { TILE_MARGIN } from '../src/services/photos/processors.js';

interface CannonResult {
  requests: { average: number };
  latency: { p50: number; p99: number; max: number };
  errors: number;
  non2xx: number;
}
const autocannon = createRequire(import.meta.url)('autocannon') as (o: { url: string; connections: number; duration: number }) => Promise<CannonResult>;

const MP = Number(process.argv[2] ?? 1);
const SECONDS = Number(process.argv[3] ?? 5);

function scene(w: number, h: number): Buffer {
  const shapes = Array.from({ length: 40 }, (_, i) => {
    const x = (i * 97) % 100, y = (i * 61) % 100, r = 3 + ((i * 13) % 9);
    return `<circle cx="${x}%" cy="${y}%" r="${r}%" fill="hsl(${(i * 37) % 360},60%,${35 + (i % 4) * 10}%)" stroke="#111" stroke-width="3"/>`;
  }).join('');
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><rect width="100%" height="100%" fill="#dfe8ef"/>${shapes}
<text x="5%" y="90%" font-size="${Math.round(h / 12)}" font-family="DejaVu Sans" fill="#222">menhu photo bench</text></svg>`);
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'menhu-bench-photos-'));
  const config = loadConfig(
    { MENHU_DATA: dataDir, MENHU_MASTER_KEY: randomBytes(32).toString('hex'), LOG_LEVEL: 'silent', MENHU_PHOTOS_MAX_PIXELS: String(Math.ceil(MP * 2e6)) },
    { port: 0, jobConcurrency: 1 },
  );
  const ctx = await createPlatform(config, { log: pino({ level: 'silent' }) });
  const app = await buildServer(ctx, { logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  ctx.config.publicUrl = url;
  ctx.jobs.start(1, 20);
  const tenant = await createTenant(ctx, 'bench');
  const a = await createApp(ctx, { tenantId: Number(tenant.id), name: 'bench', services: ['fangtang'] });
  await addQuota(ctx.db.kysely, Number(tenant.id), 'fangtang', 100);
  const token = () => fangtangToken(a.secret, Math.floor(Date.now() / 1000));
  const post = async (path: string, fields: Record<string, string>, file?: Buffer) => {
    const form = new FormData();
    form.set('third_code', a.key);
    for (const [k, v] of Object.entries(fields)) form.set(k, v);
    if (file) form.set('file', new Blob([file], { type: 'image/png' }), 'in.png');
    const r = await fetch(`${url}/api/third${path}`, { method: 'POST', headers: { token: token() }, body: form });
    return (await r.json()) as any;
  };
  const job = async (file: Buffer): Promise<number> => {
    const t0 = performance.now();
    const up = await post('/photo/upload', { repair_type: 'sr' }, file);
    if (up.code !== 200) throw new Error(JSON.stringify(up));
    for (;;) {
      const st = await post('/photo/status', { mdf: up.data.mdf });
      if (st.code !== 200) throw new Error(JSON.stringify(st));
      if (st.data.status === 200) return performance.now() - t0;
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  const w = Math.round(Math.sqrt(MP * 1e6 * 1.5)), h = Math.round((MP * 1e6) / w);
  const input = await sharp(scene(w, h)).png().toBuffer();
  const mp = (w * h) / 1e6;
  const lines: string[] = [];
  const say = (s: string) => {
    lines.push(s);
    console.log(s);
  };
  say(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}, onnxruntime-node ${ort.env.versions.node}`);
  say(`image: ${w}×${h} = ${mp.toFixed(3)} MP PNG, sr ×${config.photos.srScale}, tile ${config.photos.tile}, threads ${config.photos.threads || 'default'}`);

  // --- 1. pipeline vs bare onnxruntime -------------------------------------------------------
  const cold = await job(await sharp(scene(64, 64)).png().toBuffer()); // starts the child, loads the model
  say(`cold start (first job, 64×64, child process + model load): ${cold.toFixed(0)} ms`);
  const pipeline = await job(input);
  const { data } = await sharp(input).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const plane = w * h;
  const x = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) x[c * plane + i] = data[3 * i + c];
  const session = await ort.InferenceSession.create(buildSrModel(config.photos.srScale as 2), {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    interOpNumThreads: 1,
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  await session.run({ input: new ort.Tensor('float32', new Float32Array(3 * 32 * 32), [1, 3, 32, 32]) }); // warm
  // (a) one run over the whole image
  let t0 = performance.now();
  await session.run({ input: new ort.Tensor('float32', x, [1, 3, h, w]) });
  const bareWhole = performance.now() - t0;
  // (b) the same tiles the pipeline runs (tile + TILE_MARGIN context), tensors built beforehand:
  // only session.run is timed, so this is onnxruntime's own time for the pipeline's work.
  const t = config.photos.tile;
  const tiles: ort.Tensor[] = [];
  for (let y0 = 0; y0 < h; y0 += t)
    for (let x0 = 0; x0 < w; x0 += t) {
      const px0 = Math.max(0, x0 - TILE_MARGIN), py0 = Math.max(0, y0 - TILE_MARGIN);
      const px1 = Math.min(w, x0 + t + TILE_MARGIN), py1 = Math.min(h, y0 + t + TILE_MARGIN);
      const tw = px1 - px0, th = py1 - py0;
      const tx = new Float32Array(3 * tw * th);
      for (let c = 0; c < 3; c++) for (let yy = 0; yy < th; yy++) for (let xx = 0; xx < tw; xx++) tx[(c * th + yy) * tw + xx] = x[c * plane + (py0 + yy) * w + px0 + xx];
      tiles.push(new ort.Tensor('float32', tx, [1, 3, th, tw]));
    }
  t0 = performance.now();
  for (const tile of tiles) await session.run({ input: tile });
  const bareTiles = performance.now() - t0;
  await session.release();
  const bare = Math.min(bareWhole, bareTiles);
  say('');
  say('| | ms | s per input MP |');
  say('|---|---:|---:|');
  say(`| (a) bare onnxruntime, one run over the whole image | ${bareWhole.toFixed(0)} | ${(bareWhole / 1000 / mp).toFixed(2)} |`);
  say(`| (b) bare onnxruntime, session.run over the pipeline's ${tiles.length} tiles | ${bareTiles.toFixed(0)} | ${(bareTiles / 1000 / mp).toFixed(2)} |`);
  say(`| whole job pipeline (upload → status 200) | ${pipeline.toFixed(0)} | ${(pipeline / 1000 / mp).toFixed(2)} |`);
  say(`| **ratio pipeline / faster bare** | **${(pipeline / bare).toFixed(3)}** | goal ≤ 1.1 |`);

  // --- 2. latency while a job runs ---------------------------------------------------------------
  const cannon = (): Promise<CannonResult> => autocannon({ url: `${url}/healthz`, connections: 10, duration: SECONDS });
  await autocannon({ url: `${url}/healthz`, connections: 10, duration: 2 }); // warm the server up first
  const idle = await cannon();
  const big = input;
  const running = job(big);
  await new Promise((r) => setTimeout(r, 300));
  const busy = await cannon();
  const jobMs = await running;
  say('');
  say(`/healthz, autocannon 10 connections × ${SECONDS} s:`);
  say('| | req/s | p50 ms | p99 ms | max ms |');
  say('|---|---:|---:|---:|---:|');
  say(`| no job running | ${idle.requests.average.toFixed(0)} | ${idle.latency.p50} | ${idle.latency.p99} | ${idle.latency.max} |`);
  say(`| while an sr job runs | ${busy.requests.average.toFixed(0)} | ${busy.latency.p50} | ${busy.latency.p99} | ${busy.latency.max} |`);
  say(`(the job under load took ${jobMs.toFixed(0)} ms; errors: ${idle.errors + busy.errors}, non-2xx: ${idle.non2xx + busy.non2xx})`);

  await app.close();
  await closePlatform(ctx);
  rmSync(dataDir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
