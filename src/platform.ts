import { pino, type Logger } from 'pino';
import { createBlobStore } from './core/blobs/index.js';
import { createBus } from './core/bus.js';
import type { Config } from './core/config.js';
import { systemClock, randomIds, type Clock, type Ctx, type Ids } from './core/context.js';
import { loadOrCreateMasterKey, SecretBox } from './core/crypto.js';
import { migrate, openDatabase } from './core/db/index.js';
import { Jobs } from './core/jobs/index.js';
import { createLimits } from './core/limits/index.js';
import { MODULES } from './modules/index.js';
import { bootstrap } from './services/accounts/index.js';

export interface PlatformOptions {
  clock?: Clock;
  ids?: Ids;
  log?: Logger;
  /** Run migrations on open (default true). */
  migrate?: boolean;
}

/** Secrets that must never reach a log line, wherever they appear in a logged object. */
export const REDACT = [
  'req.headers.authorization',
  'req.headers.token',
  'req.headers.cookie',
  'req.headers["x-menhu-signature"]',
  'password',
  'passcode',
  'secret',
  'pay_password',
  'pay_passwrod',
  '*.password',
  '*.secret',
];

export function createLogger(cfg: Config): Logger {
  return pino({ level: cfg.logLevel, redact: { paths: REDACT, censor: '[redacted]' } });
}

/** Opens everything a process needs: database (migrated), secret box, blobs, limits, jobs. */
export async function createPlatform(config: Config, opts: PlatformOptions = {}): Promise<Ctx> {
  const log = opts.log ?? createLogger(config);
  const key = loadOrCreateMasterKey(config.masterKey, config.dataDir);
  const db = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  const clock = opts.clock ?? systemClock;
  const now = () => clock.now();
  try {
    if (opts.migrate !== false) await migrate(db);
  } catch (e) {
    await db.close();
    throw e;
  }
  const ctx: Ctx = {
    config,
    db,
    box: new SecretBox(key),
    blobs: createBlobStore(config, db.kysely, now),
    jobs: new Jobs(db, now, log),
    bus: createBus(config.redisUrl, config.redisPrefix, log),
    limits: createLimits(config.redisUrl, log, now, config.redisPrefix, config.redisTimeoutMs),
    clock,
    ids: opts.ids ?? randomIds,
    log,
  };
  if (opts.migrate !== false) {
    await bootstrap(ctx);
    for (const m of MODULES) await m.init?.(ctx);
  }
  return ctx;
}

export async function closePlatform(ctx: Ctx): Promise<void> {
  for (const m of [...MODULES].reverse()) await m.close?.(ctx);
  await ctx.jobs.stop();
  await ctx.limits.close();
  await ctx.bus.close();
  await ctx.db.close();
}

/** Every module's integrity check (`menhu check`), one line per problem, each named by its module. */
export async function integrityProblems(ctx: Ctx): Promise<string[]> {
  const out: string[] = [];
  for (const m of MODULES) if (m.check) out.push(...(await m.check(ctx)).map((p) => (/^[a-z]+: /.test(p) ? p : `${m.name}: ${p}`)));
  return out;
}
