import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/context.js';
import { createApp } from '../../src/core/credentials/apps.js';
import { cliSign } from '../../src/core/credentials/schemes.js';
import { seedDemo, DEMO } from '../../src/demo.js';
import { createTemplate, setTemplateApi, type Template } from '../../src/services/codes/index.js';
import { createTenant } from '../../src/services/accounts/index.js';
import { decodeBoth } from '../qr/decode.js';
import { http, jsonBody, startServer, type TestServer } from '../helpers.js';

const PATH = '/cli-open-platform-service/v1/dynamicQrcode/dynamicSingleCreate';
const U = 'https://cli-api.oss-cn-hangzhou-internal.aliyuncs.com/example/2023/1108/15/44/i9528fa4d7ba3-60fa-4ea2-b467-60fbb0c44621_source.jpg';
/** The seed's sample request, signature included (SPEC §2 vector). */
const SAMPLE = { template_num: 'M8', api_key: 'CLb87ea759f877622c', values: ['消防栓', 'A23154', '宁波市', '张成杰', '13023214212', '资产运营部', U, U], sign: 'a6bb0eb47c5bdd67bdfccbf0a0aec903' };

const ALL_FIELDS = [
  { name: '名称', type: 'single_line', required: true },
  { name: '说明', type: 'multi_line' },
  { name: '数量', type: 'number' },
  { name: '日期', type: 'date' },
  { name: '状态', type: 'single_choice', options: ['正常', '维修', '报废'] },
  { name: '标签', type: 'multi_choice', options: ['A', 'B', 'C'] },
  { name: '位置', type: 'location' },
  { name: '照片', type: 'image' },
  { name: '附件', type: 'file' },
  { name: '语音', type: 'audio' },
];
const GOOD = ['灭火器', '第一行\n第二行', '12.5', '2024-02-29', '2', '1,3', '{"address":"浙江省宁波市","lat":29.86089244498819,"log":121.54615961015224}', U, 'https://example.com/files/manual.pdf', ''];

let ipSeq = 0;
const nextIp = () => `198.51.100.${(ipSeq++ % 250) + 1}`;

