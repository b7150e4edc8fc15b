/**
 * The durable transparency log on the real database (SQLite, or PostgreSQL with --pg): roots
 * against a from-scratch reference, every inclusion and consistency proof of a small tree,
 * rollbacks, group commit, two processes appending to one database, signed checkpoints.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Ctx } from '../../src/core/context.js';
import {
  append,
  appendInTx,
  checkpointNow,
  consistencyProof,
  getEntry,
  inclusionProof,
  latestCheckpoint,
  leafHash,
  logInfo,
  openCheckpoint,
  rootAt,
  rootOfLeaves,
  treeHead,
  verifyConsistency,
  verifyInclusion,
} from '../../src/core/tlog/index.js';
import { startPlatform, type TestPlatform } from '../helpers.js';

describe('transparency log storage', () => {
  let p: TestPlatform;
  let ctx: Ctx;
  const leaves: Buffer[] = [];
  before(async () => {
    p = await startPlatform();
    ctx = p.ctx;
  });
  after(() => p.close());

  it('starts empty with a signed checkpoint of the empty tree', async () => {
    const head = await treeHead(ctx);
    assert.equal(head.size, 0);
    assert.equal(head.root.toString('hex'), rootOfLeaves([]).toString('hex'));
    const c = await latestCheckpoint(ctx);
    const parsed = openCheckpoint(c.note, logInfo(ctx).verifierKey, logInfo(ctx).origin);
    assert.equal(parsed.size, 0);
  });

  it('roots match a from-scratch computation after every append (single, batched, in transactions)', async () => {
    for (let i = 0; i < 40; i++) {
      const data = `entry ${i}`;
      const e = await append(ctx, data);
      assert.equal(e.index, i);
      leaves.push(leafHash(Buffer.from(data)));
      assert.deepEqual((await treeHead(ctx)).root, rootOfLeaves(leaves));
    }
    // many at once: group commit, indices in arrival order
    const many = await Promise.all(Array.from({ length: 25 }, (_, i) => append(ctx, `burst ${i}`)));
    assert.deepEqual(
      many.map((e) => e.index),
      Array.from({ length: 25 }, (_, i) => 40 + i),
    );
    for (let i = 0; i < 25; i++) leaves.push(leafHash(Buffer.from(`burst ${i}`)));
    const inTx = await ctx.db.tx((trx) => appendInTx(ctx, trx, ['tx a', 'tx b', 'tx c']));
    assert.deepEqual(
      inTx.map((e) => e.index),
      [65, 66, 67],
    );
    for (const d of ['tx a', 'tx b', 'tx c']) leaves.push(leafHash(Buffer.from(d)));
    assert.deepEqual((await treeHead(ctx)).root, rootOfLeaves(leaves));
    const e = await getEntry(ctx, 66);
    assert.equal(e?.data, 'tx b');
    assert.equal(e?.leafHash, leaves[66].toString('hex'));
  });

  it('every inclusion and consistency proof of the tree verifies (and fails when moved)', async () => {
    const n = leaves.length;
    const sizes = [...Array.from({ length: 17 }, (_, i) => i + 1), 31, 32, 33, 47, n];
    for (const size of sizes) {
      const root = await rootAt(ctx, size);
      assert.deepEqual(root, rootOfLeaves(leaves.slice(0, size)));
      for (let i = 0; i < size; i++) {
        const { proof } = await inclusionProof(ctx, i, size);
        verifyInclusion(BigInt(i), BigInt(size), leaves[i], proof, root);
        if (size > 1) assert.throws(() => verifyInclusion(BigInt((i + 1) % size), BigInt(size), leaves[i], proof, root));
      }
    }
    for (const m of sizes) {
      for (const k of sizes.filter((k) => k >= m)) {
        const proof = await consistencyProof(ctx, m, k);
        verifyConsistency(BigInt(m), BigInt(k), proof, await rootAt(ctx, m), await rootAt(ctx, k));
        const rootK = await rootAt(ctx, k);
        if (k > m) assert.throws(() => verifyConsistency(BigInt(m), BigInt(k), proof, rootOfLeaves(leaves.slice(1, m + 1)), rootK));
      }
    }
    await assert.rejects(inclusionProof(ctx, n, n), RangeError);
    await assert.rejects(consistencyProof(ctx, 0, n), RangeError);
    await assert.rejects(consistencyProof(ctx, 2, n + 1), RangeError);
  });

  it('a rolled-back transaction leaves no entry and does not confuse later appends', async () => {
    const before = await treeHead(ctx);
    await assert.rejects(
      ctx.db.tx(async (trx) => {
        await appendInTx(ctx, trx, ['doomed 1', 'doomed 2']);
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.deepEqual(await treeHead(ctx), before);
    assert.equal(await getEntry(ctx, before.size), null);
    const e = await append(ctx, 'after rollback');
    assert.equal(e.index, before.size);
    leaves.push(leafHash(Buffer.from('after rollback')));
    assert.deepEqual((await treeHead(ctx)).root, rootOfLeaves(leaves));
  });

  it('signs checkpoints that verify with the published key, and only with it', async () => {
    const c = await checkpointNow(ctx);
    assert.equal(c.size, leaves.length);
    const info = logInfo(ctx);
    assert.match(c.note, new RegExp(`^${info.origin.replace(/[.]/g, '\\.')}\\n${leaves.length}\\n[A-Za-z0-9+/]{43}=\\n\\n\u2014 ${info.keyName} [A-Za-z0-9+/]+=*\\n$`));
    const parsed = openCheckpoint(c.note, info.verifierKey);
    assert.deepEqual(parsed.root, rootOfLeaves(leaves));
    assert.throws(() => openCheckpoint(c.note.replace(`\n${leaves.length}\n`, `\n${leaves.length + 1}\n`), info.verifierKey), /signature/);
    const other = await startPlatform();
    try {
      assert.throws(() => openCheckpoint(c.note, logInfo(other.ctx).verifierKey), /no signature|verifier/);
    } finally {
      await other.close();
    }
  });

  it('the checkpointer publishes within a second of new entries', async () => {
    await append(ctx, 'late entry');
    leaves.push(leafHash(Buffer.from('late entry')));
    const t0 = Date.now();
    while ((await latestCheckpoint(ctx)).size < leaves.length) {
      assert.ok(Date.now() - t0 < 1500, 'no checkpoint within 1.5 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(Date.now() - t0 <= 1100);
  });

  it('two processes on one database append without colliding indices and share one key', async () => {
    const start = (await treeHead(ctx)).size;
    // A real second process (better-sqlite3 is synchronous: two connections in one thread would deadlock).
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'tlog-child.ts'), '40'], {
      env: { ...process.env, MENHU_DATA: p.config.dataDir, MENHU_MASTER_KEY: p.config.masterKey, DATABASE_URL: p.config.databaseUrl, LOG_LEVEL: 'silent' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    const exited = new Promise<number | null>((res) => child.on('exit', res));
    const mine: number[] = [];
    while (!out.includes('ready')) await new Promise((r) => setTimeout(r, 20));
    for (let i = 0; i < 40; i++) mine.push((await append(ctx, `parent ${i}`)).index);
    assert.equal(await exited, 0);
    const theirs = JSON.parse(out.slice(out.indexOf('['))) as { index: number; verifierKey: string }[];
    assert.equal(theirs[0].verifierKey, logInfo(ctx).verifierKey);
    const idx = [...mine, ...theirs.map((t) => t.index)].sort((x, y) => x - y);
    assert.deepEqual(
      idx,
      Array.from({ length: 80 }, (_, i) => start + i),
    );
    const all: Buffer[] = [...leaves];
    for (let i = start; i < start + 80; i++) all.push(Buffer.from((await getEntry(ctx, i))!.leafHash, 'hex'));
    assert.deepEqual((await treeHead(ctx)).root, rootOfLeaves(all));
    // this process's cached frontier is stale now; it must notice and keep the tree right
    await append(ctx, 'x');
    all.push(leafHash(Buffer.from('x')));
    assert.deepEqual((await treeHead(ctx)).root, rootOfLeaves(all));
  });
});
