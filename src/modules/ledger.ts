/** Ledger + Ulord: wallets, transfers, paid content; the Ulord dialect under /v1; native REST under /rest/v1/ledger. */
import type { Module } from '../module.js';
import { ledgerRest } from '../dialects/rest/ledger.js';
import { ulordDialect } from '../dialects/ulord/index.js';
import { closeWriter } from '../services/ledger/engine.js';
import { developerAccount, fund } from '../services/ledger/index.js';
import { getDeveloper } from '../services/accounts/index.js';
import '../services/ledger/schema.js';

export const DEMO_FUND_ULD = '1000';

export const ledgerModule: Module = {
  name: 'ledger',
  rest: (app, ctx) => ledgerRest(app, ctx),
  mount: async (app, ctx) => {
    await app.register(ulordDialect, { prefix: '/v1', ctx });
  },
  demo: async (ctx, seed) => {
    const admin = await getDeveloper(ctx, seed.adminId);
    if (!admin) return;
    await fund(ctx, await developerAccount(ctx, admin), DEMO_FUND_ULD, `demo-fund-${admin.id}`);
  },
  banner: (ctx) => [`Ulord ledger    ${ctx.config.publicUrl}/v1/transactions/…  (demo admin's developer account holds ${DEMO_FUND_ULD} ULD; fund more: menhu ledger fund <developer|appkey/wallet> <amount>)`],
  close: (ctx) => closeWriter(ctx),
};
