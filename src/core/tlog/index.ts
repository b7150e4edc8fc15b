/**
 * The transparency log: a durable, append-only RFC 6962 Merkle tree with Ed25519-signed
 * checkpoints in the C2SP tlog-checkpoint format.
 *
 * Storage (all in the platform database, so an entry commits in the same transaction as the row
 * it describes):
 * - tlog_entries: leaf index, leaf hash, entry data (text), time;
 * - tlog_nodes: every complete subtree hash of level >= 1, keyed (level, index) — each append writes
 *   one leaf and on average one node, and any root or proof reads O(log n) rows;
 * - tlog_state: one row (size, root) that every append locks and updates: appends are serialised
 *   (PostgreSQL row lock; SQLite's immediate transaction), so indices never collide across processes;
 * - tlog_checkpoints: signed checkpoints, one per published size.
 * The signing key is generated once, sealed with the master key (ctx.box) in `settings`.
 */
import type { Kysely } from 'kysely';
import type { Ctx } from '../context.js';
import { defineMigration } from '../db/migrations.js';
import type { DB } from '../db/schema.js';
import {
  EMPTY_ROOT,
  consistencyRanges,
  frontierAppend,
  frontierIds,
  frontierRoot,
  inclusionRanges,
  leafHash,
  nodeKey,
  rangeHash,
  rangeNodes,
  type Frontier,
  type NodeId,
  type RangeRef,
} from './merkle.js';
import { checkpointText, generateSigningKey, noteSigner, signNote, verifierKey, type NoteSigner } from './note.js';

export * from './merkle.js';
export * from './note.js';

interface TlogEntryTable {
  idx: number;
  leaf_hash: string;
  data: string;
  created_at: number;
}
interface TlogNodeTable {
  level: number;
  idx: number;
  hash: string;
}
interface TlogStateTable {
  id: number;
  size: number;
  root: string;
}
interface TlogCheckpointTable {
  size: number;
  root: string;
  note: string;
  created_at: number;
}

declare module '../db/schema.js' {
  interface DB {
    tlog_entries: TlogEntryTable;
    tlog_nodes: TlogNodeTable;
    tlog_state: TlogStateTable;
    tlog_checkpoints: TlogCheckpointTable;
  }
}

