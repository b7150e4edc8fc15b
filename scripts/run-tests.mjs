#!/usr/bin/env node
// Runs every test/**/*.test.ts with node's test runner (TypeScript through tsx).
//   node scripts/run-tests.mjs [--pg] [filter …]
// --cluster (implies --pg) runs them against two API servers and a worker on one database, requests
// alternating between the servers (test/cluster.ts).
// --pg runs the same suites on PostgreSQL (TEST_DATABASE_URL) and Redis (REDIS_URL); it refuses to
// start without them, so CI cannot pass by skipping. Filters keep files whose path contains one of them.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const args = process.argv.slice(2);
const cluster = args.includes('--cluster');
const pg = cluster || args.includes('--pg');
const filters = args.filter((a) => !a.startsWith('--'));
const root = new URL('..', import.meta.url).pathname;

/** The browser tests need dist/console: build it when it is missing or older than its sources. */
function buildConsoleIfStale() {
  const newest = (p) => (statSync(p).isDirectory() ? Math.max(0, ...readdirSync(p).map((n) => newest(join(p, n)))) : statSync(p).mtimeMs);
  const out = join(root, 'dist/console/index.html');
  const built = existsSync(out) ? statSync(out).mtimeMs : 0;
  if (built >= newest(join(root, 'console'))) return;
  console.log('building the console (dist/console is missing or stale)');
  const vite = join(root, 'node_modules/vite/bin/vite.js');
  const b = spawnSync(process.execPath, [vite, 'build', 'console', '--logLevel', 'warn'], { cwd: root, stdio: 'inherit' });
  if (b.status !== 0) process.exit(b.status ?? 1);
}

function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.test.ts') ? [p] : [];
  });
}

let files = walk(join(root, 'test')).sort();
if (files.some((f) => f.includes('/test/console/'))) buildConsoleIfStale();
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));
const env = { ...process.env };
if (pg) {
  if (!env.TEST_DATABASE_URL || !env.REDIS_URL) {
    console.error('--pg needs TEST_DATABASE_URL (a PostgreSQL server where test databases may be created) and REDIS_URL');
    process.exit(2);
  }
  env.MENHU_TEST_PG = '1';
  if (cluster) env.MENHU_TEST_CLUSTER = '1';
} else {
  delete env.TEST_DATABASE_URL;
  delete env.MENHU_TEST_PG;
}
// Files that need an external service say so in their name (*.pg.test.ts, *.s3.test.ts) and run where it exists.
if (!pg) files = files.filter((f) => !f.endsWith('.pg.test.ts'));
console.log(`running ${files.length} test files on ${cluster ? 'two API servers (+ a worker) behind a round-robin proxy, ' : ''}${pg ? 'PostgreSQL + Redis' : 'SQLite + in-process limits'}`);
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files.map((f) => relative(root, f))],
  { cwd: root, env, stdio: 'inherit' },
);
process.exit(r.status ?? 1);
