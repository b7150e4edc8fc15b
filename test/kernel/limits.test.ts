/**
 * Rate limits and nonces: in-process fixed windows; Redis shared by two Limits instances (when
 * REDIS_URL is set: the --pg run); Redis unreachable → in-process fallback, logged once, requests
 * still served.
 */
import assert from 'node:assert/strict';
import { inCluster } from '../cluster.js';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { MemoryLimits, RedisLimits } from '../../src/core/limits/index.js';
import { bearer, captureLogs, http, startServer, tenantWithApp, type TestServer } from '../helpers.js';

const REDIS_URL = process.env.REDIS_URL ?? '';

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('in-process limits', () => {
  it('counts a fixed window per key', async () => {
    let t = 1_000_000;
    const l = new MemoryLimits(() => t);
    try {
      assert.deepEqual(await l.hit('k', 3, 1000), { allowed: true, remaining: 2, resetMs: 1000 });
      await l.hit('k', 3, 1000);
      assert.equal((await l.hit('k', 3, 1000)).remaining, 0);
      t += 400;
      assert.deepEqual(await l.hit('k', 3, 1000), { allowed: false, remaining: 0, resetMs: 600 });
      assert.equal((await l.hit('other', 3, 1000)).allowed, true, 'keys are independent');
      assert.deepEqual(await l.count('k', 1000), { n: 4, resetMs: 600 }, 'count peeks without a hit');
      assert.deepEqual(await l.count('k', 1000), { n: 4, resetMs: 600 });
      assert.deepEqual(await l.count('unseen', 1000), { n: 0, resetMs: 1000 });
      t += 599;
      assert.equal((await l.hit('k', 3, 1000)).allowed, false);
      t += 1;
      assert.deepEqual(await l.hit('k', 3, 1000), { allowed: true, remaining: 2, resetMs: 1000 });
      l.sweep();
      assert.equal(l.mode(), 'memory');
    } finally {
      await l.close();
    }
  });

  it('remembers nonces for at least their ttl and at most 1.5 × ttl', async () => {
    let t = 0;
    const l = new MemoryLimits(() => t);
    try {
      // one nonce used at the start of a generation, one just before the next starts
      assert.equal(await l.firstUse('n1', 600_000), true);
      assert.equal(await l.firstUse('n1', 600_000), false);
      t = 299_999;
      assert.equal(await l.firstUse('n2', 600_000), true);
      t = 599_999;
      l.sweep();
      assert.equal(await l.firstUse('n1', 600_000), false);
      t = 899_998;
      assert.equal(await l.firstUse('n2', 600_000), false, 'n2 is still within its ttl');
      t = 900_000;
      assert.equal(await l.firstUse('n1', 600_000), true, 'n1 is forgotten by 1.5 × ttl');
      assert.equal(await l.firstUse('n2', 600_000), true, 'n2 too (its ttl ended at 899,999)');
    } finally {
      await l.close();
    }
  });

  it('keeps memory bounded under a steady stream of nonces, without per-nonce sweeping', async () => {
    let t = 0;
    const l = new MemoryLimits(() => t);
    try {
      // 100 nonces per simulated second for 10 ttl-lengths (ttl 60 s): at most 1.5 × ttl of them stay
      let most = 0;
      for (let s = 0; s < 600; s++) {
        for (let i = 0; i < 100; i++) assert.equal(await l.firstUse(`a:${s}:${i}`, 60_000), true);
        t += 1000;
        if (s % 10 === 0) l.sweep();
        most = Math.max(most, l.nonceCount);
        // a nonce from within the last ttl is always refused
        if (s >= 59) assert.equal(await l.firstUse(`a:${s - 59}:7`, 60_000), false);
      }
      assert.ok(most <= 90 * 100 + 100, `at most ~1.5 × ttl of nonces remembered (${most})`);
      assert.ok(most >= 60 * 100, `at least ttl of nonces remembered (${most})`);
      // after a long quiet spell everything is forgotten at once
      t += 3_600_000;
      l.sweep();
      assert.equal(l.nonceCount, 0);
    } finally {
      await l.close();
    }
  });
});

