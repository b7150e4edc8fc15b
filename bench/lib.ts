/** Shared by the benchmarks: servers in child processes that print one JSON line when listening. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Child<T> {
  child: ChildProcess;
  info: T;
  lines: AsyncIterableIterator<string>;
  /** Sends a command line and reads one JSON answer line. */
  ask<R>(cmd: string): Promise<R>;
}

export async function startChild<T>(script: string, args: string[], env: Record<string, string> = {}): Promise<Child<T>> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
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

export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
