/**
 * A pool of processing child processes (worker.ts): at most `size` photos are processed at once,
 * one per child; children are started on demand and kept for the next job (models stay loaded).
 * A child that dies mid-job rejects that job's promise; the next job starts a fresh child.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DomainError, ERROR_CODES, type ErrorCode } from '../../core/errors.js';
import type { ProcessOptions, ProcessResult } from './processors.js';
import type { Recipe } from './steps.js';

export interface PoolTask {
  id: string;
  input: Buffer;
  recipe: Recipe;
  options: ProcessOptions;
  /** progress, and where a run that reports nothing until it ends should be after `next.ms` */
  onProgress?: (p: number, next?: { to: number; ms: number }) => void;
  signal?: AbortSignal;
}

interface Slot {
  child: ChildProcess;
  busy: boolean;
  /** Resolves when the child listens for work (a message sent earlier could be lost); rejects if it dies first. */
  ready: Promise<void>;
}

/** Niceness of the processing children: below the server, so requests stay fast while a job runs. */
export const WORKER_NICE = 10;

/** The worker script next to this file: .ts under tsx (tests, dev), .js when built. */
const WORKER = fileURLToPath(new URL(`./worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

export class PhotoPool extends EventEmitter {
  private slots: Slot[] = [];
  private waiting: (() => void)[] = [];
  private closed = false;

  constructor(readonly size: number) {
    super();
  }

  /** Process ids of the live children (tests and operators may want to know). */
  pids(): number[] {
    return this.slots.map((s) => s.child.pid!).filter(Boolean);
  }

  private spawn(): Slot {
    // execArgv is inherited, so a server started under tsx starts TypeScript children too.
    const child = fork(WORKER, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    try {
      if (child.pid) setPriority(child.pid, WORKER_NICE);
    } catch {
      // not permitted here: run at normal priority
    }
    const ready = new Promise<void>((resolve, reject) => {
      const onMsg = (m: { type?: string }) => {
        if (m?.type !== 'ready') return;
        child.off('message', onMsg);
        child.off('exit', onExit);
        resolve();
      };
      const onExit = (code: number | null, sig: string | null) => {
        child.off('message', onMsg);
        reject(new Error(`photo worker process exited (${sig ?? `code ${code}`}) before it was ready`));
      };
      child.on('message', onMsg);
      child.once('exit', onExit);
    });
    ready.catch(() => {});
    const slot: Slot = { child, busy: false, ready };
    child.on('exit', () => {
      this.slots = this.slots.filter((s) => s !== slot);
      this.release();
    });
    child.on('error', () => {});
    this.slots.push(slot);
    return slot;
  }

  private release(): void {
    const next = this.waiting.shift();
    next?.();
  }

  private async acquire(signal?: AbortSignal): Promise<Slot> {
    for (;;) {
      if (this.closed) throw new DomainError('UNAVAILABLE', 'photo processing is shutting down');
      if (signal?.aborted) throw new Error('aborted');
      // a child killed by an abort is dying but may not have exited yet: never hand it the next job
      const idle = this.slots.find((s) => !s.busy && !s.child.killed && s.child.exitCode === null && s.child.signalCode === null);
      if (idle) {
        idle.busy = true;
        return idle;
      }
      if (this.slots.length < this.size) {
        const s = this.spawn();
        s.busy = true;
        return s;
      }
      await new Promise<void>((res) => this.waiting.push(res));
    }
  }

  async run(task: PoolTask): Promise<ProcessResult> {
    const slot = await this.acquire(task.signal);
    const { child } = slot;
    this.emit('start', task.id, child.pid);
    try {
      await slot.ready;
      return await new Promise<ProcessResult>((resolve, reject) => {
        const onMessage = (m: any) => {
          if (m?.id !== task.id) return;
          if (m.type === 'progress') task.onProgress?.(m.p, typeof m.to === 'number' && typeof m.ms === 'number' ? { to: m.to, ms: m.ms } : undefined);
          else if (m.type === 'done') {
            cleanup();
            const r = m.result as ProcessResult;
            resolve({ ...r, data: Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength) });
          } else if (m.type === 'error') {
            cleanup();
            const code = (ERROR_CODES as readonly string[]).includes(m.code) ? (m.code as ErrorCode) : 'PROCESSING_FAILED';
            reject(new DomainError(code, m.message));
          }
        };
        const onExit = (code: number | null, sig: string | null) => {
          cleanup();
          reject(new Error(`photo worker process exited (${sig ?? `code ${code}`}) while processing`));
        };
        const onAbort = () => {
          cleanup();
          child.kill('SIGKILL');
          reject(new Error('photo job aborted'));
        };
        const cleanup = () => {
          child.off('message', onMessage);
          child.off('exit', onExit);
          task.signal?.removeEventListener('abort', onAbort);
        };
        child.on('message', onMessage);
        child.on('exit', onExit);
        task.signal?.addEventListener('abort', onAbort, { once: true });
        if (task.signal?.aborted) return onAbort();
        child.send({ type: 'run', id: task.id, input: task.input, recipe: task.recipe, options: task.options });
      });
    } finally {
      slot.busy = false;
      this.release();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const exits = this.slots.map((s) => new Promise<void>((res) => (s.child.exitCode !== null || s.child.signalCode !== null ? res() : s.child.once('exit', () => res()))));
    for (const s of this.slots) s.child.kill('SIGKILL');
    for (const w of this.waiting.splice(0)) w();
    await Promise.all(exits);
  }
}
