/**
 * Test harness: a real platform on a temporary data folder, on SQLite by default or on a fresh
 * PostgreSQL database (and Redis) when the suite runs with --pg; a real HTTP server on a random
 * loopback port. No mocks.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pino, type DestinationStream } from 'pino';
import { loadConfig, type Config } from '../src/core/config.js';
import type { Clock, Ctx } from '../src/core/context.js';
import { closePlatform, createPlatform, REDACT } from '../src/platform.js';
import { buildServer } from '../src/server.js';
import { inCluster, startCluster } from './cluster.js';
import { createApp, type CreateAppInput } from '../src/core/credentials/apps.js';
import { hmacSign } from '../src/core/credentials/schemes.js';
import { createTenant, PLATFORM_TENANT } from '../src/services/accounts/index.js';

export const onPg = process.env.MENHU_TEST_PG === '1';

/** One random master key per test process, so platforms opened on one database can read each other's secrets. */
const TEST_MASTER_KEY = randomBytes(32).toString('hex');

/** A fresh, empty PostgreSQL database for one test platform; dropped by the returned cleanup. */
export async function freshPgDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const base = process.env.TEST_DATABASE_URL!;
  const name = `menhu_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const u = new URL(base);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export interface TestPlatform {
  ctx: Ctx;
  config: Config;
  dataDir: string;
  /** The PostgreSQL database of this platform ('' on SQLite); pass it as `databaseUrl` to share it. */
  databaseUrl: string;
  close(): Promise<void>;
}

export interface TestOptions {
  config?: Partial<Config>;
  env?: Record<string, string>;
  /** Pin time: pass a ManualClock (src/core/context.ts) and move it. */
  clock?: Clock;
  /** Capture the platform's and the server's log lines (JSON, one a line) at LOG_LEVEL (default trace). */
  logStream?: DestinationStream;
  /** Open this existing PostgreSQL database instead of a fresh one (two platforms on one database); not dropped on close. */
  databaseUrl?: string;
  /** Use this data folder (e.g. a second platform sharing the first one's SQLite file); not removed on close. */
  dataDir?: string;
}

export async function startPlatform(opts: TestOptions = {}): Promise<TestPlatform> {
  const ownDir = !opts.dataDir;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'menhu-test-'));
  const db = onPg && !opts.databaseUrl ? await freshPgDatabase() : null;
  const databaseUrl = opts.databaseUrl ?? db?.url ?? '';
  const config = loadConfig(
    {
      MENHU_DATA: dataDir,
      MENHU_MASTER_KEY: TEST_MASTER_KEY,
      DATABASE_URL: databaseUrl,
      REDIS_URL: onPg ? (process.env.REDIS_URL ?? '') : '',
      // test databases share one Redis: keep their rate-limit windows and nonces apart
      MENHU_REDIS_PREFIX: `menhu-test:${databaseUrl ? new URL(databaseUrl).pathname.slice(1) : randomBytes(6).toString('hex')}:`,
      // a loaded CI machine can stall a Redis round trip past the production timeout; the fallback
      // itself is tested with Redis really stopped (test/faults)
      MENHU_REDIS_TIMEOUT_MS: '5000',
      LOG_LEVEL: opts.logStream ? 'trace' : 'silent',
      ...opts.env,
    },
    { port: 0, jobConcurrency: 0, ...opts.config },
  );
  const log = opts.logStream
    ? pino({ level: config.logLevel, redact: { paths: REDACT, censor: '[redacted]' } }, opts.logStream)
    : pino({ level: process.env.TEST_LOG ?? 'silent' });
  let ctx: Ctx;
  try {
    ctx = await createPlatform(config, { clock: opts.clock, log });
  } catch (e) {
    await db?.drop();
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  return {
    ctx,
    config,
    dataDir,
    databaseUrl,
    close: async () => {
      await closePlatform(ctx);
      await db?.drop();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestServer extends TestPlatform {
  app: FastifyInstance;
  url: string;
}

/** A platform with its HTTP server listening on 127.0.0.1:<random>. */
export async function startServer(opts: TestOptions = {}): Promise<TestServer> {
  const p = await startPlatform(opts);
  if (inCluster) return startCluster(p, opts);
  const app = await buildServer(p.ctx, opts.logStream ? { logStream: opts.logStream } : { logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  p.ctx.config.publicUrl = url;
  return {
    ...p,
    app,
    url,
    close: async () => {
      await app.close();
      await p.close();
    },
  };
}

/** fetch() that returns status, headers, text and parsed JSON (when it is JSON). */
export async function http(url: string, init: RequestInit = {}) {
  const res = await fetch(url, init);
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, statusText: res.statusText, headers: res.headers, text, json };
}

export const jsonBody = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

// ---------------------------------------------------------------------------------------------
// Native API clients

export interface NativeCreds {
  key: string;
  secret: string;
}

export const bearer = (c: NativeCreds): Record<string, string> => ({ authorization: `Bearer ${c.key}.${c.secret}` });

/**
 * Headers of a native HMAC-signed request (see docs/native-api.md). `path` may carry a query
 * string; `body` is signed as the exact bytes sent.
 */
export function signedHeaders(
  c: NativeCreds,
  method: string,
  pathAndQuery: string,
  body: string | Buffer = '',
  opts: { timestamp?: number | string; nonce?: string } = {},
): Record<string, string> {
  const q = pathAndQuery.indexOf('?');
  const timestamp = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
  const nonce = opts.nonce ?? randomBytes(12).toString('hex');
  const signature = hmacSign(
    { method, path: q < 0 ? pathAndQuery : pathAndQuery.slice(0, q), query: q < 0 ? '' : pathAndQuery.slice(q + 1), timestamp, nonce, body },
    c.secret,
  );
  return { 'x-menhu-key': c.key, 'x-menhu-timestamp': timestamp, 'x-menhu-nonce': nonce, 'x-menhu-signature': signature };
}

/** An app of the platform tenant enabled for `native`: its callers are operators. */
export async function operatorCreds(ctx: Ctx): Promise<NativeCreds> {
  const a = await createApp(ctx, { tenantId: PLATFORM_TENANT, name: 'test operator', services: ['native'] });
  return { key: a.key, secret: a.secret };
}

/** A tenant with a native app; returns the tenant id, the app and its credentials. */
export async function tenantWithApp(ctx: Ctx, name: string, app: Partial<CreateAppInput> = {}) {
  const t = await createTenant(ctx, name);
  const a = await createApp(ctx, { tenantId: Number(t.id), name: `${name} app`, services: ['native'], ...app });
  return { tenantId: Number(t.id), app: a, creds: { key: a.key, secret: a.secret } as NativeCreds };
}

/** A log destination that keeps every line, for asserting what was (and was not) logged. */
export function captureLogs() {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return {
    stream,
    text: () => chunks.join(''),
    lines: (): Record<string, unknown>[] =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** What a request got: status, headers (less those that differ by connection and time), body. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const comparable = (h: Record<string, string>): Record<string, string> => {
  const { date: _d, connection: _c, 'keep-alive': _k, ...rest } = h;
  return rest;
};

/**
 * A lane (requests answered before Fastify: the native API's, the BQP dialect's) against its Fastify
 * route. `viaLane` goes over HTTP to this server's own port (in the cluster run s.url alternates
 * between servers) and counts what the lane answered; `viaFastify` injects (inject never reaches a
 * lane); `same` asserts the lane took the request and both answered byte for byte alike. `prefix` is
 * put in front of every path.
 */
export function lanePair(s: TestServer, answered: () => number, prefix = '') {
  const direct = `http://127.0.0.1:${(s.app.server.address() as { port: number }).port}${prefix}`;
  const viaLane = async (path: string, headers: Record<string, string>): Promise<Answer & { lane: number }> => {
    const before = answered();
    const r = await fetch(direct + path, { headers });
    const body = await r.text();
    return { status: r.status, headers: comparable(Object.fromEntries(r.headers)), body, lane: answered() - before };
  };
  const viaFastify = async (path: string, headers: Record<string, string>): Promise<Answer> => {
    const r = await s.app.inject({ method: 'GET', url: prefix + path, headers });
    return { status: r.statusCode, headers: comparable(r.headers as Record<string, string>), body: r.body };
  };
  /** `headers` may be a function, for headers that must be made anew per request (signatures). */
  const same = async (path: string, headers: Record<string, string> | (() => Record<string, string>) = {}): Promise<Answer> => {
    const h = typeof headers === 'function' ? headers : () => headers;
    const lane = await viaLane(path, h());
    const fw = await viaFastify(path, h());
    assert.equal(lane.lane, 1, `the lane answered ${path}`);
    const { lane: _n, ...answer } = lane;
    assert.deepEqual(answer, fw, `${path}: the lane and Fastify answer alike`);
    return fw;
  };
  return { direct, viaLane, viaFastify, same };
}
