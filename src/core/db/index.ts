import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { Worker } from 'node:worker_threads';
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { ConfigError } from '../config.js';
import { migrationsFor, type SqlDialect } from './migrations.js';
import type { DB } from './schema.js';

export type { DB } from './schema.js';
export type { SqlDialect } from './migrations.js';
export type Executor = Kysely<DB> | Transaction<DB>;

// int8 (bigint) columns hold epoch milliseconds and integer amounts. They come back from pg as
// strings; turn them into numbers, refusing any that a double cannot hold exactly.
pg.types.setTypeParser(20, (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`int8 value ${v} exceeds 2^53; read it as text`);
  return n;
});

export interface TxOptions {
  /**
   * The commit may wait for the next durable one instead of syncing to disk itself (SQLite WAL:
   * `synchronous = NORMAL` for this transaction: a power cut can lose it, a crash of the process
   * cannot). For high-volume data that may lose its last moments, such as scan events.
   */
  relaxed?: boolean;
}

export interface Database {
  kysely: Kysely<DB>;
  dialect: SqlDialect;
  /**
   * Runs fn in one write transaction. On SQLite it is BEGIN IMMEDIATE on the single connection
   * (writers queue instead of failing on lock upgrade); on PostgreSQL a pooled transaction.
   */
  tx<T>(fn: (trx: Kysely<DB>) => Promise<T>, opts?: TxOptions): Promise<T>;
  /**
   * Runs a batch of statements in one transaction, for buffered writes that nothing waits to read
   * back at once (scan events, the request log, the call log). SQLite in a file: on the batch writer
   * thread (writer.ts), so the inserts and the commit never block the event loop; otherwise a
   * transaction on this connection. Batches run in the order given; rejects if the batch was not stored.
   * An empty batch gets the writer ready (starts its thread) so that the first real one does not wait for it.
   */
  batch(statements: readonly Pick<CompiledQuery, 'sql' | 'parameters'>[], opts?: TxOptions): Promise<void>;
  /** `for update` where the engine has row locks; SQLite's immediate transaction already serialises writers. */
  forUpdate<Q extends { forUpdate(): Q }>(q: Q): Q;
  close(): Promise<void>;
}

export interface OpenOptions {
  databaseUrl: string;
  dataDir: string;
  /** SQLite `synchronous`: FULL (default, every commit durable) or NORMAL. */
  sqliteSync?: 'FULL' | 'NORMAL';
  poolSize?: number;
}

/** The SQLite file a configuration names (for extra read-only connections to the same database). */
export function sqliteFile(opts: Pick<OpenOptions, 'databaseUrl' | 'dataDir'>): string {
  return opts.databaseUrl.replace(/^(sqlite:|file:)(\/\/)?/, '') || join(opts.dataDir, 'menhu.sqlite');
}

export function openDatabase(opts: OpenOptions): Database {
  if (opts.databaseUrl && /^postgres(ql)?:/.test(opts.databaseUrl)) {
    // A connection attempt that hangs (server unreachable) fails after 10 s instead of holding a request forever.
    const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: opts.poolSize ?? 10, connectionTimeoutMillis: 10_000 });
    // An idle client erroring (server restart) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    // Nor may a checked-out client between two queries of a transaction (pg-pool only listens on idle
    // ones): its connection error is emitted with no listener, which would kill the process. The next
    // query on it fails ("not queryable") and the pool drops it on release.
    pool.on('connect', (client) => client.on('error', () => {}));
    const kysely = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
    const tx: Database['tx'] = (fn) => kysely.transaction().execute((trx) => fn(trx));
    return {
      kysely,
      dialect: 'postgres',
      tx,
      batch: (statements, o) => batchInTx(tx, statements, o),
      forUpdate: (q) => q.forUpdate(),
      close: () => kysely.destroy(),
    };
  }
  if (opts.databaseUrl && !/^(sqlite:|file:)/.test(opts.databaseUrl)) {
    throw new ConfigError(`DATABASE_URL must start with postgres:// or sqlite: (got ${opts.databaseUrl.split(':')[0]}:…)`);
  }
  const file = sqliteFile(opts);
  if (file === join(opts.dataDir, 'menhu.sqlite')) mkdirSync(opts.dataDir, { recursive: true });
  const sqlite = new SQLite(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`synchronous = ${opts.sqliteSync ?? 'FULL'}`);
  sqlite.pragma('busy_timeout = 10000');
  sqlite.pragma('foreign_keys = ON');
  const kysely = new Kysely<DB>({ dialect: new SqliteDialect({ database: withStatementCache(sqlite) }) });
  const reader = file.includes(':memory:') ? null : lazyReader(file);
  if (reader) readers.set(kysely, reader.read);
  const writer = file.includes(':memory:') ? null : new BatchWriter(file, opts.sqliteSync ?? 'FULL');
  // Kysely's SQLite driver holds one connection behind a mutex, so connection() serialises
  // whole transactions in this process; BEGIN IMMEDIATE serialises them across processes.
  const tx: Database['tx'] = (fn, txOpts) =>
      kysely.connection().execute(async (conn) => {
        const relaxed = txOpts?.relaxed && sqlite.pragma('synchronous', { simple: true }) !== 1;
        if (relaxed) sqlite.pragma('synchronous = NORMAL');
        try {
          await sql`begin immediate`.execute(conn);
          try {
            const out = await fn(conn);
            await sql`commit`.execute(conn);
            return out;
          } catch (e) {
            await sql`rollback`.execute(conn).catch(() => {});
            throw e;
          }
        } finally {
          if (relaxed) sqlite.pragma(`synchronous = ${opts.sqliteSync ?? 'FULL'}`);
        }
      });
  return {
    kysely,
    dialect: 'sqlite',
    tx,
    batch: (statements, o) => (writer ? writer.write(statements, !!o?.relaxed) : batchInTx(tx, statements, o)),
    forUpdate: (q) => q,
    close: async () => {
      await writer?.close();
      readers.delete(kysely);
      reader?.close();
      await kysely.destroy();
    },
  };
}

