/**
 * Report verification (issue 3): the transparency log, the report registry, the MiningLamp
 * dialect, the verification page and the native endpoints for reports and the log.
 */
import { closeTlog, initTlog } from '../core/tlog/index.js';
import { mountMiningLamp } from '../dialects/mininglamp/index.js';
import type { Module } from '../module.js';

export const reportsModule: Module = {
  name: 'reports',
  async init(ctx) {
    await initTlog(ctx);
  },
  async mount(app, ctx) {
    await mountMiningLamp(app, ctx);
  },
  async close(ctx) {
    await closeTlog(ctx);
  },
};
