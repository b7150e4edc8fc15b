// A second process for tlog.test.ts: opens the platform on the same database and appends N entries.
import { pino } from 'pino';
import { loadConfig } from '../../src/core/config.js';
import { append, logInfo } from '../../src/core/tlog/index.js';
import { closePlatform, createPlatform } from '../../src/platform.js';

const n = Number(process.argv[2] ?? 10);
const ctx = await createPlatform(loadConfig(process.env, { port: 0, jobConcurrency: 0 }), { log: pino({ level: 'silent' }) });
process.stdout.write('ready\n');
const out: { index: number; verifierKey: string }[] = [];
for (let i = 0; i < n; i++) out.push({ index: (await append(ctx, `child ${i}`)).index, verifierKey: logInfo(ctx).verifierKey });
await closePlatform(ctx);
process.stdout.write(JSON.stringify(out) + '\n');
