import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../core/config.js';
import type { Ctx } from '../core/context.js';
import { createApp, listApps, publicApp, rotateSecret, updateApp } from '../core/credentials/apps.js';
import { migrate, openDatabase } from '../core/db/index.js';
import { backup, BackupError, restore } from '../core/backup.js';
import { isDomainError } from '../core/errors.js';
import { addQuota } from '../core/limits/quotas.js';
import { MODULES } from '../modules/index.js';
import { closePlatform, createPlatform, integrityProblems } from '../platform.js';
import { createTenant, getTenant } from '../services/accounts/index.js';
import { progressBar } from './progress.js';

const USAGE = `menhu — self-hosted open API platform

usage: menhu <command> [options]

  serve [--demo] [--port N] [--host H] [--data DIR]   start the HTTP server (and the in-process job runner)
  worker [--concurrency N]                            run jobs only (scale-out: point it at the same DATABASE_URL)
  migrate                                             create or update the database schema
  tenant create <name>                                create a tenant; prints its id
  app create --tenant N --name NAME [--services a,b] [--key K] [--secret S] [--rate N] [--ip CIDR,…]
  app list [--tenant N]
  app rotate <id> [--grace SECONDS]                   new secret; the old one stays valid for the grace period
  app block <id> [--unblock]
  quota add --tenant N --service S --units N          top up (negative: take back) a tenant's quota
  verify <file> --report ID [--url URL] [--tenant N] [--bundle PATH] [--key VKEY]
                                                      check a report file offline against a proof bundle and the log key
  codes import <template id | Mn --tenant N> FILE     create dynamic codes from a .csv or .xlsx (header row: field names)
  backup <dir>                                        online backup of the embedded profile (SQLite + data folder)
  restore <dir>                                       verify a backup and restore it into an empty data folder, then check it
  check                                               integrity checks of every service's stored data
  ledger fund <developer|appkey/wallet> <amount> [--key K]   issue ULD to a developer account or a wallet
  ledger audit                                        check the ledger invariants

Configuration comes from the environment (see README): MENHU_DATA, PORT, DATABASE_URL, REDIS_URL,
MENHU_MASTER_KEY, S3_*, MENHU_PUBLIC_URL, LOG_LEVEL, …`;

function die(msg: string): never {
  console.error(`menhu: ${msg}`);
  process.exit(2);
}

function intOpt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) die(`--${name} must be an integer`);
  return n;
}

const list = (v: string | undefined) => (v === undefined ? undefined : v.split(',').map((s) => s.trim()).filter(Boolean));

async function withPlatform<T>(cfg: Config, fn: (ctx: Ctx) => Promise<T>): Promise<T> {
  const ctx = await createPlatform(cfg, { log: (await import('pino')).pino({ level: 'warn' }) });
  try {
    return await fn(ctx);
  } finally {
    await closePlatform(ctx);
  }
}

