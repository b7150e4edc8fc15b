/**
 * Test harness: a real platform on a temporary data folder, on SQLite by default or on a fresh
 * PostgreSQL database (and Redis) when the suite runs with --pg; a real HTTP server on a random
 * loopback port. No mocks.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { pino } from 'pino';
import { loadConfig, type Config } from '../src/core/config.js';
import type { Clock, Ctx } from '../src/core/context.js';
import { closePlatform, createPlatform } from '../src/platform.js';
import { buildServer } from '../src/server.js';

export const onPg = process.env.MENHU_TEST_PG === '1';

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
  close(): Promise<void>;
}

export interface TestOptions {
  config?: Partial<Config>;
  env?: Record<string, string>;
  clock?: Clock;
}

export async function startPlatform(opts: TestOptions = {}): Promise<TestPlatform> {
  const dataDir = mkdtempSync(join(tmpdir(), 'menhu-test-'));
  const db = onPg ? await freshPgDatabase() : null;
  const config = loadConfig(
    {
      MENHU_DATA: dataDir,
      MENHU_MASTER_KEY: randomBytes(32).toString('hex'),
      DATABASE_URL: db?.url ?? '',
      REDIS_URL: onPg ? (process.env.REDIS_URL ?? '') : '',
      LOG_LEVEL: 'silent',
      ...opts.env,
    },
    { port: 0, jobConcurrency: 0, ...opts.config },
  );
  const ctx = await createPlatform(config, { clock: opts.clock, log: pino({ level: process.env.TEST_LOG ?? 'silent' }) });
  return {
    ctx,
    config,
    dataDir,
    close: async () => {
      await closePlatform(ctx);
      await db?.drop();
      rmSync(dataDir, { recursive: true, force: true });
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
  const app = await buildServer(p.ctx, { logger: false });
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
