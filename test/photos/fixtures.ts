/** Synthetic test images, generated here with sharp (librsvg): no photos are checked in. */
import assert from 'node:assert/strict';
import sharp from 'sharp';
import type { Ctx } from '../../src/core/context.js';
import type { Job } from '../../src/core/jobs/index.js';
import { JOB_KIND } from '../../src/services/photos/index.js';

const pattern = `<defs><pattern id="p" width="16" height="16" patternUnits="userSpaceOnUse"><rect width="16" height="16" fill="#7a9b6b"/><rect width="8" height="8" fill="#6a8b5b"/></pattern></defs>`;

/** A head-and-shoulders figure (skin, hair, shirt) on a textured green background. */
export function personSvg(w = 256, h = 256): Buffer {
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 256 256" preserveAspectRatio="none">
${pattern}<rect width="256" height="256" fill="url(#p)"/>
<path d="M 40 256 C 40 190, 80 170, 128 170 C 176 170, 216 190, 216 256 Z" fill="#2c4a8a"/>
<rect x="112" y="140" width="32" height="40" fill="#e0ac8c"/>
<ellipse cx="128" cy="105" rx="42" ry="52" fill="#e8b796"/>
<path d="M 86 100 C 86 40, 170 40, 170 100 C 165 70, 95 70, 86 100 Z" fill="#2b1d14"/>
<circle cx="112" cy="105" r="5" fill="#333"/><circle cx="144" cy="105" r="5" fill="#333"/>
<path d="M 112 132 Q 128 142 144 132" stroke="#a0524a" stroke-width="4" fill="none"/></svg>`);
}

/** The same background with a box and a disc: nothing person-shaped. */
export function noPersonSvg(): Buffer {
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256">${pattern}<rect width="256" height="256" fill="url(#p)"/>
<rect x="60" y="120" width="140" height="100" fill="#2c4a8a"/><circle cx="128" cy="70" r="30" fill="#d04040"/></svg>`);
}

/** A detailed scene (edges, text, gradients, stripes): ground truth for super-resolution. */
export function sceneSvg(w: number, h: number): Buffer {
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 128 128" preserveAspectRatio="none">
<defs><linearGradient id="g" x1="0" x2="1" y1="0" y2="1"><stop offset="0" stop-color="#f4e3c1"/><stop offset="1" stop-color="#6d8fb3"/></linearGradient></defs>
<rect width="128" height="128" fill="url(#g)"/>
<circle cx="40" cy="44" r="26" fill="#b8323a" stroke="#1d1d1d" stroke-width="3"/>
<rect x="70" y="14" width="46" height="34" fill="#2f6d3a" transform="rotate(12 93 31)"/>
<path d="M 8 120 L 40 80 L 70 118 Z" fill="#e0b040" stroke="#202020" stroke-width="2"/>
<g stroke="#222" stroke-width="2">${Array.from({ length: 8 }, (_, i) => `<line x1="${76 + i * 6}" y1="70" x2="${72 + i * 6}" y2="122"/>`).join('')}</g>
<text x="44" y="100" font-family="DejaVu Sans, sans-serif" font-size="14" font-weight="bold" fill="#101010">menhu 42</text></svg>`);
}

export const png = (svg: Buffer): Promise<Buffer> => sharp(svg).png().toBuffer();
export const jpeg = (svg: Buffer, quality = 90): Promise<Buffer> => sharp(svg).flatten({ background: '#fff' }).jpeg({ quality }).toBuffer();

export async function rawRgb(img: Buffer): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(img).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

export function psnr(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`sizes differ: ${a.length} vs ${b.length}`);
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  const mse = se / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** Rows of photo_jobs and blobs: a refused upload must leave both unchanged. */
export async function storedCounts(ctx: Ctx): Promise<{ jobs: number; blobs: number }> {
  return {
    jobs: Number((await ctx.db.kysely.selectFrom('photo_jobs').select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n),
    blobs: Number((await ctx.db.kysely.selectFrom('blobs').select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow()).n),
  };
}

/** Claims the next photo job and runs it to its end in this process (tests run no job runner). */
export async function runNextPhotoJob(ctx: Ctx): Promise<Job> {
  const job = await ctx.jobs.claim([JOB_KIND]);
  assert.ok(job, 'a photo job is waiting');
  await ctx.jobs.runOne(job);
  return job;
}
