import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/context.js';
import { createApp } from '../../src/core/credentials/apps.js';
import { DomainError } from '../../src/core/errors.js';
import { closePlatform, createPlatform } from '../../src/platform.js';
import { createTenant } from '../../src/services/accounts/index.js';
import {
  classifyUa,
  CODE_RE,
  ensureLink,
  findLinkByTarget,
  flushScans,
  invalidateLink,
  ipPrefix,
  linkStats,
  recordScan,
  referrerHost,
  resolveLink,
  shortUrl,
} from '../../src/services/links/index.js';
import { decodeBoth } from '../qr/decode.js';
import { http, jsonBody, onPg, startServer, type TestServer } from '../helpers.js';

const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1';
const ANDROID = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36';
const WIN = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36';
const WECHAT = 'Mozilla/5.0 (Linux; Android 13; V2055A Build/TP1A; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/107 Mobile Safari/537.36 MicroMessenger/8.0.40';
const T0 = Date.UTC(2026, 10, 23, 10, 0, 0);

describe('scan classification', () => {
  it('classifies devices, OS and bots', () => {
    assert.deepEqual(classifyUa(IPHONE), { device: 'mobile', os: 'ios', bot: false });
    assert.deepEqual(classifyUa(ANDROID), { device: 'mobile', os: 'android', bot: false });
    assert.deepEqual(classifyUa(WECHAT), { device: 'mobile', os: 'android', bot: false });
    assert.deepEqual(classifyUa(WIN), { device: 'desktop', os: 'windows', bot: false });
    assert.deepEqual(classifyUa('Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X)'), { device: 'tablet', os: 'ios', bot: false });
    for (const ua of [
      'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
      'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
      'facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)',
      'Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)',
      'WhatsApp/2.23.20.0 A',
      'TelegramBot (like TwitterBot)',
      'Twitterbot/1.0',
      'curl/8.4.0',
      'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0 Safari/537.36',
      '',
      undefined,
    ]) {
      assert.equal(classifyUa(ua).bot, true, String(ua));
      assert.equal(classifyUa(ua).device, 'bot');
    }
  });

  it('keeps only an address prefix and the referrer host', () => {
    assert.equal(ipPrefix('203.0.113.77'), '203.0.113.0/24');
    assert.equal(ipPrefix('::ffff:198.51.100.9'), '198.51.100.0/24');
    assert.equal(ipPrefix('2001:db8:abcd:12::1'), '2001:db8:abcd::/48');
    assert.equal(ipPrefix('2001:db8::1'), '2001:db8:0::/48');
    assert.equal(ipPrefix('::1'), '0:0:0::/48');
    assert.equal(referrerHost('https://WWW.Example.com/path?q=1'), 'www.example.com');
    assert.equal(referrerHost('javascript:alert(1)'), null);
    assert.equal(referrerHost('not a url'), null);
  });
});