async function batchInTx(tx: Database['tx'], statements: readonly Pick<CompiledQuery, 'sql' | 'parameters'>[], opts?: TxOptions): Promise<void> {
  if (!statements.length) return;
  await tx(async (trx) => {
    for (const q of statements) await trx.executeQuery(CompiledQuery.raw(q.sql, [...q.parameters]));
  }, opts);
}

/**
 * The client of the batch writer thread (writer.ts): started on the first batch, kept while the
 * database is open. It holds the process open only while a batch is in flight. A thread that dies
 * fails its batches (their callers log them as lost) and is replaced on the next batch.
 */
class BatchWriter {
  private worker: Worker | null = null;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private readonly inFlight = new Set<Promise<void>>();
  private seq = 0;

  constructor(
    private readonly file: string,
    private readonly sync: 'FULL' | 'NORMAL',
  ) {}

  private start(): Worker {
    // .js when built; under tsx (tests, dev) the .ts file, and the thread registers tsx's loader
    // itself first (a worker thread does not get the --import hooks of its process)
    const ts = import.meta.url.endsWith('.ts');
    const url = new URL(`./writer${ts ? '.ts' : '.js'}`, import.meta.url);
    const workerData = { file: this.file, sync: this.sync };
    const w = ts
      ? new Worker(`import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`, { eval: true, workerData })
      : new Worker(url, { workerData });
    w.unref();
    w.on('message', (m: { id: number; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) w.unref();
      if (m.error) p.reject(new Error(m.error));
      else p.resolve();
    });
    const fail = (why: string) => {
      if (this.worker !== w) return;
      this.worker = null;
      for (const p of this.pending.values()) p.reject(new Error(`batch writer thread stopped: ${why}`));
      this.pending.clear();
    };
    w.on('error', (e: unknown) => fail(String((e as Error)?.message ?? e)));
    w.on('exit', (code) => fail(`exited (${code})`));
    return w;
  }

  write(statements: readonly Pick<CompiledQuery, 'sql' | 'parameters'>[], relaxed: boolean): Promise<void> {
    const w = (this.worker ??= this.start()); // an empty batch only starts the thread
    if (!statements.length) return Promise.resolve();
    const id = ++this.seq;
    const done = new Promise<void>((resolve, reject) => {
      if (this.pending.size === 0) w.ref();
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, statements: statements.map((q) => ({ sql: q.sql, parameters: q.parameters })), relaxed });
    });
    this.inFlight.add(done);
    const forget = () => void this.inFlight.delete(done);
    done.then(forget, forget);
    return done;
  }

  /** Waits for the batches in flight, then ends the thread. */
  async close(): Promise<void> {
    const w = this.worker;
    if (!w) return;
    await Promise.allSettled([...this.inFlight]);
    this.worker = null;
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    w.ref();
    w.postMessage('close');
    await exited;
  }
}

/**
 * A synchronous reader (SQLite): a second, read-only connection to the same file with statements
 * prepared once by SQL text. Reads through it skip Kysely's connection mutex and promise chain
 * (the largest cost of a small query on a busy server) and never wait for a writer (WAL). It sees
 * committed data only, so it is registered for the database's root Kysely instance and never for a
 * transaction's executor: reads inside a transaction go through the transaction and see its writes.
 */