describe('Redis limits shared by two instances', { skip: REDIS_URL ? false : 'REDIS_URL is not set (runs in the --pg suite)' }, () => {
  const prefix = `menhu-test:${randomBytes(6).toString('hex')}:`;
  const log = pino({ level: 'silent' });
  let a: RedisLimits;
  let b: RedisLimits;
  before(async () => {
    a = new RedisLimits(REDIS_URL, log, Date.now, prefix);
    b = new RedisLimits(REDIS_URL, log, Date.now, prefix);
    for (const l of [a, b]) await new Promise<void>((res, rej) => (l.redis.status === 'ready' ? res() : (l.redis.once('ready', () => res()), l.redis.once('end', rej))));
  });
  after(async () => {
    const keys = await a.redis.keys(`${prefix}*`);
    if (keys.length) await a.redis.del(...keys);
    await a.close();
    await b.close();
  });

  it('counts hits from both against one window', async () => {
    assert.equal(a.mode(), 'redis');
    const results = [await a.hit('app:1', 4, 5000), await b.hit('app:1', 4, 5000), await a.hit('app:1', 4, 5000), await b.hit('app:1', 4, 5000)];
    assert.deepEqual(results.map((r) => r.remaining), [3, 2, 1, 0]);
    assert.ok(results.every((r) => r.allowed));
    const over = await b.hit('app:1', 4, 5000);
    assert.equal(over.allowed, false);
    assert.ok(over.resetMs > 0 && over.resetMs <= 5000);
    assert.equal((await a.hit('app:2', 4, 5000)).remaining, 3);
    // count: a peek that sees both instances' hits and adds none (a one-hour window, so the
    // check does not straddle a window's end)
    for (const l of [a, b, a]) await l.hit('peek', 10, 3_600_000);
    assert.equal((await b.count('peek', 3_600_000)).n, 3, 'count sees the hits of both');
    assert.equal((await a.count('peek', 3_600_000)).n, 3, 'and adds none');
    assert.equal((await a.count('peek:none', 3_600_000)).n, 0);
    // the window is Redis' own: it resets after windowMs
    assert.equal((await a.hit('short', 1, 150)).allowed, true);
    assert.equal((await b.hit('short', 1, 150)).allowed, false);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await b.hit('short', 1, 150)).allowed, true);
  });

  it('shares nonces', async () => {
    assert.equal(await a.firstUse('7:nonce-0001', 60_000), true);
    assert.equal(await b.firstUse('7:nonce-0001', 60_000), false);
    assert.equal(await a.firstUse('7:nonce-0001', 60_000), false);
    assert.equal(await b.firstUse('8:nonce-0001', 60_000), true);
  });
});

describe('Redis unreachable', () => {
  let s: TestServer;
  const logs = captureLogs();
  before(async () => {
    s = await startServer({ env: { REDIS_URL: `redis://127.0.0.1:${await closedPort()}`, LOG_LEVEL: 'info' }, logStream: logs.stream });
  });
  after(() => s.close());

  it('falls back to in-process limits, logs it once, and keeps serving', async () => {
    const t = await tenantWithApp(s.ctx, 'acme', { rateLimit: 5 });
    const statuses: number[] = [];
    // per process: behind the cluster proxy each of the two servers keeps its own window
    const n = inCluster ? 2 : 1;
    for (let i = 0; i < 7 * n; i++) statuses.push((await http(s.url + '/rest/v1/me', { headers: bearer(t.creds) })).status);
    assert.deepEqual(statuses, [...Array(5 * n).fill(200), ...Array(2 * n).fill(429)], 'limits still apply, per process');
    // nonces too: a replay is refused from the fallback store
    const l = s.ctx.limits;
    assert.equal(await l.firstUse('1:fallback-nonce', 60_000), true);
    assert.equal(await l.firstUse('1:fallback-nonce', 60_000), false);
    assert.equal(l.mode(), 'redis-fallback');
    const h = await http(s.url + '/healthz');
    assert.equal(h.status, 200);
    assert.equal(h.json.limits, 'redis-fallback');
    const outage = logs.lines().filter((x) => String(x.msg).startsWith('redis unreachable'));
    assert.equal(outage.length, n, 'logged once per process, not per request');
    assert.equal(outage[0].level, 50);
  });
});