async function serve(cfg: Config, demo: boolean): Promise<void> {
  // loaded here so that the short commands start faster
  const { buildServer } = await import('../server.js');
  const { DEMO, seedDemo } = await import('../demo.js');
  const ctx = await createPlatform(cfg);
  const app = await buildServer(ctx);
  const info = demo ? await seedDemo(ctx) : null;
  ctx.jobs.start(cfg.jobConcurrency);
  const sweeper = setInterval(() => void ctx.blobs.sweep().catch((e) => ctx.log.error({ err: String(e) }, 'blob sweep failed')), 60_000);
  sweeper.unref();
  await app.listen({ host: cfg.host, port: cfg.port });
  const addr = app.server.address();
  if (cfg.port === 0 && !process.env.MENHU_PUBLIC_URL && addr && typeof addr === 'object') {
    // --port 0 picks a free port: say which
    cfg.publicUrl = `http://${cfg.host === '0.0.0.0' ? '127.0.0.1' : cfg.host}:${addr.port}`;
  }
  const base = cfg.publicUrl;
  const lines = [
    '',
    `menhu is listening on ${base}`,
    `  data folder     ${cfg.dataDir}  (database: ${ctx.db.dialect}${ctx.db.dialect === 'sqlite' ? ' menhu.sqlite' : ''}, blobs: ${ctx.blobs.backend.name})`,
    `  native API      ${base}/rest/v1   OpenAPI ${base}/rest/v1/openapi.json   docs ${base}/rest/v1/docs`,
    `  console         ${base}/console`,
    `  health/metrics  ${base}/healthz   ${base}/metrics`,
  ];
  if (info) {
    lines.push(
      '',
      `demo tenant ${info.tenantId} — the seeds' sample credentials work as written:`,
      `  MiningLamp  user=${DEMO.mininglamp.key} passcode=${DEMO.mininglamp.secret}        ${base}/api/v1/generateqr/<report_id>`,
      `  Fangtang    third_code=${DEMO.fangtang.key} secret=${DEMO.fangtang.secret} (${DEMO.fangtang.uploads} uploads)   ${base}/api/third/photo/upload`,
      `  cli.im      api_key=${DEMO.cli.key} secret=${DEMO.cli.secret}   ${base}/cli-open-platform-service/v1/dynamicQrcode/dynamicSingleCreate`,
      `  Ulord       developer ${DEMO.admin.username}/${DEMO.admin.password} (admin), appkey ${info.ulord.key}   ${base}/v1/...`,
      `  BQP         Basic ${DEMO.bqpBasic.key}:${DEMO.bqpBasic.secret}, _sign secret ${DEMO.bqpSign.secret}   ${base}${cfg.bqpPrefix}/<Obj>.<verb>`,
      `  native      Authorization: Bearer ${info.native.key}.${info.native.secret}`,
      `  operator    Authorization: Bearer ${info.operator.key}.${info.operator.secret}`,
    );
  }
  const extra = MODULES.flatMap((m) => m.banner?.(ctx) ?? []);
  if (extra.length) lines.push('', ...extra);
  console.log(lines.join('\n') + '\n');
  let closing = false;
  const shutdown = async (sig: string) => {
    if (closing) return;
    closing = true;
    ctx.log.info({ sig }, 'shutting down');
    clearInterval(sweeper);
    await app.close();
    await closePlatform(ctx);
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

async function worker(cfg: Config, concurrency: number): Promise<void> {
  const ctx = await createPlatform(cfg);
  ctx.jobs.start(concurrency);
  ctx.log.info({ worker: ctx.jobs.workerId, concurrency }, 'worker started');
  const stop = async () => {
    await closePlatform(ctx);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

async function runChecks(cfg: Config): Promise<void> {
  const problems = await withPlatform(cfg, integrityProblems);
  if (problems.length) {
    for (const p of problems) console.error(`PROBLEM ${p}`);
    die(`${problems.length} integrity problem(s)`);
  }
  console.log(`integrity checks passed (${MODULES.filter((m) => m.check).map((m) => m.name).join(', ') || 'no service checks registered'})`);
}

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...raw] = argv;
  // `--units -5`: a negative number is the option's value, not an option
  const rest = raw.flatMap((a, i) => (/^-\d+$/.test(a) && /^--[a-z]+$/.test(raw[i - 1] ?? '') ? [] : /^--[a-z]+$/.test(a) && /^-\d+$/.test(raw[i + 1] ?? '') ? [`${a}=${raw[i + 1]}`] : [a]));
  const { values: o, positionals: pos } = parseArgs({
    args: rest,
    allowPositionals: true,
    strict: true,
    options: {
      demo: { type: 'boolean' },
      port: { type: 'string' },
      host: { type: 'string' },
      data: { type: 'string' },
      concurrency: { type: 'string' },
      tenant: { type: 'string' },
      name: { type: 'string' },
      services: { type: 'string' },
      key: { type: 'string' },
      secret: { type: 'string' },
      rate: { type: 'string' },
      ip: { type: 'string' },
      grace: { type: 'string' },
      unblock: { type: 'boolean' },
      service: { type: 'string' },
      units: { type: 'string' },
      report: { type: 'string' },
      url: { type: 'string' },
      bundle: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h' || o.help) {
    console.log(USAGE);
    return;
  }
  if (o.data) process.env.MENHU_DATA = o.data;
  const cfg = loadConfig(process.env, {
    ...(o.port !== undefined ? { port: intOpt(o.port, 'port') } : {}),
    ...(o.host !== undefined ? { host: o.host } : {}),
  });
  const sub = pos[0];
  switch (cmd) {
    case 'serve':
      return serve(cfg, !!o.demo);
    case 'worker':
      return worker(cfg, intOpt(o.concurrency, 'concurrency') ?? Math.max(1, cfg.jobConcurrency));
    case 'migrate': {
      const db = openDatabase({ databaseUrl: cfg.databaseUrl, dataDir: cfg.dataDir });
      try {
        const done = await migrate(db);
        for (const m of MODULES) if (m.schema) done.push(...(await m.schema(db, cfg)));
        console.log(done.length ? `applied: ${done.join(', ')}` : 'schema is up to date');
      } finally {
        await db.close();
      }
      return;
    }
    case 'tenant':
      if (sub !== 'create' || !pos[1]) die('usage: menhu tenant create <name>');
      return withPlatform(cfg, async (ctx) => {
        const t = await createTenant(ctx, pos[1]);
        console.log(JSON.stringify({ id: t.id, name: t.name }));
      });
    case 'app':
      return withPlatform(cfg, async (ctx) => {
        if (sub === 'create') {
          const tenantId = intOpt(o.tenant, 'tenant') ?? die('--tenant is required');
          if (!o.name) die('--name is required');
          const a = await createApp(ctx, { tenantId, name: o.name, services: list(o.services), key: o.key, secret: o.secret, rateLimit: intOpt(o.rate, 'rate'), ipAllow: list(o.ip) });
          console.log(JSON.stringify({ ...publicApp(a), secret: a.secret }, null, 2));
        } else if (sub === 'list') {
          for (const a of await listApps(ctx, { tenantId: intOpt(o.tenant, 'tenant') })) {
            console.log(`${a.id}\ttenant ${a.tenantId}\t${a.key}\t${a.services.join(',')}\t${a.blocked ? 'BLOCKED' : 'active'}\t${a.name}`);
          }
        } else if (sub === 'rotate') {
          const id = intOpt(pos[1], 'id') ?? die('usage: menhu app rotate <id>');
          const r = await rotateSecret(ctx, id, intOpt(o.grace, 'grace'));
          console.log(JSON.stringify({ id: r.app.id, key: r.app.key, secret: r.secret, previous_valid_until: r.app.previous ? new Date(r.app.previous.until).toISOString() : null }, null, 2));
        } else if (sub === 'block') {
          const id = intOpt(pos[1], 'id') ?? die('usage: menhu app block <id> [--unblock]');
          const a = await updateApp(ctx, id, { blocked: !o.unblock });
          console.log(`app ${a.id} ${a.blocked ? 'blocked' : 'unblocked'}`);
        } else die('usage: menhu app create|list|rotate|block …');
      });
    case 'quota':
      if (sub !== 'add') die('usage: menhu quota add --tenant N --service S --units N');
      return withPlatform(cfg, async (ctx) => {
        const tenantId = intOpt(o.tenant, 'tenant') ?? die('--tenant is required');
        const units = intOpt(o.units, 'units') ?? die('--units is required');
        if (!o.service) die('--service is required');
        if (!(await getTenant(ctx, tenantId))) die(`no tenant ${tenantId}`);
        console.log(JSON.stringify({ tenant_id: tenantId, service: o.service, remaining: await addQuota(ctx.db.kysely, tenantId, o.service, units) }));
      });
    case 'verify': {
      const { verifyCommand } = await import('./verify.js');
      process.exitCode = await verifyCommand({ file: sub, report: o.report, url: o.url, tenant: o.tenant, bundle: o.bundle, key: o.key });
      return;
    }
    case 'codes':
      return withPlatform(cfg, async (ctx) => (await import('./codes.js')).codesCommand(ctx, pos, intOpt(o.tenant, 'tenant'), die));
    case 'backup': {
      if (!sub) die('usage: menhu backup <dir>');
      const bar = progressBar('backup');
      const m = await backup(cfg, sub, (phase, d, t) => bar.update(d, t, phase));
      bar.end();
      const bytes = m.files.reduce((n, f) => n + f.size, 0);
      console.log(`backup written to ${sub}: ${m.files.length} files, ${bytes} bytes (contains the master key: keep it private)`);
      return;
    }
    case 'restore': {
      if (!sub) die('usage: menhu restore <dir>');
      const bar = progressBar('restore');
      const m = await restore(cfg, sub, (phase, d, t) => bar.update(d, t, phase));
      bar.end();
      console.log(`restored ${m.files.length} files from ${sub} (backup of ${m.created_at}) into ${cfg.dataDir}`);
      return runChecks(cfg);
    }
    case 'check':
      return runChecks(cfg);
    case 'ledger':
      return withPlatform(cfg, async (ctx) => {
        const { ledgerCli } = await import('../services/ledger/cli.js');
        console.log(JSON.stringify(await ledgerCli(ctx, pos, o.key), null, 2));
      });
    case 'codes':
      return withPlatform(cfg, async (ctx) => (await import('./codes.js')).codesCommand(ctx, pos, intOpt(o.tenant, 'tenant'), die));
    default:
      die(`unknown command ${JSON.stringify(cmd)}; run menhu help`);
  }
}

main(process.argv.slice(2)).catch((e) => {
  if (isDomainError(e)) die(`${e.code}: ${e.message}`);
  if (e instanceof BackupError) die(e.message);
  if (e instanceof ConfigError) die(`configuration: ${e.message}`);
  console.error(`menhu: ${(e as Error)?.stack ?? e}`);
  process.exit(1);
});
