import type { Module } from '../module.js';
import { cliDialect, CLI_PATH } from '../dialects/cli/index.js';
import { codesRest } from '../dialects/rest/codes.js';
import { codePage, mountQrImages } from '../pages/code.js';
import { registerScanPage } from '../pages/scan.js';
import { createTemplate, setTemplateApi, templateByNum } from '../services/codes/index.js';

/** The demo template: the fields of seed 002's sample call (template M8, 8 values, 7th image, 8th file). */
export const DEMO_TEMPLATE = {
  num: 8,
  title: '资产信息',
  fields: [
    { name: '资产名称', type: 'single_line' },
    { name: '资产编号', type: 'single_line' },
    { name: '所在城市', type: 'single_line' },
    { name: '负责人', type: 'single_line' },
    { name: '联系电话', type: 'single_line' },
    { name: '管理部门', type: 'single_line' },
    { name: '现场照片', type: 'image' },
    { name: '说明文件', type: 'file' },
  ],
};

/** Dynamic QR codes: templates, records, the cli.im dialect, landing pages, signed QR image URLs. */
export const codesModule: Module = {
  name: 'codes',
  rest: (app, ctx) => codesRest(app, ctx),
  mount: async (app, ctx) => {
    registerScanPage('code', codePage);
    await app.register(cliDialect, { ctx });
    await app.register(async (sub) => mountQrImages(sub, ctx));
  },
  demo: async (ctx, seed) => {
    if (await templateByNum(ctx, seed.tenantId, DEMO_TEMPLATE.num)) return;
    const t = await createTemplate(ctx, { tenantId: seed.tenantId, ...DEMO_TEMPLATE });
    // open to the tenant's cli.im app (the seed's api_key CLb87ea759f877622c)
    await setTemplateApi(ctx, t.id, { enabled: true, ownKey: false });
  },
  banner: (ctx) => [`cli.im codes    ${ctx.config.publicUrl}${CLI_PATH}   (native API: /rest/v1/code-templates)`],
};
