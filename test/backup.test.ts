import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pino } from 'pino';
import { backup, restore, verifyBackup } from '../src/core/backup.js';
import { loadConfig } from '../src/core/config.js';
import { createApp, findApp } from '../src/core/credentials/apps.js';
import { closePlatform, createPlatform } from '../src/platform.js';
import { onPg, startPlatform } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'menhu-backup-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('backup refuses the scaled profile and explains what to use', { skip: !onPg && 'runs on PostgreSQL' }, async () => {
  const p = await startPlatform();
  try {
    await assert.rejects(backup(p.config, join(tmp, 'pg')), /pg_dump/);
  } finally {
    await p.close();
  }
});

test('online backup while writing, then restore into a new folder: data, blobs and secrets come back', { skip: onPg && 'embedded profile only' }, async () => {
  // master key generated into the data folder (no MENHU_MASTER_KEY), as on a real embedded install
  const p = await startPlatform({ env: { MENHU_MASTER_KEY: '' } });
  const dest = join(tmp, 'b1');
  try {
    const app = await createApp(p.ctx, { tenantId: 1, name: 'kept', services: ['native'] });
    await p.ctx.blobs.put('test/a.bin', Buffer.from('hello backup'));
    // writes continue during the backup
    let writing = true;
    const writer = (async () => {
      let i = 0;
      while (writing) {
        await createApp(p.ctx, { tenantId: 1, name: `w${i++}`, services: ['native'] });
        await new Promise((r) => setImmediate(r)); // let the backup's steps run, as request I/O would
      }
    })();
    const m = await backup(p.config, dest);
    writing = false;
    await writer;
    assert.ok(m.files.some((f) => f.path === 'menhu.sqlite'));
    assert.ok(m.files.some((f) => f.path === 'master.key'));
    assert.ok(m.files.some((f) => f.path.startsWith('blobs/')));
    assert.equal(statSync(join(dest, 'master.key')).mode & 0o777, 0o600);
    await verifyBackup(dest);

    const target = join(tmp, 'restored');
    const cfg = loadConfig({ MENHU_DATA: target, LOG_LEVEL: 'silent' }, { port: 0, jobConcurrency: 0 });
    await restore(cfg, dest);
    const ctx = await createPlatform(cfg, { log: pino({ level: 'silent' }) });
    try {
      const back = await findApp(ctx, app.key, 'native');
      assert.ok(back, 'app restored');
      assert.equal(back!.secret, app.secret, 'secret decrypts with the restored master key');
      assert.equal((await ctx.blobs.get('test/a.bin')).data.toString(), 'hello backup');
    } finally {
      await closePlatform(ctx);
    }
    // restoring again over a non-empty folder is refused, and leaves it alone
    await assert.rejects(restore(cfg, dest), /not empty/);
  } finally {
    await p.close();
  }
});

test('a corrupt or incomplete backup is refused before anything is written', { skip: onPg && 'embedded profile only' }, async () => {
  const p = await startPlatform();
  const dest = join(tmp, 'b2');
  try {
    await p.ctx.blobs.put('x/y', Buffer.from('payload'));
    await backup(p.config, dest);
  } finally {
    await p.close();
  }
  const blob = join(dest, 'blobs', 'x', 'y');
  writeFileSync(blob, 'tampered');
  const target = join(tmp, 'r2');
  const cfg = loadConfig({ MENHU_DATA: target }, {});
  await assert.rejects(restore(cfg, dest), /does not match the manifest/);
  assert.throws(() => statSync(target), 'nothing written');
  rmSync(join(dest, 'manifest.json'));
  await assert.rejects(verifyBackup(dest), /not a complete menhu backup/);
  await assert.rejects(backup(p.config, dest), /not empty/);
});

test('menhu backup / restore / check from the command line', { skip: onPg && 'embedded profile only' }, async () => {
  const data = join(tmp, 'cli-data');
  const env = { ...process.env, MENHU_DATA: data, LOG_LEVEL: 'silent', MENHU_MASTER_KEY: '' };
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { env, encoding: 'utf8' });
  assert.equal(run('migrate').status, 0);
  const t = run('tenant', 'create', 'acme');
  assert.equal(t.status, 0, t.stderr);
  const b = run('backup', join(tmp, 'cli-b'));
  assert.equal(b.status, 0, b.stderr);
  assert.match(b.stdout, /backup written/);
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'restore', join(tmp, 'cli-b')], { env: { ...env, MENHU_DATA: join(tmp, 'cli-r') }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /integrity checks passed/);
  assert.ok(readFileSync(join(tmp, 'cli-r', 'master.key')).length > 0);
  const bad = run('restore', join(tmp, 'cli-b'));
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /not empty/);
});