describe('links service', () => {
  let s: TestServer;
  let tenantId: number;
  before(async () => {
    s = await startServer();
    tenantId = Number((await createTenant(s.ctx, 'links-a')).id);
  });
  after(() => s.close());

  it('ensureLink is idempotent and safe under concurrency', async () => {
    const results = await Promise.all(Array.from({ length: 20 }, () => ensureLink(s.ctx, { tenantId, kind: 'code', targetRef: 'rec-1' })));
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.equal(new Set(results.map((r) => r.link.code)).size, 1);
    const { link } = results[0];
    assert.match(link.code, CODE_RE);
    assert.equal(shortUrl(s.ctx, link.code), `${s.url}/s/${link.code}`);
    assert.deepEqual(await findLinkByTarget(s.ctx, tenantId, 'code', 'rec-1'), link);
    const other = await ensureLink(s.ctx, { tenantId, kind: 'report', targetRef: 'rec-1' });
    assert.notEqual(other.link.code, link.code);
    assert.equal(await findLinkByTarget(s.ctx, tenantId, 'code', 'nope'), null);
  });

  it('ensureLink runs inside a caller transaction', async () => {
    const r = await s.ctx.db.tx(async (trx) => {
      const a = await ensureLink(s.ctx, { tenantId, kind: 'report', targetRef: 'in-tx' }, trx);
      const b = await ensureLink(s.ctx, { tenantId, kind: 'report', targetRef: 'in-tx' }, trx);
      return [a, b];
    });
    assert.equal(r[0].created, true);
    assert.equal(r[1].created, false);
    assert.equal(r[0].link.code, r[1].link.code);
    // a rolled-back transaction leaves no link
    await assert.rejects(
      s.ctx.db.tx(async (trx) => {
        await ensureLink(s.ctx, { tenantId, kind: 'report', targetRef: 'rolled-back' }, trx);
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal(await findLinkByTarget(s.ctx, tenantId, 'report', 'rolled-back'), null);
  });

  it('refuses bad input naming the field', async () => {
    const refused = (p: Promise<unknown>, field: string) => assert.rejects(p, (e: unknown) => e instanceof DomainError && e.code === 'VALIDATION' && e.field === field);
    await refused(ensureLink(s.ctx, { tenantId, kind: 'url', targetRef: 'x', url: 'javascript:alert(1)' }), 'url');
    await refused(ensureLink(s.ctx, { tenantId, kind: 'url', targetRef: 'x' }), 'url');
    await refused(ensureLink(s.ctx, { tenantId, kind: 'nope' as 'url', targetRef: 'x' }), 'kind');
    await refused(ensureLink(s.ctx, { tenantId, kind: 'code', targetRef: '' }), 'target_ref');
  });

  it('/s/<code> redirects url links, records the scan, and answers unknown codes with a 404 page', async () => {
    const { link } = await ensureLink(s.ctx, { tenantId, kind: 'url', targetRef: 'r1', url: 'https://example.com/landing?a=1' });
    const r = await fetch(`${s.url}/s/${link.code}`, { redirect: 'manual', headers: { 'user-agent': IPHONE, referer: 'https://news.example.org/x' } });
    assert.equal(r.status, 302);
    assert.equal(r.headers.get('location'), 'https://example.com/landing?a=1');
    assert.equal(r.headers.get('cache-control'), 'no-store');
    const head = await fetch(`${s.url}/s/${link.code}`, { method: 'HEAD', redirect: 'manual' });
    assert.equal(head.status, 302);
    for (const bad of ['zzzzzzzz', 'a', '<script>', '..%2F..%2Fetc', 'x'.repeat(400)]) {
      const nf = await http(`${s.url}/s/${encodeURIComponent(bad)}`);
      assert.equal(nf.status, 404, bad);
      assert.match(nf.headers.get('content-type') ?? '', /text\/html/);
      assert.ok(!nf.text.includes('<script>'));
    }
    await flushScans(s.ctx);
    const rows = await s.ctx.db.kysely.selectFrom('link_scans').selectAll().where('link_id', '=', link.id).execute();
    assert.equal(rows.length, 1, 'GET counted, HEAD not');
    assert.equal(rows[0].device, 'mobile');
    assert.equal(rows[0].os, 'ios');
    assert.equal(rows[0].referrer_host, 'news.example.org');
    assert.equal(rows[0].ip_prefix, '127.0.0.0/24');
    assert.match(rows[0].visitor, /^[0-9a-f]{64}$/);
    assert.equal(Number(rows[0].bot), 0);
  });


  it('a cached code is answered before the framework with the same bytes, recorded and counted alike', async () => {
    const { link } = await ensureLink(s.ctx, { tenantId, kind: 'url', targetRef: 'fast-1', url: 'https://example.com/fast?q=%E4%BD%A0' });
    invalidateLink(s.ctx, link.code);
    // one server's two paths (in the cluster run s.url alternates servers; this is the first one)
    const direct = `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}`;
    // the first scan resolves through the route (database), the second comes from the cache
    const answers = [];
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${direct}/s/${link.code}?utm=${i}`, { redirect: 'manual', headers: { 'user-agent': ANDROID, referer: 'https://a.example/' } });
      await r.arrayBuffer();
      const { date: _d, ...headers } = Object.fromEntries(r.headers);
      answers.push({ status: r.status, headers });
    }
    assert.deepEqual(answers[1], answers[0]);
    assert.equal(answers[0].status, 302);
    assert.equal(answers[0].headers.location, 'https://example.com/fast?q=%E4%BD%A0');
    await flushScans(s.ctx);
    const rows = await s.ctx.db.kysely.selectFrom('link_scans').selectAll().where('link_id', '=', link.id).execute();
    assert.equal(rows.length, 2, 'both scans recorded');
    assert.deepEqual(rows.map((x) => [x.device, x.os, x.referrer_host, x.ip_prefix]), [
      ['mobile', 'android', 'a.example', '127.0.0.0/24'],
      ['mobile', 'android', 'a.example', '127.0.0.0/24'],
    ]);
    const metrics = await (await fetch(`${direct}/metrics`)).text();
    const count = Number(/menhu_http_requests_total\{method="GET",route="\/s\/:code",status="302"\} (\d+)/.exec(metrics)?.[1]);
    assert.ok(count >= 2, `scans counted in /metrics (${count})`);
    // a disabled link stops at once: the cache entry goes with the invalidation, and the route answers 404
    await s.ctx.db.kysely.updateTable('links').set({ disabled: 1 }).where('id', '=', link.id).execute();
    invalidateLink(s.ctx, link.code);
    assert.equal((await fetch(`${direct}/s/${link.code}`, { redirect: 'manual' })).status, 404);
  });
  it('batches scans: 500 buffered events flush without waiting for the timer, and close flushes the rest', async () => {
    const { link } = await ensureLink(s.ctx, { tenantId, kind: 'url', targetRef: 'batch', url: 'https://example.com/b' });
    for (let i = 0; i < 1203; i++) recordScan(s.ctx, link, { ua: ANDROID, ip: `10.0.${i % 200}.${i % 7}` });
    await flushScans(s.ctx);
    const n = await s.ctx.db.kysely.selectFrom('link_scans').select((eb) => eb.fn.countAll<number>().as('n')).where('link_id', '=', link.id).executeTakeFirstOrThrow();
    assert.equal(Number(n.n), 1203);
  });
});

describe('link cache invalidation', () => {
  it('an edit reaches the next scan on this server at once and on a second server (Redis: within 1 s; without: after the TTL)', async () => {
    const clock = new ManualClock(T0);
    const s = await startServer({ clock });
    // a second server process on the same database (and Redis, when configured)
    const ctx2 = await createPlatform({ ...s.config }, { clock });
    try {
      const tenantId = Number((await createTenant(s.ctx, 'inv')).id);
      const { link } = await ensureLink(s.ctx, { tenantId, kind: 'url', targetRef: 'inv', url: 'https://example.com/one' });
      assert.equal((await resolveLink(s.ctx, link.code))?.url, 'https://example.com/one');
      assert.equal((await resolveLink(ctx2, link.code))?.url, 'https://example.com/one');
      await s.ctx.db.kysely.updateTable('links').set({ url: 'https://example.com/two' }).where('id', '=', link.id).execute();
      invalidateLink(s.ctx, link.code);
      assert.equal((await resolveLink(s.ctx, link.code))?.url, 'https://example.com/two');
      if (onPg) {
        const t = Date.now();
        while ((await resolveLink(ctx2, link.code))?.url !== 'https://example.com/two') {
          assert.ok(Date.now() - t < 1000, 'second server saw the edit within 1 s');
          await new Promise((r) => setTimeout(r, 20));
        }
      } else {
        assert.equal((await resolveLink(ctx2, link.code))?.url, 'https://example.com/one', 'no Redis: the other process keeps its entry');
        clock.advance(60_001);
        assert.equal((await resolveLink(ctx2, link.code))?.url, 'https://example.com/two', '… until its TTL');
      }
    } finally {
      await closePlatform(ctx2);
      await s.close();
    }
  });
});

describe('links native REST and analytics', () => {
  let s: TestServer;
  const clock = new ManualClock(T0);
  let auth: Record<string, string>;
  let otherAuth: Record<string, string>;
  let tenantId: number;
  before(async () => {
    s = await startServer({ clock });
    tenantId = Number((await createTenant(s.ctx, 'rest-a')).id);
    const a = await createApp(s.ctx, { tenantId, name: 'a', services: ['native'] });
    auth = { authorization: `Bearer ${a.key}.${a.secret}` };
    const t2 = Number((await createTenant(s.ctx, 'rest-b')).id);
    const b = await createApp(s.ctx, { tenantId: t2, name: 'b', services: ['native'] });
    otherAuth = { authorization: `Bearer ${b.key}.${b.secret}` };
  });
  after(() => s.close());

  it('creates (idempotently), lists, gets, disables and re-targets links', async () => {
    const c1 = await http(`${s.url}/rest/v1/links`, jsonBody({ url: 'https://example.com/p' }, auth));
    assert.equal(c1.status, 201, c1.text);
    assert.equal(c1.json.short_url, `${s.url}/s/${c1.json.code}`);
    const c2 = await http(`${s.url}/rest/v1/links`, jsonBody({ url: 'https://example.com/p' }, auth));
    assert.equal(c2.status, 200);
    assert.equal(c2.json.code, c1.json.code);
    const bad = await http(`${s.url}/rest/v1/links`, jsonBody({ url: 'data:text/html,hi' }, auth));
    assert.equal(bad.status, 400);
    assert.equal(bad.json.field, 'url');
    const list = await http(`${s.url}/rest/v1/links?kind=url`, { headers: auth });
    assert.equal(list.status, 200);
    assert.ok(list.json.some((l: { code: string }) => l.code === c1.json.code));
    assert.equal((await http(`${s.url}/rest/v1/links/${c1.json.code}`, { headers: otherAuth })).status, 404, 'other tenants do not see it');
    assert.equal((await http(`${s.url}/rest/v1/links/${c1.json.code}`)).status, 401);

    const moved = await http(`${s.url}/rest/v1/links/${c1.json.code}`, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ url: 'https://example.com/q' }) });
    assert.equal(moved.status, 200, moved.text);
    assert.equal((await fetch(`${s.url}/s/${c1.json.code}`, { redirect: 'manual' })).headers.get('location'), 'https://example.com/q');
    const off = await http(`${s.url}/rest/v1/links/${c1.json.code}`, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ disabled: true }) });
    assert.equal(off.json.disabled, true);
    assert.equal((await fetch(`${s.url}/s/${c1.json.code}`, { redirect: 'manual' })).status, 404, 'disabled at the next scan');
    await http(`${s.url}/rest/v1/links/${c1.json.code}`, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ disabled: false }) });
    assert.equal((await fetch(`${s.url}/s/${c1.json.code}`, { redirect: 'manual' })).status, 302);
  });

  it('documents its routes in the OpenAPI document', async () => {
    const doc = await http(`${s.url}/rest/v1/openapi.json`);
    for (const p of ['/rest/v1/links', '/rest/v1/links/{code}', '/rest/v1/links/{code}/qr', '/rest/v1/links/{code}/stats', '/rest/v1/links-stats', '/rest/v1/code-templates/{id}/records']) {
      assert.ok(doc.json.paths[p], p);
    }
  });

  it('serves the QR of a link as PNG and SVG, styled', async () => {
    const c = await http(`${s.url}/rest/v1/links`, jsonBody({ url: 'https://example.com/qr' }, auth));
    const png = await fetch(`${s.url}/rest/v1/links/${c.json.code}/qr?scale=4&fg=%23102030&ecl=Q`, { headers: auth });
    assert.equal(png.status, 200);
    assert.equal(png.headers.get('content-type'), 'image/png');
    assert.deepEqual(await decodeBoth(Buffer.from(await png.arrayBuffer())), { jsqr: c.json.short_url, zxing: c.json.short_url });
    const svg = await fetch(`${s.url}/rest/v1/links/${c.json.code}/qr?format=svg`, { headers: auth });
    assert.match(svg.headers.get('content-type') ?? '', /image\/svg\+xml/);
    assert.deepEqual(await decodeBoth(await svg.text()), { jsqr: c.json.short_url, zxing: c.json.short_url });
    const bad = await http(`${s.url}/rest/v1/links/${c.json.code}/qr?fg=red`, { headers: auth });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.field, 'fg');
    assert.equal((await http(`${s.url}/rest/v1/links/${c.json.code}/qr?size=9`, { headers: auth })).status, 400, 'unknown parameter');
  });

  it('counts scans over time, unique visitors, devices, OS, referrers; bots apart', async () => {
    const { link } = await ensureLink(s.ctx, { tenantId, kind: 'url', targetRef: 'stats', url: 'https://example.com/s' });
    const { link: l2 } = await ensureLink(s.ctx, { tenantId, kind: 'url', targetRef: 'stats2', url: 'https://example.com/s2' });
    const at = (h: number) => clock.set(T0 + h * 3_600_000);
    at(0);
    recordScan(s.ctx, link, { ua: IPHONE, ip: '203.0.113.1', referrer: 'https://t.co/x' });
    recordScan(s.ctx, link, { ua: IPHONE, ip: '203.0.113.1' }); // same visitor, same day
    recordScan(s.ctx, link, { ua: ANDROID, ip: '203.0.113.2', referrer: 'https://t.co/y' });
    recordScan(s.ctx, link, { ua: 'facebookexternalhit/1.1', ip: '66.220.149.1' });
    at(1);
    recordScan(s.ctx, link, { ua: WIN, ip: '198.51.100.7', referrer: 'https://mail.example.net/' });
    recordScan(s.ctx, link, { ua: 'curl/8.0', ip: '198.51.100.8' });
    at(25); // next day: the same address is a new visitor-day
    recordScan(s.ctx, link, { ua: IPHONE, ip: '203.0.113.1' });
    recordScan(s.ctx, l2, { ua: IPHONE, ip: '203.0.113.9' });
    await flushScans(s.ctx);

    const hourly = await linkStats(s.ctx, { tenantId, linkIds: [link.id] }, { from: T0, to: T0 + 48 * 3_600_000, bucket: 'hour' });
    assert.equal(hourly.scans, 5);
    assert.equal(hourly.bots, 2);
    assert.equal(hourly.unique_visitors, 4);
    assert.deepEqual(hourly.series, [
      { t: T0, scans: 3, unique_visitors: 2, bots: 1 },
      { t: T0 + 3_600_000, scans: 1, unique_visitors: 1, bots: 1 },
      { t: T0 + 25 * 3_600_000, scans: 1, unique_visitors: 1, bots: 0 },
    ]);
    assert.deepEqual(hourly.devices, { mobile: 4, desktop: 1 });
    assert.deepEqual(hourly.os, { ios: 3, android: 1, windows: 1 });
    assert.deepEqual(hourly.referrers, [
      { host: 't.co', scans: 2 },
      { host: 'mail.example.net', scans: 1 },
    ]);
    at(30);
    const r = await http(`${s.url}/rest/v1/links/${link.code}/stats?bucket=day&from=${T0 - 86_400_000}`, { headers: auth });
    assert.equal(r.status, 200, r.text);
    const day = Math.floor(T0 / 86_400_000) * 86_400_000;
    assert.deepEqual(
      r.json.series.map((x: { t: number; scans: number }) => [x.t, x.scans]),
      [
        [day, 4],
        [day + 86_400_000, 1],
      ],
    );
    const tenant = await http(`${s.url}/rest/v1/links-stats?from=${T0}&to=${T0 + 48 * 3_600_000}`, { headers: auth });
    assert.equal(tenant.status, 200);
    assert.ok(tenant.json.scans >= 6, 'both links of the tenant');
    const other = await http(`${s.url}/rest/v1/links-stats?from=${T0}&to=${T0 + 48 * 3_600_000}`, { headers: otherAuth });
    assert.equal(other.json.scans, 0, 'tenant isolation');
    assert.equal((await http(`${s.url}/rest/v1/links-stats?tenant_id=${tenantId}`, { headers: otherAuth })).status, 403);
    assert.equal((await http(`${s.url}/rest/v1/links/${link.code}/stats?bucket=week`, { headers: auth })).status, 400);
    assert.equal((await http(`${s.url}/rest/v1/links/${link.code}/stats?bucket=hour&from=0`, { headers: auth })).status, 400, 'too many buckets');
  });
});
