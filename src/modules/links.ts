import type { Module } from '../module.js';
import { linksRest } from '../dialects/rest/links.js';
import { fastScan, mountScan } from '../pages/scan.js';
import { ensureLink, shortUrl, startLinks, stopLinks } from '../services/links/index.js';

/** Short links (/s/<code>), scans and analytics, QR images of links. */
export const linksModule: Module = {
  name: 'links',
  init: (ctx) => startLinks(ctx),
  rest: (app, ctx) => linksRest(app, ctx),
  mount: async (app, ctx) => {
    await app.register(async (sub) => mountScan(sub, ctx));
  },
  fast: (ctx) => fastScan(ctx),
  demo: async (ctx, seed) => {
    await ensureLink(ctx, { tenantId: seed.tenantId, kind: 'url', targetRef: 'demo', url: 'https://github.com/' });
  },
  banner: (ctx) => [`short links     ${shortUrl(ctx, '<code>')}   (native API: /rest/v1/links)`],
  close: (ctx) => stopLinks(ctx),
};
