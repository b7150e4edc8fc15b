/**
 * The processing child process. The server forks it (pool.ts) so model inference never blocks the
 * server's event loop and a crash in native code takes down only this process: the job's attempt
 * fails and the kernel's job system retries it once, then fails and refunds it.
 *
 * Messages in:  { type: 'run', id, input: Buffer, recipe, options }
 * Messages out: { type: 'progress', id, p } | { type: 'done', id, result } | { type: 'error', id, code, message }
 */
import { isDomainError } from '../../core/errors.js';
import { processPhoto, type ProcessOptions } from './processors.js';
import type { Recipe } from './steps.js';

interface RunMessage {
  type: 'run';
  id: string;
  input: Uint8Array;
  recipe: Recipe;
  options: ProcessOptions;
}

const send = (m: unknown): void => {
  process.send?.(m);
};

process.on('message', (m: RunMessage) => {
  if (m?.type !== 'run') return;
  const input = Buffer.from(m.input.buffer, m.input.byteOffset, m.input.byteLength);
  // each progress report is a write on the server: at most one per whole percent and 500 ms,
  // except the steps' own marks (10 % and up to it, 95 % and beyond) and announced runs
  let last = -1;
  let lastAt = 0;
  processPhoto(input, m.recipe, m.options, (p, next) => {
    const pct = Math.round(p * 100);
    const now = performance.now();
    if (next || (pct !== last && (pct <= 10 || pct >= 95 || now - lastAt >= 500))) {
      last = pct;
      lastAt = now;
      send({ type: 'progress', id: m.id, p, ...(next ? { to: next.to, ms: next.ms } : {}) });
    }
  }).then(
    (result) => send({ type: 'done', id: m.id, result }),
    (e: unknown) => send({ type: 'error', id: m.id, code: isDomainError(e) ? e.code : 'PROCESSING_FAILED', message: e instanceof Error ? e.message : String(e) }),
  );
});

// The parent going away ends this process too.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
