/** Usage and the request log (issue 8): retention sweeper, flush on close, native REST under /rest/v1/usage and /rest/v1/requests. */
import { usageRest } from '../dialects/rest/usage.js';
import type { Module } from '../module.js';
import { startUsage, stopUsage } from '../services/usage/index.js';

export const usageModule: Module = {
  name: 'usage',
  init: (ctx) => startUsage(ctx),
  rest: (app, ctx) => usageRest(app, ctx),
  banner: (ctx) => {
    const r = ctx.config.requestLog;
    return [`request log     ${ctx.config.publicUrl}/rest/v1/requests   kept ${r.days || '∞'} days, at most ${r.maxRows || '∞'} rows; usage aggregates ${r.usageDays || '∞'} days`];
  },
  close: (ctx) => stopUsage(ctx),
};
