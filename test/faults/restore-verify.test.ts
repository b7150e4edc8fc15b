/**
 * Restore-then-verify (issue 9): reports are committed, updated and recalled on a live embedded
 * server; `menhu backup` runs against it while it serves, `menhu restore` puts the backup in a new
 * data folder and runs the integrity checks; every report version of the restored folder verifies
 * against the restored log (inclusion proof against its latest signed checkpoint) and its bytes
 * hash to the registered SHA-256. Then the checks are shown to catch damage: a changed blob and a
 * changed log entry are each reported by `menhu check`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import SQLite from 'better-sqlite3';
import { pino } from 'pino';
import { loadConfig } from '../../src/core/config.js';
import { createApp } from '../../src/core/credentials/apps.js';
import { checkpointCovering, getEntry, inclusionProof, leafHash, logInfo, openCheckpoint, treeHead, verifyInclusion } from '../../src/core/tlog/index.js';
import { closePlatform, createPlatform } from '../../src/platform.js';
import { createTenant } from '../../src/services/accounts/index.js';
import { onPg, startServer, type TestServer } from '../helpers.js';
import { moduleProblems } from './env.js';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const tmp = mkdtempSync(join(tmpdir(), 'menhu-restore-'));
let s: TestServer | undefined;
after(async () => {
  await s?.close();
  rmSync(tmp, { recursive: true, force: true });
});

it('backup of a live server, restore, then every report still verifies against the log; damage is caught', { skip: onPg && 'embedded profile (SQLite): runs in the default suite', timeout: 180_000 }, async () => {
  s = await startServer();
  const t = await createTenant(s.ctx, 'restored');
  const ml = await createApp(s.ctx, { tenantId: Number(t.id), name: 'ml', services: ['mininglamp'] });
  const call = async (op: string, id: string, body?: Buffer) => {
    const form = new FormData();
    for (const [k, v] of Object.entries({ user: ml.key, passcode: ml.secret, title: `t ${id}`, type: 'q', period: '2026', geom: 'g' })) form.set(k, v);
    if (body) form.set('file', new Blob([body], { type: 'application/pdf' }), `${id}.pdf`);
    const r = await fetch(`${s!.url}/api/v1/${op}/${id}`, { method: 'POST', body: form });
    return r.text();
  };
  const sent = new Map<string, string>(); // sha256 → report id
  const pdf = (id: string, v: number) => {
    const b = Buffer.from(`%PDF-1.4 ${id} v${v} ${'.'.repeat(v * 100)}`);
    sent.set(createHash('sha256').update(b).digest('hex'), id);
    return b;
  };
  for (let i = 0; i < 12; i++) assert.equal(await call('commitreport', `rep-${i}`, pdf(`rep-${i}`, 1)), '200 DATA_UPDATED');
  for (let i = 0; i < 6; i++) assert.equal(await call('updatereport', `rep-${i}`, pdf(`rep-${i}`, 2)), '200 DATA_UPDATED');
  for (let i = 0; i < 3; i++) assert.equal(await call('recallreport', `rep-${i}`), '200 DATA_RECALLED');

  const env = { ...process.env, LOG_LEVEL: 'silent', MENHU_MASTER_KEY: s.config.masterKey, DATABASE_URL: '', REDIS_URL: '' };
  const cli = (data: string, ...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { env: { ...env, MENHU_DATA: data }, encoding: 'utf8' });
  // online: the server keeps taking commits while the backup runs
  const bdir = join(tmp, 'backup');
  const writes = (async () => {
    for (let i = 12; i < 16; i++) await call('commitreport', `rep-${i}`, pdf(`rep-${i}`, 1));
  })();
  const b = cli(s.dataDir, 'backup', bdir);
  await writes;
  assert.equal(b.status, 0, b.stderr);

  const rdir = join(tmp, 'restored');
  const r = cli(rdir, 'restore', bdir);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /integrity checks passed \(.*reports.*\)/);
  assert.match(r.stdout, /ledger/);

  const ctx = await createPlatform(loadConfig({ MENHU_DATA: rdir, MENHU_MASTER_KEY: s.config.masterKey }, { port: 0, jobConcurrency: 0 }), { log: pino({ level: 'silent' }) });
  try {
    const versions = await ctx.db.kysely
      .selectFrom('report_versions as v')
      .innerJoin('reports as r', 'r.id', 'v.report_pk')
      .select(['r.report_id', 'v.version', 'v.file_key', 'v.file_sha256', 'v.tlog_index'])
      .orderBy('v.id')
      .execute();
    assert.ok(versions.length >= 18, `${versions.length} versions restored`);
    const cp = await checkpointCovering(ctx, (await treeHead(ctx)).size);
    const signed = openCheckpoint(cp.note, logInfo(ctx).verifierKey, logInfo(ctx).origin);
    for (const v of versions) {
      assert.equal(sent.get(v.file_sha256), v.report_id, 'restored version is one that was sent');
      const entry = (await getEntry(ctx, Number(v.tlog_index)))!;
      const { proof } = await inclusionProof(ctx, Number(v.tlog_index), signed.size);
      verifyInclusion(Number(v.tlog_index), signed.size, leafHash(Buffer.from(entry.data, 'utf8')), proof, signed.root);
      const { data } = await ctx.blobs.get(v.file_key);
      assert.equal(createHash('sha256').update(data).digest('hex'), v.file_sha256);
    }
    assert.deepEqual(await moduleProblems(ctx), []);
    // damage 1: a report's bytes change on disk
    writeFileSync(join(rdir, 'blobs', versions[0].file_key), 'changed');
    const p1 = await moduleProblems(ctx);
    assert.equal(p1.length, 1, p1.join('\n'));
    assert.match(p1[0], /^reports: report rep-0 .*the stored bytes do not hash to the registered SHA-256/);
  } finally {
    await closePlatform(ctx);
  }
  // damage 2: a log entry is rewritten in the database (its leaf hash no longer matches, the tree no longer gives the signed root)
  const db = new SQLite(join(rdir, 'menhu.sqlite'));
  db.prepare(`update tlog_entries set data = replace(data, '"version":2', '"version":3') where idx = (select min(tlog_index) from report_versions where version = 2)`).run();
  db.close();
  const c = cli(rdir, 'check');
  assert.notEqual(c.status, 0);
  assert.match(c.stderr, /PROBLEM tlog: entry \d+ has a leaf hash that is not H\(0x00/);
  assert.match(c.stderr, /PROBLEM reports: report rep-0 .*stored bytes do not hash/);
  assert.match(c.stderr, /PROBLEM reports: .*log entry \d+ says something else/);
});
