/** Shared by the benchmarks: servers in child processes that print one JSON line when listening. */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

export interface Child<T> {
  child: ChildProcess;
  info: T;
  lines: AsyncIterableIterator<string>;
  /** Sends a command line and reads one JSON answer line. */
  ask<R>(cmd: string): Promise<R>;
}

/**
 * Starts a server child. BENCH_SERVER_CPUS (a taskset list, e.g. `1`) pins it, and what it starts, to
 * those CPUs: with the load generator pinned elsewhere (`taskset -c 0 npm run bench -- …`), a 2-core
 * machine no longer mixes the two on one core at random.
 */
export async function startChild<T>(script: string, args: string[], env: Record<string, string> = {}): Promise<Child<T>> {
  // BENCH_PROF=<dir>: a V8 CPU profile of each child that exits by itself (written at exit)
  const prof = process.env.BENCH_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROF] : [];
  const argv = [process.execPath, ...prof, '--import', 'tsx', script, ...args];
  const pin = process.env.BENCH_SERVER_CPUS;
  const child = spawn(pin ? 'taskset' : argv[0], pin ? ['-c', pin, ...argv] : argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done) throw new Error(`${script} ${args.join(' ')} exited before listening`);
  return {
    child,
    info: JSON.parse(first.value) as T,
    lines,
    ask: async <R>(cmd: string) => {
      child.stdin!.write(cmd + '\n');
      return JSON.parse((await lines.next()).value as string) as R;
    },
  };
}

/** CPU seconds (user + system, all threads) a process has used so far; 0 where /proc cannot tell. */
export function cpuOf(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The benchmarked server's code: the tsc build in dist/, which is what `menhu serve` runs — unless
 * BENCH_SRC=1, which loads the TypeScript sources through tsx. (tsx compiles with esbuild's
 * keepNames: every closure made per request also runs a `__name` helper call, which the build has
 * not.) `server('server.js')` imports dist/server.js; types come from the sources.
 */
const fromSrc = process.env.BENCH_SRC === '1';
export const server = <T>(rel: string): Promise<T> => import(new URL(`../${fromSrc ? 'src' : 'dist'}/${rel}`, import.meta.url).href) as Promise<T>;

/** Rebuilds dist/ (tsc, no console) when a source file is newer than it; run by the parent before it starts servers. */
export function ensureBuilt(): void {
  if (fromSrc) return;
  const root = fileURLToPath(new URL('..', import.meta.url));
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((m, e) => Math.max(m, e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs), 0);
  const built = existsSync(join(root, 'dist/server.js')) ? statSync(join(root, 'dist/server.js')).mtimeMs : 0;
  if (built >= newest(join(root, 'src'))) return;
  console.log('building dist/ (tsc) so the benchmark runs what `menhu serve` runs …');
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
}
