/**
 * Transparency log appends per second, durable (SQLite synchronous=FULL in WAL, or PostgreSQL with
 * DATABASE_URL): many clients appending at once through the group-committing append(), against a
 * baseline measured in the same run: one transaction (one durable commit) per entry.
 *
 *   node --import tsx bench/tlog.ts [entries=20000] [concurrency=256]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../src/core/config.js';
import { append, appendInTx, consistencyProof, inclusionProof, rootAt, treeHead, verifyConsistency, verifyInclusion, leafHash, getEntry } from '../src/core/tlog/index.js';
import { closePlatform, createPlatform } from '../src/platform.js';

const N = Number(process.argv[2] ?? 20000);
const CONC = Number(process.argv[3] ?? 256);
const dir = mkdtempSync(join(tmpdir(), 'menhu-bench-tlog-'));
const cfg = loadConfig({ MENHU_DATA: dir, MENHU_MASTER_KEY: randomBytes(32).toString('hex'), DATABASE_URL: process.env.DATABASE_URL ?? '', LOG_LEVEL: 'silent' }, { port: 0, jobConcurrency: 0 });
const ctx = await createPlatform(cfg, { log: pino({ level: 'silent' }) });
const entry = (i: number) => JSON.stringify({ v: 1, report: `BENCH-${i}`, version: 1, sha256: randomBytes(32).toString('hex'), time: Date.now() });

try {
  // Baseline: one durable transaction per entry, sequential, for ~2 s.
  let base = 0;
  const b0 = performance.now();
  while (performance.now() - b0 < 2000) {
    await ctx.db.tx((trx) => appendInTx(ctx, trx, [entry(base)]));
    base++;
  }
  const baseRate = base / ((performance.now() - b0) / 1000);

  // Group commit: CONC clients each appending and waiting for durability before the next.
  let next = 0;
  const lat: number[] = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (next < N) {
        const i = next++;
        const s = performance.now();
        await append(ctx, entry(i));
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const rate = N / secs;
  lat.sort((a, b) => a - b);
  const head = await treeHead(ctx);

  // Proof cost at this size.
  const p0 = performance.now();
  const P = 200;
  for (let k = 0; k < P; k++) {
    const idx = Math.floor(Math.random() * head.size);
    const { proof } = await inclusionProof(ctx, idx);
    verifyInclusion(BigInt(idx), BigInt(head.size), leafHash(Buffer.from((await getEntry(ctx, idx))!.data)), proof, head.root);
  }
  const proofMs = (performance.now() - p0) / P;
  const m = Math.floor(head.size / 3);
  verifyConsistency(BigInt(m), BigInt(head.size), await consistencyProof(ctx, m, head.size), await rootAt(ctx, m), head.root);

  console.log(`database        ${ctx.db.dialect}${ctx.db.dialect === 'sqlite' ? ' (WAL, synchronous=FULL)' : ''}`);
  console.log(`baseline        ${baseRate.toFixed(0)} entries/s  (one durable transaction per entry, ${base} entries)`);
  console.log(`group commit    ${rate.toFixed(0)} entries/s  (${N} entries, ${CONC} concurrent clients, ${secs.toFixed(2)} s)`);
  console.log(`latency         p50 ${lat[Math.floor(lat.length * 0.5)].toFixed(1)} ms  p99 ${lat[Math.floor(lat.length * 0.99)].toFixed(1)} ms`);
  console.log(`ratio           ${(rate / baseRate).toFixed(1)}x baseline; goal >= 2000 entries/s: ${rate >= 2000 ? 'met' : 'NOT met'}`);
  console.log(`inclusion proof ${proofMs.toFixed(2)} ms each (generate + verify) at tree size ${head.size}`);
} finally {
  await closePlatform(ctx);
  rmSync(dir, { recursive: true, force: true });
}
