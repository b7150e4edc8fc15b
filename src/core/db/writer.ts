/**
 * The batch writer thread (SQLite in a file): batches of statements from the buffered logs (scan
 * events, the request log and its aggregates, the BQP call log) run here, each batch in one
 * immediate transaction on a connection of this thread, so neither the inserts nor the commit's
 * fsync hold up the server's event loop. Relaxed batches commit with synchronous = NORMAL (WAL: a
 * power cut may lose their last moments, a crash of the process cannot).
 *
 * In:  { id, statements: { sql, parameters }[], relaxed } | 'close'     Out: { id } | { id, error }
 */
import { parentPort, workerData } from 'node:worker_threads';
import SQLite from 'better-sqlite3';

interface Batch {
  id: number;
  statements: { sql: string; parameters: readonly unknown[] }[];
  relaxed: boolean;
}

const { file, sync } = workerData as { file: string; sync: 'FULL' | 'NORMAL' };
const db = new SQLite(file, { fileMustExist: true });
db.pragma('busy_timeout = 10000');
db.pragma(`synchronous = ${sync}`);
db.pragma('foreign_keys = ON');

const cache = new Map<string, SQLite.Statement>();
const prepare = (sql: string): SQLite.Statement => {
  let st = cache.get(sql);
  if (!st) {
    if (cache.size >= 200) cache.delete(cache.keys().next().value!);
    cache.set(sql, (st = db.prepare(sql)));
  }
  return st;
};
const run = db.transaction((b: Batch) => {
  for (const s of b.statements) prepare(s.sql).run(...s.parameters);
});

parentPort!.on('message', (m: Batch | 'close') => {
  if (m === 'close') {
    db.close();
    parentPort!.close();
    return;
  }
  const relaxed = m.relaxed && sync !== 'NORMAL';
  try {
    if (relaxed) db.pragma('synchronous = NORMAL');
    run.immediate(m);
    parentPort!.postMessage({ id: m.id });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, error: String((e as Error)?.message ?? e) });
  } finally {
    if (relaxed) db.pragma(`synchronous = ${sync}`);
  }
});
