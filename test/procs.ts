/**
 * Real menhu processes for the fault tests: `menhu serve` / `menhu worker` (node --import tsx
 * src/cli/main.ts …) on free loopback ports, killed with SIGKILL or stopped, their output kept.
 * Every process started here is killed when the test process exits, whatever happened.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts');
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  /** stdout and stderr so far */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<number | string>;
  /** SIGKILL, then waits for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful), SIGKILL after `ms`. */
  stop(ms?: number): Promise<void>;
}

/** Environment of a menhu process: a data folder, a master key, no Redis unless given, warn logs. */
export function menhuEnv(over: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('MENHU_') && !['DATABASE_URL', 'REDIS_URL', 'PORT'].includes(k)) env[k] = v;
  return { LOG_LEVEL: 'warn', DATABASE_URL: '', REDIS_URL: '', ...over };
}

export const testMasterKey = (): string => randomBytes(32).toString('hex');

/** Starts `menhu <args…>` with exactly `env` (see menhuEnv). */
export function spawnMenhu(args: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | string>((res) =>
    child.on('exit', (code, sig) => {
      live.delete(child);
      res(code ?? sig ?? 'unknown');
    }),
  );
  const p: Proc = {
    child,
    pid: child.pid!,
    output: () => out,
    exited,
    kill9: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    stop: async (ms = 5000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), ms);
      await exited;
      clearTimeout(t);
    },
  };
  return p;
}

export interface ServeProc extends Proc {
  url: string;
  port: number;
}

/** Polls GET url until it answers (any status) or `ms` pass. */
export async function waitUp(url: string, p: Proc, ms = 90_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`menhu exited before answering:\n${p.output()}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      return;
    } catch {
      if (Date.now() - t0 > ms) throw new Error(`menhu did not answer ${url} within ${ms} ms:\n${p.output()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** `menhu serve` on a free port (or `port`: a restart keeps its address); resolves once /healthz answers. */
export async function startServe(env: Record<string, string>, port?: number): Promise<ServeProc> {
  const prt = port ?? (await freePort());
  const url = `http://127.0.0.1:${prt}`;
  const p = spawnMenhu(['serve'], { MENHU_JOB_CONCURRENCY: '0', ...env, PORT: String(prt), MENHU_PUBLIC_URL: url });
  await waitUp(`${url}/healthz`, p);
  return { ...p, url, port: prt };
}

/** `menhu worker`; resolves once it logged that it started (needs LOG_LEVEL info or lower). */
export async function startWorker(env: Record<string, string>, concurrency = 1, ms = 90_000): Promise<Proc> {
  const p = spawnMenhu(['worker', '--concurrency', String(concurrency)], { ...env, LOG_LEVEL: 'info' });
  const t0 = Date.now();
  while (!p.output().includes('worker started')) {
    if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`menhu worker exited:\n${p.output()}`);
    if (Date.now() - t0 > ms) throw new Error(`menhu worker did not start within ${ms} ms:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return p;
}
