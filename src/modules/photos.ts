import { fangtangDialect, FANGTANG_PREFIX } from '../dialects/fangtang/index.js';
import { photosRest } from '../dialects/rest/photos.js';
import type { Module } from '../module.js';
import { closePhotos, expireStalePhotoJobs, JOB_KIND, photoJobHandler } from '../services/photos/index.js';
import '../services/photos/schema.js';

import type { Ctx } from '../core/context.js';

const sweepers = new WeakMap<Ctx, NodeJS.Timeout>();

/** Photo restoration jobs (services/photos), the Fangtang dialect (seed 001) and native REST under /rest/v1/photo-jobs. */
export const photosModule: Module = {
  name: 'photos',
  init(ctx) {
    ctx.jobs.register(JOB_KIND, photoJobHandler(ctx));
    const t = setInterval(() => void expireStalePhotoJobs(ctx).catch((e) => ctx.log.error({ err: String(e) }, 'photo job expiry failed')), 60_000);
    t.unref();
    sweepers.set(ctx, t);
  },
  rest: (app, ctx) => photosRest(app, ctx),
  async mount(app, ctx) {
    await app.register(fangtangDialect, { prefix: FANGTANG_PREFIX, ctx });
  },
  banner(ctx) {
    const c = ctx.config.photos;
    return [
      `photos (Fangtang)  ${ctx.config.publicUrl}${FANGTANG_PREFIX}/photo/upload   sr ×${c.srScale}, at most ${c.maxPixels} pixels, ${c.concurrency} job(s) at once, colour ${c.colourModel ? 'on' : 'off (no model configured)'}`,
    ];
  },
  async close(ctx) {
    clearInterval(sweepers.get(ctx));
    sweepers.delete(ctx);
    await closePhotos(ctx);
  },
};