export type Reader = (q: CompiledQuery) => Record<string, unknown>[];
const readers = new WeakMap<object, Reader>();

/** Runs a compiled query: synchronously on the reader where there is one, else through Kysely. */
export async function readRows<R = Record<string, unknown>>(db: Kysely<any>, q: CompiledQuery): Promise<R[]> {
  const r = readers.get(db);
  return r ? (r(q) as R[]) : ((await db.executeQuery(q)).rows as R[]);
}

function lazyReader(file: string, max = 500): { read: Reader; close(): void } {
  let conn: SQLite.Database | null = null;
  const cache = new Map<string, SQLite.Statement>();
  return {
    read: (q) => {
      if (!conn) {
        conn = new SQLite(file, { readonly: true, fileMustExist: true });
        conn.pragma('busy_timeout = 10000');
      }
      let st = cache.get(q.sql);
      if (!st) {
        st = conn.prepare(q.sql);
        if (cache.size >= max) cache.delete(cache.keys().next().value!);
        cache.set(q.sql, st);
      }
      return st.all(...(q.parameters as unknown[])) as Record<string, unknown>[];
    },
    close: () => {
      cache.clear();
      conn?.close();
      conn = null;
    },
  };
}

/**
 * Kysely prepares every query anew; on SQLite preparing costs more than running a small query.
 * Statements are kept by SQL text (parameters are bound per run) and reused unless busy (an open
 * iterator), so hot queries are prepared once.
 */
function withStatementCache(sqlite: SQLite.Database, max = 500) {
  const cache = new Map<string, SQLite.Statement>();
  return {
    close: () => {
      cache.clear();
      sqlite.close();
    },
    prepare: (sqlText: string) => {
      const hit = cache.get(sqlText);
      if (hit && !hit.busy) return hit;
      const stmt = sqlite.prepare(sqlText);
      if (!hit) {
        if (cache.size >= max) cache.delete(cache.keys().next().value!);
        cache.set(sqlText, stmt);
      }
      return stmt;
    },
  };
}

export async function migrate(db: Database): Promise<string[]> {
  const migrator = new Migrator({
    db: db.kysely,
    provider: { getMigrations: async () => migrationsFor(db.dialect) },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/**
 * A query of fixed shape, built and compiled once per database and then run with new parameter
 * values. Building a Kysely query costs more than running a small one on SQLite (the operation-node
 * tree, its visitors and the compiler are megamorphic in a busy server: ~30 µs against ~8 µs for
 * the execution), so the queries on every request's path (tenant, app, session, short link) use
 * this. `build` receives placeholders: each `p.name` is a marker value that must be passed where
 * Kysely binds a parameter (a where value, a limit); the compiled SQL keeps `?`/`$n` and the
 * parameters are swapped per run, so nothing is ever pasted into SQL text.
 *
 *   const byId = prepared<{ id: number }, Tenant>((db, p) => db.selectFrom('tenants').selectAll().where('id', '=', p.id));
 *   const rows = await byId(ctx.db.kysely, { id: 7 });
 */
export function prepared<P extends Record<string, unknown>, R>(
  build: (db: Kysely<DB>, p: P) => { compile(): CompiledQuery<R> },
): (db: Kysely<DB>, params: P) => Promise<R[]> {
  const compiled = new WeakMap<Kysely<DB>, { query: CompiledQuery<R>; slots: (string | null)[] }>();
  const marker = (name: string) => `\u0000menhu:param:${name}\u0000`;
  return async (db, params) => {
    let c = compiled.get(db);
    if (!c) {
      const p = new Proxy({}, { get: (_t, name) => marker(String(name)) }) as P;
      const query = build(db, p).compile();
      const slots = query.parameters.map((v) => (typeof v === 'string' && v.startsWith('\u0000menhu:param:') ? v.slice(13, -1) : null));
      for (const [i, v] of query.parameters.entries()) {
        if (slots[i] === null && typeof v === 'string' && v.includes('\u0000menhu:param:')) throw new Error(`prepared: a parameter was transformed (${v}); pass placeholders as plain values`);
      }
      compiled.set(db, (c = { query, slots }));
    }
    const { query, slots } = c;
    const parameters = slots.map((s, i) => (s === null ? query.parameters[i] : params[s]));
    const r = readers.get(db);
    if (r) return r({ ...query, parameters }) as R[];
    return (await db.executeQuery<R>({ ...query, parameters })).rows;
  };
}