describe('cli.im dynamicSingleCreate', () => {
  let s: TestServer;
  const clock = new ManualClock(Date.UTC(2026, 10, 23, 9, 0, 0));
  let t: Template;
  let key: string;
  let secret: string;
  let tenantId: number;

  /** A signed call from a fresh client address (so the per-IP limit does not interfere). */
  const call = (params: Record<string, unknown>, opts: { secret?: string; ip?: string; raw?: string; type?: string } = {}) =>
    http(`${s.url}${PATH}`, {
      method: 'POST',
      headers: { 'content-type': opts.type ?? 'application/json', 'x-forwarded-for': opts.ip ?? nextIp() },
      body: opts.raw ?? JSON.stringify({ ...params, sign: params.sign ?? cliSign(params, opts.secret ?? secret) }),
    });
  const records = async () => Number((await s.ctx.db.kysely.selectFrom('code_records').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

  before(async () => {
    s = await startServer({ clock, config: { trustProxy: true } });
    tenantId = Number((await createTenant(s.ctx, 'codes')).id);
    t = await createTemplate(s.ctx, { tenantId, title: '设备', fields: ALL_FIELDS });
    const api = await setTemplateApi(s.ctx, t.id, {});
    key = api.app!.key;
    secret = api.secret!;
  });
  after(() => s.close());

  it("answers the seed's sample request against the demo template, with a web_url that scans and a qrstyle_url image", async () => {
    await seedDemo(s.ctx);
    const r = await http(`${s.url}${PATH}`, jsonBody(SAMPLE, { 'x-forwarded-for': nextIp() }));
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json), ['data', 'code', 'message']);
    assert.equal(r.json.code, 0, r.text);
    assert.equal(r.json.message, '操作成功');
    assert.match(r.json.data.web_url, new RegExp(`^${s.url}/s/[2-9A-HJ-NP-Za-km-np-z]{8}$`));
    const img = await fetch(r.json.data.qrstyle_url);
    assert.equal(img.status, 200);
    assert.equal(img.headers.get('content-type'), 'image/png');
    assert.deepEqual(await decodeBoth(Buffer.from(await img.arrayBuffer())), { jsqr: r.json.data.web_url, zxing: r.json.data.web_url });
    const page = await http(r.json.data.web_url);
    assert.equal(page.status, 200);
    for (const v of ['消防栓', 'A23154', '宁波市', '张成杰', '13023214212', '资产运营部']) assert.ok(page.text.includes(v), v);
    assert.ok(page.text.includes(`<img class="pic" src="${U}"`));
    assert.equal(DEMO.cli.key, SAMPLE.api_key);
  });

  it('validates every field type and stores normalised values', async () => {
    const r = await call({ template_num: t.templateNum, api_key: key, values: GOOD });
    assert.equal(r.json.code, 0, r.text);
    const code = r.json.data.web_url.split('/').pop();
    const rec = await s.ctx.db.kysely.selectFrom('code_records').innerJoin('links', 'links.id', 'code_records.link_id').select('values').where('links.code', '=', code).executeTakeFirstOrThrow();
    const v = JSON.parse(rec.values);
    assert.equal(v[4], '2');
    assert.equal(v[5], '1,3');
    assert.deepEqual(JSON.parse(v[6]), { address: '浙江省宁波市', lat: 29.86089244498819, log: 121.54615961015224 });
    // numbers for choices, location as an object, values as a JSON string, are accepted too
    const alt = [...GOOD];
    (alt as unknown[])[4] = 1;
    (alt as unknown[])[0] = 13023214212; // a number for a text field
    (alt as unknown[])[6] = { address: '宁波' };
    assert.equal((await call({ template_num: t.templateNum, api_key: key, values: alt })).json.code, 0);
    assert.equal((await call({ template_num: t.templateNum, api_key: key, values: JSON.stringify(GOOD) })).json.code, 0);
  });

  it('concurrent calls are committed together, each with its own code', async () => {
    const before = await records();
    const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => call({ template_num: t.templateNum, api_key: key, values: [`并发${i}`, ...GOOD.slice(1)] })));
    assert.deepEqual([...new Set(rs.map((r) => r.json.code))], [0]);
    assert.equal(new Set(rs.map((r) => r.json.data.web_url)).size, 30);
    assert.equal(await records(), before + 30);
    const pages = await Promise.all(rs.slice(0, 3).map((r) => http(r.json.data.web_url)));
    pages.forEach((p, i) => assert.ok(p.text.includes(`并发${i}`)));
  });

  it('refuses bad values with 40001 naming the field, and stores nothing', async () => {
    const before = await records();
    const bad = async (i: number, v: unknown, re: RegExp) => {
      const vals: unknown[] = [...GOOD];
      vals[i] = v;
      const r = await call({ template_num: t.templateNum, api_key: key, values: vals });
      assert.equal(r.status, 200);
      assert.equal(r.json.code, 40001, `${i} ${JSON.stringify(v)}: ${r.text}`);
      assert.ok(r.json.message.startsWith('参数错误: '), r.json.message);
      assert.ok(r.json.message.includes(`values[${i}]`) && r.json.message.includes(ALL_FIELDS[i].name), r.json.message);
      assert.match(r.json.message, re);
    };
    await bad(0, '', /required/);
    await bad(0, 'x'.repeat(501), /at most 500/);
    await bad(0, 'a\nb', /line breaks/);
    await bad(2, '12abc', /not a number/);
    await bad(3, '2023-02-30', /YYYY-MM-DD/);
    await bad(3, '2023/02/01', /YYYY-MM-DD/);
    await bad(4, '4', /1 to 3/);
    await bad(4, '0', /1 to 3/);
    await bad(5, '1,4', /1 to 3/);
    await bad(5, '1,1', /twice/);
    await bad(6, '{address:', /JSON/);
    await bad(6, '{"lat":1}', /address/);
    await bad(6, '{"address":"x","lat":91,"log":1}', /lat/);
    await bad(7, 'javascript:alert(1)', /http\(s\) URL/);
    await bad(7, 'data:image/png;base64,AAAA', /http\(s\) URL/);
    await bad(8, 'ftp://example.com/x', /http\(s\) URL/);
    await bad(9, 'https://example.com/a.mp3', /audio and video/);
    await bad(1, ['not', 'a string'], /must be a string/);
    const r = await call({ template_num: t.templateNum, api_key: key, values: GOOD.slice(0, 9) });
    assert.equal(r.json.code, 40001);
    assert.match(r.json.message, /values has 9 values; template has 10 fields/);
    assert.equal(await records(), before, 'nothing stored');
  });

  it('maps format, parameter and sign errors to 400 / 40001 / 40004', async () => {
    const before = await records();
    const p = { template_num: t.templateNum, api_key: key, values: GOOD };
    const expect = async (r: Awaited<ReturnType<typeof call>>, code: number, re: RegExp) => {
      assert.equal(r.status, 200);
      assert.equal(r.json.code, code, r.text);
      assert.match(r.json.message, re);
    };
    await expect(await call(p, { raw: '{not json' }), 400, /^请求的数据格式不符!: the body is not valid JSON/);
    await expect(await call(p, { raw: '[1,2]' }), 400, /JSON object/);
    await expect(await call(p, { raw: 'template_num=M1', type: 'application/x-www-form-urlencoded' }), 400, /application\/json/);
    await expect(await call({ ...p, values: 5 }), 400, /values must be an array/);
    await expect(await call({ ...p, template_num: 8 }), 400, /template_num must be a string/);
    await expect(await call({ template_num: t.templateNum, values: GOOD, api_key: '' }), 40001, /api_key is required/);
    await expect(await call({ ...p, api_key: 'CLnope' }), 40001, /unknown key/);
    await expect(await call({ ...p, template_num: 'M999' }), 40001, /template_num M999/);
    await expect(await call({ ...p, template_num: 'X1' }), 40001, /template_num/);
    await expect(await call(p, { secret: 'wrong' }), 40004, /^签名错误: sign does not verify/);
    await expect(await call({ ...p, sign: 'a'.repeat(32) }), 40004, /sign/);
    const unsigned = { ...p, sign: '' };
    await expect(await call(unsigned, { raw: JSON.stringify(unsigned) }), 40004, /sign is required/);
    // a signed request whose values are changed afterwards
    const signed = { ...p, sign: cliSign(p, secret) };
    await expect(await call(signed, { raw: JSON.stringify({ ...signed, values: [...GOOD.slice(0, 9), 'x'] }) }), 40004, /sign/);
    assert.equal(await records(), before);
  });

  it('refuses a disabled API, another template\'s key and an address off the allow-list', async () => {
    const p = { template_num: t.templateNum, api_key: key, values: GOOD };
    await setTemplateApi(s.ctx, t.id, { enabled: false });
    let r = await call(p);
    assert.equal(r.json.code, 40001);
    assert.match(r.json.message, /API of template M\d+ is not enabled/);
    await setTemplateApi(s.ctx, t.id, { enabled: true, ipAllow: ['203.0.113.0/24'] });
    r = await call(p, { ip: '198.51.100.77' });
    assert.equal(r.json.code, 40001);
    assert.match(r.json.message, /allow-list/);
    assert.equal((await call(p, { ip: '203.0.113.5' })).json.code, 0);
    await setTemplateApi(s.ctx, t.id, { ipAllow: [] });
    // a key bound to another template, and a tenant-wide key, on this template
    const t2 = await createTemplate(s.ctx, { tenantId, title: 'other', fields: [{ name: 'a', type: 'single_line' }] });
    const k2 = await setTemplateApi(s.ctx, t2.id, {});
    r = await call({ ...p, api_key: k2.app!.key }, { secret: k2.secret! });
    assert.equal(r.json.code, 40001);
    assert.match(r.json.message, /not the key of template/);
    const wide = await createApp(s.ctx, { tenantId, name: 'wide', services: ['cli'] });
    r = await call({ ...p, api_key: wide.key }, { secret: wide.secret });
    assert.equal(r.json.code, 40001, 'a template with its own key takes only that key');
    // another tenant's key cannot reach this tenant's template numbers
    const other = Number((await createTenant(s.ctx, 'other')).id);
    const foreign = await createApp(s.ctx, { tenantId: other, name: 'foreign', services: ['cli'] });
    r = await call({ ...p, api_key: foreign.key }, { secret: foreign.secret });
    assert.equal(r.json.code, 40001);
    assert.match(r.json.message, /not a template of this account/);
  });

  it('allows 20 requests per second per client address, then answers 40000', async () => {
    const ip = '192.0.2.44';
    const p = { template_num: t.templateNum, api_key: key, values: GOOD };
    if (process.env.MENHU_TEST_PG) {
      // Redis windows follow the wall clock: a burst of 60 at once must see refusals (it spans at most two windows on a busy machine)
      const codes = (await Promise.all(Array.from({ length: 60 }, () => call(p, { ip })))).map((r) => r.json.code);
      const refused = codes.filter((c) => c === 40000).length;
      assert.ok(refused >= 1 && codes.filter((c) => c === 0).length >= 20, codes.join(','));
    } else {
      // in-process limits follow the platform clock, which this test holds still: exact counts
      const codes: number[] = [];
      for (let i = 0; i < 21; i++) codes.push((await call(p, { ip, raw: i % 2 ? '{bad' : undefined })).json.code);
      assert.equal(codes.filter((c) => c === 40000).length, 1, codes.join(','));
      assert.equal(codes[20], 40000);
      const r = await call(p, { ip });
      assert.equal(r.json.code, 40000);
      assert.match(r.json.message, /^系统繁忙,请稍后再试: more than 20 requests per second/);
      clock.advance(1001);
      assert.equal((await call(p, { ip })).json.code, 0);
    }
    assert.equal((await call(p, { ip: '192.0.2.45' })).json.code, 0, 'other addresses are not affected');
  });

  it('qrstyle_url is signed and expires after one day with 410', async () => {
    const r = await call({ template_num: t.templateNum, api_key: key, values: GOOD });
    const u = new URL(r.json.data.qrstyle_url);
    assert.equal(u.origin, s.url);
    assert.equal((await fetch(u)).status, 200);
    const forged = new URL(u);
    forged.searchParams.set('e', String(Number(u.searchParams.get('e')) + 86400));
    assert.equal((await fetch(forged)).status, 403, 'a changed expiry breaks the signature');
    assert.equal((await fetch(`${s.url}${u.pathname}`)).status, 403);
    clock.advance(24 * 3600 * 1000 + 1000);
    const gone = await http(u.toString());
    assert.equal(gone.status, 410);
    assert.match(gone.text, /expired at \d{4}-\d\d-\d\dT/);
    assert.match(gone.text, /ask the API for a new image link/);
    // the code itself still works
    assert.equal((await http(r.json.data.web_url)).status, 200);
  });
});
