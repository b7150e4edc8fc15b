/**
 * Crash safety: the real server as a child process, kill -9 in the middle of a transfer load,
 * restart on the same data, then: the ledger invariants hold (checked by `menhu ledger audit` in
 * another process), every answered transfer is still there, and retrying every request with its
 * idempotency key pays nothing twice.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freshPgDatabase, http, jsonBody, onPg } from '../helpers.js';

const root = new URL('../..', import.meta.url).pathname;
const CLI = ['--import', 'tsx', join(root, 'src/cli/main.ts')];

/** Resolves when the child has exited (at once if it already has). */
function exited(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
  return new Promise((r) => c.once('exit', () => r()));
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

describe('crash: kill -9 during a transfer load', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'menhu-crash-'));
  let env: Record<string, string>;
  let drop: (() => Promise<void>) | undefined;
  let child: ChildProcess | null = null;
  let url = '';

  async function start(): Promise<void> {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, [...CLI, 'serve'], { cwd: root, env: { ...env, PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] });
    for (let i = 0; i < 300; i++) {
      try {
        if ((await fetch(`${url}/healthz`)).ok) return;
      } catch {
        /* not up yet */
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('server did not start');
  }
  function cli(...args: string[]): unknown {
    const r = spawnSync(process.execPath, [...CLI, ...args], { cwd: root, env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  }

  before(async () => {
    const db = onPg ? await freshPgDatabase() : null;
    drop = db?.drop;
    env = {
      PATH: process.env.PATH ?? '',
      MENHU_DATA: dataDir,
      MENHU_MASTER_KEY: randomBytes(32).toString('hex'),
      DATABASE_URL: db?.url ?? '',
      LOG_LEVEL: 'error',
      MENHU_JOB_CONCURRENCY: '0',
    };
    await start();
  });
  after(async () => {
    child?.kill('SIGKILL');
    await drop?.();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps every answered transfer, loses no money, and pays no retry twice', async () => {
    assert.equal((await http(`${url}/v1/users/reg/`, jsonBody({ username: 'crash', password: 'crashpw' }))).json.errcode, 0);
    const token = (await http(`${url}/v1/users/login/`, jsonBody({ username: 'crash', password: 'crashpw' }))).json.result.token;
    const auth = { authorization: `Bearer ${token}` };
    assert.equal((await http(`${url}/v1/app/add/`, jsonBody({ appname: 'crash' }, auth))).json.errcode, 0);
    const appkey = (await http(`${url}/v1/app/list/`, jsonBody({}, auth))).json.result[0].appkey;
    const ext = (path: string, body: unknown, h: Record<string, string> = {}) => http(`${url}/v1${path}`, jsonBody(body, { appkey, ...h }));
    // the operator funds the developer from another process while the server runs
    assert.equal((cli('ledger', 'fund', 'crash', '1000', '--key', 'crash-fund') as { amount: string }).amount, '1000');
    const W = 4;
    for (let i = 0; i < W; i++) {
      assert.equal((await ext('/transactions/createwallet/', { username: `c${i}`, pay_password: `p${i}` })).json.errcode, 0);
      assert.equal((await ext('/transactions/paytouser/', { is_developer: true, recv_user: `c${i}`, amount: '100' })).json.errcode, 0);
    }

    const jobs = Array.from({ length: 4000 }, (_, i) => ({ key: `crash-${i}`, body: { send_user: `c${i % W}`, pay_password: `p${i % W}`, recv_user: `c${(i * 3 + 1) % W}`, amount: `0.${String(1 + (i % 97)).padStart(2, '0')}` } }));
    const answered = new Map<string, string>();
    const attempted: typeof jobs = [];
    let next = 0;
    let killed = false;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (!killed && next < jobs.length) {
          const j = jobs[next++];
          attempted.push(j);
          try {
            const pending = ext('/transactions/paytouser/', j.body, { 'idempotency-key': j.key });
            if (answered.size >= 100 && !killed) {
              // in the middle of the load, with this request (at least) not yet answered: the group commit
              // can answer a whole round of requests in one tick, leaving none in flight at that moment
              killed = true;
              child!.kill('SIGKILL');
            }
            const r = await pending;
            if (r.json?.errcode === 0) answered.set(j.key, r.headers.get('x-ulord-txid')!);
          } catch {
            /* connection reset by the kill */
          }
        }
      }),
    );
    assert.ok(killed);
    await exited(child!);
    await start();

    // every answered transfer survived the crash
    for (const [key, txid] of answered) {
      const j = jobs.find((x) => x.key === key)!;
      const r = await ext('/transactions/paytouser/', j.body, { 'idempotency-key': key });
      assert.equal(r.json.errcode, 0, r.text);
      assert.equal(r.headers.get('idempotent-replayed'), 'true', `${key} was answered before the crash, so it is a replay`);
      assert.equal(r.headers.get('x-ulord-txid'), txid);
    }
    // retrying the unanswered ones pays each at most once
    const unanswered = attempted.filter((j) => !answered.has(j.key));
    assert.ok(unanswered.length > 0);
    let paidOnRetry = 0;
    for (const j of unanswered) {
      const r1 = await ext('/transactions/paytouser/', j.body, { 'idempotency-key': j.key });
      const r2 = await ext('/transactions/paytouser/', j.body, { 'idempotency-key': j.key });
      assert.ok([0, 20206].includes(r1.json.errcode), r1.text);
      if (r1.json.errcode === 0) {
        paidOnRetry++;
        assert.equal(r2.headers.get('x-ulord-txid'), r1.headers.get('x-ulord-txid'));
      }
    }
    child!.kill('SIGKILL');
    await exited(child!);
    child = null;

    const audit = cli('ledger', 'audit') as { ok: boolean; issued: string; held: string; mismatched: number[]; negative: number[]; transfers: number };
    assert.equal(audit.ok, true, JSON.stringify(audit));
    assert.equal(audit.issued, '1000');
    assert.equal(audit.held, '1000');
    // exactly one row per paid key: the funding, the W wallet top-ups, the answered and the retried ones
    assert.equal(audit.transfers, 1 + W + answered.size + paidOnRetry);
  });
});
