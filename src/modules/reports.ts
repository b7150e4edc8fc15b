/**
 * Report verification (issue 3): the transparency log, the report registry, the MiningLamp
 * dialect, the verification page and the native endpoints for reports and the log.
 */
import { checkTlog, closeTlog, initTlog, logInfo } from '../core/tlog/index.js';
import { mountMiningLamp } from '../dialects/mininglamp/index.js';
import { mountTlogRoot, reportsRest } from '../dialects/rest/reports.js';
import type { Module } from '../module.js';
import { mountReportPages } from '../pages/report.js';
import { checkReports } from '../services/reports/index.js';

export const reportsModule: Module = {
  name: 'reports',
  async init(ctx) {
    await initTlog(ctx);
  },
  async rest(app, ctx) {
    await reportsRest(app, ctx);
  },
  async mount(app, ctx) {
    await mountMiningLamp(app, ctx);
    await mountTlogRoot(app, ctx);
    await app.register(async (sub) => mountReportPages(sub, ctx));
  },
  check: async (ctx) => [...(await checkTlog(ctx)), ...(await checkReports(ctx))],
  banner: (ctx) => [
    `reports         ${ctx.config.publicUrl}/api/v1/{generateqr,getqrlink,commitreport,updatereport,recallreport}/<report_id>   (native API: /rest/v1/reports)`,
    `transparency    ${ctx.config.publicUrl}/tlog/checkpoint   key ${logInfo(ctx).verifierKey}`,
  ],
  async close(ctx) {
    await closeTlog(ctx);
  },
};
