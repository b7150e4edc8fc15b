/**
 * Fault: PostgreSQL restarted under a running server (issue 9). The server reaches PostgreSQL
 * through a TCP proxy (node:net) in this test; a "restart" destroys every proxied connection and
 * refuses new ones for 2 s. Meanwhile requests fail cleanly and quickly with each dialect's
 * documented unavailable error (503 problem+json natively, `503 SERVICE_UNAVAILABLE` for
 * MiningLamp) — no hang, no crash, no stack trace — and afterwards the same process serves again.
 */
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, it } from 'node:test';
import { createApp } from '../../src/core/credentials/apps.js';
import { createTenant } from '../../src/services/accounts/index.js';
import { startServe, type ServeProc } from '../procs.js';
import { faultEnv, skipInCluster, sleep, type FaultEnv } from './env.js';

const OUTAGE_MS = 2000;

/** A TCP proxy to host:port that can drop everything and refuse connections for a while. */
async function tcpProxy(host: string, port: number) {
  const pairs = new Set<[Socket, Socket]>();
  let down = false;
  let refused = 0;
  const server: Server = createServer((client) => {
    if (down) {
      refused++;
      client.destroy();
      return;
    }
    const upstream = connect(port, host);
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    get refused() {
      return refused;
    },
    /** Drops every connection now and refuses new ones until `ms` have passed. */
    outage(ms: number): Promise<void> {
      down = true;
      for (const [a, b] of [...pairs]) {
        a.destroy();
        b.destroy();
      }
      pairs.clear();
      return sleep(ms).then(() => {
        down = false;
      });
    },
    close: () =>
      new Promise<void>((r) => {
        for (const [a, b] of pairs) {
          a.destroy();
          b.destroy();
        }
        server.close(() => r());
      }),
  };
}

let server: ServeProc | undefined;
let fe: FaultEnv | undefined;
let proxy: Awaited<ReturnType<typeof tcpProxy>> | undefined;
after(async () => {
  await server?.kill9();
  await proxy?.close();
  await fe?.cleanup();
});

it('PostgreSQL restarted: requests fail cleanly during the outage and the same process recovers by itself', { skip: skipInCluster, timeout: 180_000 }, async () => {
  fe = await faultEnv({ pg: true });
  const setup = await fe.open();
  const t = await createTenant(setup, 'pg outage');
  const native = await createApp(setup, { tenantId: Number(t.id), name: 'native', services: ['native'] });
  const ml = await createApp(setup, { tenantId: Number(t.id), name: 'ml', services: ['mininglamp'] });
  const direct = new URL(fe.databaseUrl);
  proxy = await tcpProxy(direct.hostname, Number(direct.port || 5432));
  const viaProxy = new URL(fe.databaseUrl);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(proxy.port);
  server = await startServe({ ...fe.env, DATABASE_URL: viaProxy.toString() });
  const url = server.url;
  const pid = server.pid;

  let n = 0;
  const timed = async (path: string, init: RequestInit = {}) => {
    const t0 = Date.now();
    const r = await fetch(`${url}${path}`, { ...init, signal: AbortSignal.timeout(10_000) }).catch((e) => {
      throw new Error(`${init.method ?? 'GET'} ${path} failed after ${Date.now() - t0} ms (${(e as Error).cause ?? e}); server exit ${server!.child.exitCode ?? server!.child.signalCode}:\n${server!.output()}`);
    });
    const text = await r.text();
    return { status: r.status, reason: r.statusText, type: r.headers.get('content-type') ?? '', text, ms: Date.now() - t0 };
  };
  const createLink = () =>
    timed('/rest/v1/links', {
      method: 'POST',
      headers: { authorization: `Bearer ${native.key}.${native.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: `https://example.com/${n++}` }),
    });
  const commit = () => {
    const form = new FormData();
    for (const [k, v] of Object.entries({ user: ml.key, passcode: ml.secret, title: 't', type: 'q', period: 'p', geom: 'g' })) form.set(k, v);
    form.set('file', new Blob([Buffer.from(`%PDF-1.4 ${n}`)], { type: 'application/pdf' }), 'r.pdf');
    return timed(`/api/v1/commitreport/rep-${n++}`, { method: 'POST', body: form });
  };

  // healthy first
  assert.equal((await createLink()).status, 201);
  assert.equal((await commit()).text, '200 DATA_UPDATED');

  const outage = proxy.outage(OUTAGE_MS);
  const seen = { native: new Set<number>(), ml: new Set<string>(), health: new Set<number>() };
  const t0 = Date.now();
  while (Date.now() - t0 < OUTAGE_MS - 300) {
    const [a, b, h] = await Promise.all([createLink(), commit(), timed('/healthz')]);
    for (const r of [a, b, h]) {
      assert.ok(r.ms < 5000, `an answer took ${r.ms} ms`);
      assert.doesNotMatch(r.text, /\bat .*\.(ts|js):\d+|Error:/, 'no stack trace or raw error in an answer');
    }
    seen.native.add(a.status);
    if (a.status !== 201) {
      assert.equal(a.status, 503, a.text);
      assert.match(a.type, /^application\/problem\+json/);
      assert.equal(JSON.parse(a.text).code, 'UNAVAILABLE');
    }
    seen.ml.add(b.text);
    if (b.text !== '200 DATA_UPDATED') {
      assert.equal(b.text, '503 SERVICE_UNAVAILABLE');
      assert.equal(b.reason, 'SERVICE_UNAVAILABLE');
    }
    seen.health.add(h.status);
    await sleep(50);
  }
  await outage;
  assert.ok(seen.native.has(503), `native answers during the outage: ${[...seen.native]}`);
  assert.ok(seen.ml.has('503 SERVICE_UNAVAILABLE'), `MiningLamp answers during the outage: ${[...seen.ml]}`);
  assert.ok(seen.health.has(503));
  assert.ok(proxy.refused > 0, 'the server tried to reconnect during the outage');

  // recovers by itself: the same process answers again within a few seconds
  const t1 = Date.now();
  for (;;) {
    const [a, b] = await Promise.all([createLink(), commit()]);
    if (a.status === 201 && b.text === '200 DATA_UPDATED') break;
    assert.ok(Date.now() - t1 < 15_000, `not recovered: ${a.status} ${a.text} / ${b.text}`);
    await sleep(200);
  }
  assert.equal((await timed('/healthz')).status, 200);
  assert.equal(server.pid, pid);
  assert.equal(server.child.exitCode, null, 'the server never exited');
  assert.doesNotMatch(server.output(), /uncaught|unhandled/i);
});