defineMigration('0200_tlog', async (db, d) => {
  await db.schema
    .createTable('tlog_entries')
    .addColumn('idx', d.big, (c) => c.primaryKey())
    .addColumn('leaf_hash', 'text', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('created_at', d.big, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('tlog_nodes')
    .addColumn('level', 'integer', (c) => c.notNull())
    .addColumn('idx', d.big, (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('tlog_nodes_pk', ['level', 'idx'])
    .execute();
  await db.schema
    .createTable('tlog_state')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('size', d.big, (c) => c.notNull())
    .addColumn('root', 'text', (c) => c.notNull())
    .execute();
  await db.insertInto('tlog_state').values({ id: 1, size: 0, root: EMPTY_ROOT.toString('hex') }).execute();
  await db.schema
    .createTable('tlog_checkpoints')
    .addColumn('size', d.big, (c) => c.primaryKey())
    .addColumn('root', 'text', (c) => c.notNull())
    .addColumn('note', 'text', (c) => c.notNull())
    .addColumn('created_at', d.big, (c) => c.notNull())
    .execute();
});

export interface TlogEntry {
  index: number;
  /** hex */
  leafHash: string;
  data: string;
  createdAt: number;
}

export interface TreeHead {
  size: number;
  root: Buffer;
}

export interface SignedCheckpoint extends TreeHead {
  origin: string;
  /** The signed note, as served at /tlog/checkpoint. */
  note: string;
  createdAt: number;
}

export interface LogInfo {
  origin: string;
  keyName: string;
  /** Signed-note verifier key: `<name>+<hash>+<base64 key>`. */
  verifierKey: string;
  publicKey: Buffer;
}

interface Pending {
  data: string;
  resolve(e: TlogEntry): void;
  reject(e: unknown): void;
}

interface Runtime {
  signer: NoteSigner;
  info: LogInfo;
  cache: { frontier: Frontier; root: string } | null;
  queue: Pending[];
  flushing: boolean;
  timer: NodeJS.Timeout | null;
  checkpointing: Promise<SignedCheckpoint> | null;
  lastCheckpoint: number;
}

const runtimes = new WeakMap<Ctx, Runtime>();
const MAX_BATCH = 2000;
const CHUNK = 400;
const KEY_SETTING = 'tlog_signing_key';
const ORIGIN_SETTING = 'tlog_origin';

function rt(ctx: Ctx): Runtime {
  const r = runtimes.get(ctx);
  if (!r) throw new Error('the transparency log is not initialised (initTlog)');
  return r;
}

/** Reads a setting, or stores `make()` under it first if absent (first writer wins across processes). */
async function settingOnce(db: Kysely<DB>, key: string, make: () => string): Promise<string> {
  const cur = await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
  if (cur) return cur.value;
  await db
    .insertInto('settings')
    .values({ key, value: make() })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  return (await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirstOrThrow()).value;
}

/**
 * Loads (or creates once) the signing key and origin and starts the checkpointer, which publishes
 * a signed checkpoint at most `intervalMs` after the tree grows. Idempotent per ctx.
 */
export async function initTlog(ctx: Ctx, opts: { intervalMs?: number } = {}): Promise<LogInfo> {
  const existing = runtimes.get(ctx);
  if (existing) return existing.info;
  const db = ctx.db.kysely;
  const origin = await settingOnce(db, ORIGIN_SETTING, () => `${new URL(ctx.config.publicUrl).hostname}/tlog`);
  const sealed = await settingOnce(db, KEY_SETTING, () => ctx.box.seal(generateSigningKey().toString('base64')));
  const signer = noteSigner(origin, Buffer.from(ctx.box.open(sealed), 'base64'));
  const info: LogInfo = { origin, keyName: origin, verifierKey: verifierKey(origin, signer.publicKey), publicKey: signer.publicKey };
  const r: Runtime = { signer, info, cache: null, queue: [], flushing: false, timer: null, checkpointing: null, lastCheckpoint: -1 };
  runtimes.set(ctx, r);
  await checkpointNow(ctx);
  const every = opts.intervalMs ?? 500;
  if (every > 0) {
    r.timer = setInterval(() => {
      checkpointNow(ctx).catch((e) => ctx.log.error({ err: String(e) }, 'tlog checkpoint failed'));
    }, every);
    r.timer.unref();
  }
  return info;
}

export async function closeTlog(ctx: Ctx): Promise<void> {
  const r = runtimes.get(ctx);
  if (!r) return;
  if (r.timer) clearInterval(r.timer);
  r.timer = null;
  while (r.flushing || r.queue.length) await new Promise((res) => setTimeout(res, 5));
  await r.checkpointing?.catch(() => {});
  runtimes.delete(ctx);
}

export const logInfo = (ctx: Ctx): LogInfo => rt(ctx).info;

// ---------------------------------------------------------------------------------------------
// Reading stored nodes

async function fetchNodes(db: Kysely<DB>, ids: NodeId[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const uniq = [...new Map(ids.map((n) => [nodeKey(n), n])).values()];
  const leaves = uniq.filter((n) => n.level === 0).map((n) => n.index);
  const inner = uniq.filter((n) => n.level > 0);
  for (let i = 0; i < leaves.length; i += CHUNK) {
    const rows = await db.selectFrom('tlog_entries').select(['idx', 'leaf_hash']).where('idx', 'in', leaves.slice(i, i + CHUNK)).execute();
    for (const r of rows) out.set(`0/${Number(r.idx)}`, Buffer.from(r.leaf_hash, 'hex'));
  }
  for (let i = 0; i < inner.length; i += CHUNK) {
    const part = inner.slice(i, i + CHUNK);
    const rows = await db
      .selectFrom('tlog_nodes')
      .select(['level', 'idx', 'hash'])
      .where((eb) => eb.or(part.map((n) => eb.and([eb('level', '=', n.level), eb('idx', '=', n.index)]))))
      .execute();
    for (const r of rows) out.set(`${Number(r.level)}/${Number(r.idx)}`, Buffer.from(r.hash, 'hex'));
  }
  for (const n of uniq) if (!out.has(nodeKey(n))) throw new Error(`tlog node ${nodeKey(n)} is missing from storage`);
  return out;
}

async function hashRanges(db: Kysely<DB>, ranges: RangeRef[]): Promise<Buffer[]> {
  const nodes = await fetchNodes(
    db,
    ranges.flatMap((r) => rangeNodes(r.a, r.b)),
  );
  return ranges.map((r) => rangeHash(r, nodes));
}

async function readState(db: Kysely<DB>): Promise<{ size: number; root: string }> {
  const s = await db.selectFrom('tlog_state').select(['size', 'root']).where('id', '=', 1).executeTakeFirstOrThrow();
  return { size: Number(s.size), root: s.root };
}

export async function treeHead(ctx: Ctx): Promise<TreeHead> {
  const s = await readState(ctx.db.kysely);
  return { size: s.size, root: Buffer.from(s.root, 'hex') };
}

/** Root of the tree when it had `size` leaves (size <= current size). */
export async function rootAt(ctx: Ctx, size: number): Promise<Buffer> {
  const head = await treeHead(ctx);
  if (!Number.isSafeInteger(size) || size < 0 || size > head.size) throw new RangeError(`tree size ${size} is not between 0 and ${head.size}`);
  if (size === head.size) return head.root;
  return (await hashRanges(ctx.db.kysely, [{ a: 0, b: size }]))[0];
}

// ---------------------------------------------------------------------------------------------
// Appending

/**
 * Appends entries inside the caller's write transaction (ctx.db.tx), after everything else the
 * transaction writes: the entries commit or vanish with it. Returns them with their indices.
 */
export async function appendInTx(ctx: Ctx, trx: Kysely<DB>, datas: string[]): Promise<TlogEntry[]> {
  if (datas.length === 0) return [];
  const r = rt(ctx);
  const state = await ctx.db.forUpdate(trx.selectFrom('tlog_state').select(['size', 'root']).where('id', '=', 1)).executeTakeFirstOrThrow();
  const size = Number(state.size);
  let frontier: Frontier;
  if (r.cache && r.cache.frontier.size === size && r.cache.root === state.root) {
    frontier = { size, nodes: r.cache.frontier.nodes.slice() };
  } else {
    const ids = frontierIds(size);
    const got = await fetchNodes(trx, ids);
    frontier = { size, nodes: ids.map((n) => ({ level: n.level, hash: got.get(nodeKey(n))! })) };
    if (frontierRoot(frontier).toString('hex') !== state.root) throw new Error('tlog storage is inconsistent: the stored frontier does not give the stored root');
  }
  const now = ctx.clock.now();
  const entries: TlogEntryTable[] = [];
  const nodes: TlogNodeTable[] = [];
  for (const data of datas) {
    const leaf = leafHash(Buffer.from(data, 'utf8'));
    entries.push({ idx: frontier.size, leaf_hash: leaf.toString('hex'), data, created_at: now });
    for (const n of frontierAppend(frontier, leaf)) nodes.push({ level: n.level, idx: n.index, hash: n.hash.toString('hex') });
  }
  const root = frontierRoot(frontier).toString('hex');
  for (let i = 0; i < entries.length; i += CHUNK) await trx.insertInto('tlog_entries').values(entries.slice(i, i + CHUNK)).execute();
  for (let i = 0; i < nodes.length; i += CHUNK) await trx.insertInto('tlog_nodes').values(nodes.slice(i, i + CHUNK)).execute();
  await trx.updateTable('tlog_state').set({ size: frontier.size, root }).where('id', '=', 1).execute();
  // The cache is keyed by (size, root): if this transaction rolls back, the stored root differs and
  // the next append reloads the frontier from storage.
  r.cache = { frontier, root };
  return entries.map((e) => ({ index: e.idx, leafHash: e.leaf_hash, data: e.data, createdAt: e.created_at }));
}

/**
 * Appends one entry on its own. Entries arriving together are committed in one transaction
 * (group commit); the promise resolves once the entry is durable.
 */
export function append(ctx: Ctx, data: string): Promise<TlogEntry> {
  const r = rt(ctx);
  return new Promise<TlogEntry>((resolve, reject) => {
    r.queue.push({ data, resolve, reject });
    if (!r.flushing) void flush(ctx, r);
  });
}

async function flush(ctx: Ctx, r: Runtime): Promise<void> {
  r.flushing = true;
  try {
    while (r.queue.length) {
      const batch = r.queue.splice(0, MAX_BATCH);
      try {
        const done = await ctx.db.tx((trx) =>
          appendInTx(
            ctx,
            trx,
            batch.map((p) => p.data),
          ),
        );
        batch.forEach((p, i) => p.resolve(done[i]));
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
  } finally {
    r.flushing = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading entries and proofs

const toEntry = (e: TlogEntryTable): TlogEntry => ({ index: Number(e.idx), leafHash: e.leaf_hash, data: e.data, createdAt: Number(e.created_at) });

export async function getEntry(ctx: Ctx, index: number): Promise<TlogEntry | null> {
  const e = await ctx.db.kysely.selectFrom('tlog_entries').selectAll().where('idx', '=', index).executeTakeFirst();
  return e ? toEntry(e) : null;
}

export async function listEntries(ctx: Ctx, start: number, limit: number): Promise<TlogEntry[]> {
  const rows = await ctx.db.kysely.selectFrom('tlog_entries').selectAll().where('idx', '>=', start).orderBy('idx').limit(limit).execute();
  return rows.map(toEntry);
}

function checkSizes(index: number, size: number, head: number, what: string): void {
  if (!Number.isSafeInteger(size) || size < 1 || size > head) throw new RangeError(`tree size ${size} is not between 1 and ${head}`);
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) throw new RangeError(`${what} ${index} is not below tree size ${size}`);
}

/** Audit path for leaf `index` in the tree of `size` leaves (default: the current tree). */
export async function inclusionProof(ctx: Ctx, index: number, size?: number): Promise<{ size: number; proof: Buffer[] }> {
  const head = (await treeHead(ctx)).size;
  const n = size ?? head;
  checkSizes(index, n, head, 'leaf index');
  return { size: n, proof: await hashRanges(ctx.db.kysely, inclusionRanges(index, n)) };
}

/** Proof that the tree of size2 extends the tree of size1 (0 < size1 <= size2 <= current size). */
export async function consistencyProof(ctx: Ctx, size1: number, size2: number): Promise<Buffer[]> {
  const head = (await treeHead(ctx)).size;
  checkSizes(size1 - 1, size2, head, 'size1 - 1');
  return hashRanges(ctx.db.kysely, consistencyRanges(size1, size2));
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

const toCheckpoint = (origin: string, c: TlogCheckpointTable): SignedCheckpoint => ({
  origin,
  size: Number(c.size),
  root: Buffer.from(c.root, 'hex'),
  note: c.note,
  createdAt: Number(c.created_at),
});

export async function latestCheckpoint(ctx: Ctx): Promise<SignedCheckpoint> {
  const c = await ctx.db.kysely.selectFrom('tlog_checkpoints').selectAll().orderBy('size', 'desc').limit(1).executeTakeFirst();
  return c ? toCheckpoint(rt(ctx).info.origin, c) : checkpointNow(ctx);
}

export async function checkpointAt(ctx: Ctx, size: number): Promise<SignedCheckpoint | null> {
  const c = await ctx.db.kysely.selectFrom('tlog_checkpoints').selectAll().where('size', '=', size).executeTakeFirst();
  return c ? toCheckpoint(rt(ctx).info.origin, c) : null;
}

/**
 * Signs and stores a checkpoint of the current tree unless one for its size exists; returns the
 * latest checkpoint. Ed25519 signatures are deterministic, so two servers signing the same size
 * write the same note.
 */
export function checkpointNow(ctx: Ctx): Promise<SignedCheckpoint> {
  const r = rt(ctx);
  if (r.checkpointing) return r.checkpointing;
  r.checkpointing = (async () => {
    const head = await treeHead(ctx);
    if (head.size === r.lastCheckpoint) {
      const same = await checkpointAt(ctx, head.size);
      if (same) return same;
    }
    const latest = await ctx.db.kysely.selectFrom('tlog_checkpoints').selectAll().orderBy('size', 'desc').limit(1).executeTakeFirst();
    if (latest && Number(latest.size) >= head.size) {
      r.lastCheckpoint = Number(latest.size);
      return toCheckpoint(r.info.origin, latest);
    }
    const note = signNote(checkpointText({ origin: r.info.origin, size: head.size, root: head.root }), r.signer);
    const row: TlogCheckpointTable = { size: head.size, root: head.root.toString('hex'), note, created_at: ctx.clock.now() };
    await ctx.db.kysely
      .insertInto('tlog_checkpoints')
      .values(row)
      .onConflict((oc) => oc.column('size').doNothing())
      .execute();
    r.lastCheckpoint = head.size;
    return toCheckpoint(r.info.origin, row);
  })();
  return r.checkpointing.finally(() => {
    r.checkpointing = null;
  });
}

/** A checkpoint covering at least `size` leaves: the latest, or a fresh one if the latest is older. */
export async function checkpointCovering(ctx: Ctx, size: number): Promise<SignedCheckpoint> {
  let c = await latestCheckpoint(ctx);
  // A signing run already in flight may predate the entry; the next one covers it.
  for (let i = 0; i < 3 && c.size < size; i++) c = await checkpointNow(ctx);
  return c;
}
