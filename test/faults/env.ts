/** Shared set-up of the fault tests: a fresh database and data folder for real menhu processes. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../../src/core/config.js';
import type { Ctx } from '../../src/core/context.js';
import { closePlatform, createPlatform, integrityProblems } from '../../src/platform.js';
import { inCluster } from '../cluster.js';
import { freshPgDatabase } from '../helpers.js';
import { menhuEnv, testMasterKey } from '../procs.js';

/**
 * These tests start their own processes (servers, workers, Redis, proxies); the harness's cluster
 * topology adds nothing to them, so they run once, in the --pg suite.
 */
export const skipInCluster = inCluster && 'starts its own processes: runs in the --pg suite';

export interface FaultEnv {
  /** environment for `menhu serve` / `menhu worker` */
  env: Record<string, string>;
  dataDir: string;
  databaseUrl: string;
  /** A platform in this process on the same database (set-up and checks); closed by cleanup. */
  open(): Promise<Ctx>;
  cleanup(): Promise<void>;
}

export async function faultEnv(opts: { pg: boolean; extra?: Record<string, string> }): Promise<FaultEnv> {
  const dataDir = mkdtempSync(join(tmpdir(), 'menhu-fault-'));
  const db = opts.pg ? await freshPgDatabase() : null;
  const env = menhuEnv({ MENHU_DATA: dataDir, MENHU_MASTER_KEY: testMasterKey(), DATABASE_URL: db?.url ?? '', ...opts.extra });
  const opened: Ctx[] = [];
  return {
    env,
    dataDir,
    databaseUrl: db?.url ?? '',
    open: async () => {
      const ctx = await createPlatform(loadConfig(env, { port: 0, jobConcurrency: 0 }), { log: pino({ level: process.env.TEST_LOG ?? 'silent' }) });
      opened.push(ctx);
      return ctx;
    },
    cleanup: async () => {
      for (const c of opened.splice(0)) await closePlatform(c).catch(() => {});
      await db?.drop().catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Every module's integrity check (what `menhu check` runs); [] when everything holds. */
/** The same integrity checks `menhu check` runs. */
export const moduleProblems = integrityProblems;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
