/**
 * Report verification (issue 3): the transparency log, the report registry, the MiningLamp
 * dialect, the verification page and the native endpoints for reports and the log.
 */
import { closeTlog, initTlog } from '../core/tlog/index.js';
import type { Module } from '../module.js';

export const reportsModule: Module = {
  name: 'reports',
  async init(ctx) {
    await initTlog(ctx);
  },
  async close(ctx) {
    await closeTlog(ctx);
  },
};
