/**
 * The `menhu` CLI as a user runs it (a child process on a temp data folder; on the --pg run on a
 * fresh PostgreSQL database): migrate, tenant, app, quota, serve --demo, and refusals.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freshPgDatabase, http, onPg } from '../helpers.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const MAIN = join(ROOT, 'src/cli/main.ts');

describe('menhu CLI', () => {
  let dir: string;
  let db: { url: string; drop(): Promise<void> } | null = null;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'menhu-cli-'));
    db = onPg ? await freshPgDatabase() : null;
  });
  after(async () => {
    await db?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = (extra: Record<string, string> = {}) => {
    const e: Record<string, string | undefined> = { ...process.env, MENHU_DATA: dir, DATABASE_URL: db?.url ?? '', LOG_LEVEL: 'warn', ...extra };
    for (const k of ['MENHU_MASTER_KEY', 'REDIS_URL', 'S3_BUCKET', 'PORT', 'MENHU_PUBLIC_URL']) if (!(k in extra)) delete e[k];
    return e;
  };
  const menhu = (args: string[], extra: Record<string, string> = {}) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: env(extra), encoding: 'utf8', timeout: 120_000 });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  const menhuAsync = (args: string[], extra: Record<string, string> = {}) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const c = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env: env(extra), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      c.stdout.on('data', (d) => (out += d));
      c.stderr.on('data', (d) => (err += d));
      const timer = setTimeout(() => c.kill('SIGKILL'), 120_000);
      c.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, out, err });
      });
    });
  const ok = (args: string[]) => {
    const r = menhu(args);
    assert.equal(r.code, 0, `menhu ${args.join(' ')}: ${r.err}`);
    return r.out;
  };

  let tenantId = 0;
  let appId = 0;

  it('migrates an empty data folder, then finds the schema up to date', () => {
    assert.match(ok(['migrate']), /^applied: 0001_kernel/);
    assert.match(ok(['migrate']), /schema is up to date/);
  });

  it('creates a tenant, and the master key once with mode 0600', () => {
    const t = JSON.parse(ok(['tenant', 'create', 'acme']));
    assert.equal(t.name, 'acme');
    tenantId = t.id;
    assert.ok(tenantId > 1);
    const keyFile = join(dir, 'master.key');
    assert.equal((statSync(keyFile).mode & 0o777).toString(8), '600');
    const key = readFileSync(keyFile, 'utf8');
    assert.match(key, /^[0-9a-f]{64}\n$/);
    ok(['tenant', 'create', 'globex']);
    assert.equal(readFileSync(keyFile, 'utf8'), key, 'the key is generated once');
  });

  it('creates, lists, rotates and blocks apps', async () => {
    const a = JSON.parse(ok(['app', 'create', '--tenant', String(tenantId), '--name', 'shop', '--services', 'native,cli', '--rate', '5', '--ip', '127.0.0.1,10.0.0.0/8']));
    appId = a.id;
    assert.equal(a.tenant_id, tenantId);
    assert.deepEqual(a.services, ['native', 'cli']);
    assert.deepEqual(a.ip_allow, ['127.0.0.1', '10.0.0.0/8']);
    assert.equal(a.rate_limit, 5);
    assert.match(a.secret, /^[0-9a-f]{32}$/);
    const fixed = JSON.parse(ok(['app', 'create', '--tenant', String(tenantId), '--name', 'fixed', '--services', 'mininglamp', '--key', 'test', '--secret', 'test']));
    assert.equal(fixed.key, 'test');
    assert.equal(fixed.secret, 'test');

    const list = ok(['app', 'list', '--tenant', String(tenantId)]);
    const lines = list.trim().split('\n');
    assert.equal(lines.length, 2);
    assert.match(lines[0], new RegExp(`^${appId}\\ttenant ${tenantId}\\t${a.key}\\tnative,cli\\tactive\\tshop$`));
    assert.ok(!list.includes(a.secret), 'list shows no secrets');

    const r = JSON.parse(ok(['app', 'rotate', String(appId), '--grace', '60']));
    assert.equal(r.key, a.key);
    assert.notEqual(r.secret, a.secret);
    const until = Date.parse(r.previous_valid_until);
    assert.ok(Math.abs(until - (Date.now() + 60_000)) < 30_000, r.previous_valid_until);

    assert.match(ok(['app', 'block', String(appId)]), new RegExp(`app ${appId} blocked`));
    assert.match(ok(['app', 'list', '--tenant', String(tenantId)]), /\tBLOCKED\tshop/);
    assert.match(ok(['app', 'block', String(appId), '--unblock']), new RegExp(`app ${appId} unblocked`));
  });

  it('prints its usage for help, --help and -h, with status 0', () => {
    for (const a of ['help', '--help', '-h']) {
      const r = menhu([a]);
      assert.equal(r.code, 0, `${a}: ${r.err}`);
      assert.match(r.out, /^usage: menhu <command> \[options\]$/m, a);
    }
  });

  it('tops up quotas', () => {
    assert.deepEqual(JSON.parse(ok(['quota', 'add', '--tenant', String(tenantId), '--service', 'fangtang', '--units', '5'])), { tenant_id: tenantId, service: 'fangtang', remaining: 5 });
    assert.equal(JSON.parse(ok(['quota', 'add', '--tenant', String(tenantId), '--service', 'fangtang', '--units', '-2'])).remaining, 3);
    assert.equal(JSON.parse(ok(['quota', 'add', '--tenant', String(tenantId), '--service', 'fangtang', '--units=-1'])).remaining, 2);
  });

  it('refuses bad commands and malformed settings with a message and status 2, never a stack trace', async () => {
    const cases: [string[], RegExp, Record<string, string>?][] = [
      [['app', 'create', '--name', 'x'], /--tenant is required/],
      [['app', 'create', '--tenant', '999999', '--name', 'x'], /NOT_FOUND: no tenant 999999/],
      [['app', 'rotate', '999999'], /NOT_FOUND/],
      [['quota', 'add', '--tenant', '999999', '--service', 's', '--units', '1'], /no tenant 999999/],
      [['quota', 'add', '--tenant', String(tenantId), '--service', 'fangtang', '--units', '-100'], /VALIDATION: a quota cannot go below zero/],
      [['frobnicate'], /unknown command "frobnicate"/],
      // settings: the process refuses to start and names the setting
      [['serve', '--port', '0'], /configuration: MENHU_MASTER_KEY is malformed: a master key is 32 bytes/, { MENHU_MASTER_KEY: 'ab'.repeat(31) }],
      [['serve'], /configuration: PORT must be a non-negative integer/, { PORT: 'eighty' }],
      [['serve', '--port', '0'], /MENHU_TRUST_PROXY must be true or false/, { MENHU_TRUST_PROXY: 'perhaps' }],
    ];
    // independent: run them side by side
    const results = await Promise.all(cases.map(([args, , extra]) => menhuAsync(args, extra)));
    cases.forEach(([args, msg], i) => {
      const r = results[i];
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}${r.out}`);
      assert.match(r.err, msg, args.join(' '));
      assert.ok(!/\n\s+at /.test(r.err), `stack trace for ${args.join(' ')}: ${r.err}`);
    });
  });

  it('serve --demo starts, prints where everything is and the demo credentials, and answers', async () => {
    const demoDir = mkdtempSync(join(tmpdir(), 'menhu-demo-'));
    const demoDb = onPg ? await freshPgDatabase() : null;
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--demo', '--port', '0', '--data', demoDir], {
      cwd: ROOT,
      env: env({ DATABASE_URL: demoDb?.url ?? '', MENHU_DATA: demoDir }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    try {
      const t0 = Date.now();
      while (!/operator +Authorization/.test(out)) {
        if (child.exitCode !== null || Date.now() - t0 > 120_000) assert.fail(`serve did not start: ${err}${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const base = /menhu is listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      assert.ok(base, out);
      assert.ok(!base.endsWith(':0'));
      for (const want of [
        `data folder     ${demoDir}`,
        `${base}/rest/v1/openapi.json`,
        `${base}/healthz`,
        'user=test passcode=test',
        'third_code=hiliad secret=hiliad (100 uploads)',
        'api_key=CLb87ea759f877622c secret=ddb42b7299b90cb5e0fd6c41e154c15d',
        'developer admin/admin (admin)',
        'Basic test:1234, _sign secret demo',
      ]) {
        assert.ok(out.includes(want), `banner lacks ${JSON.stringify(want)}:\n${out}`);
      }
      const health = await http(base + '/healthz');
      assert.equal(health.status, 200);
      assert.equal(health.json.database, onPg ? 'postgres' : 'sqlite');
      const native = /native +Authorization: Bearer (\S+)/.exec(out)![1];
      const me = await http(base + '/rest/v1/me', { headers: { authorization: `Bearer ${native}` } });
      assert.equal(me.status, 200, me.text);
      assert.equal(me.json.tenant.name, 'demo');
      const login = await http(base + '/rest/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"username":"admin","password":"admin"}' });
      assert.equal(login.status, 201);
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (c) => r(c))));
      assert.equal(code, 0, err);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await demoDb?.drop();
      rmSync(demoDir, { recursive: true, force: true });
    }
  });
});
