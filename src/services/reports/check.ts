/**
 * Integrity check of the report registry and its transparency log (`menhu check`, and after
 * `menhu restore`): the tree is recomputed from the stored entries and compared with the stored
 * tree head and with the latest signed checkpoint (whose signature is verified); every report
 * version must have its log entry and bytes whose SHA-256 is the registered one; every report
 * entry of the log must have its report version. Returns one line per problem.
 */
import { createHash } from 'node:crypto';
import type { Ctx } from '../../core/context.js';
import { frontierAppend, frontierRoot, latestCheckpoint, leafHash, logInfo, openCheckpoint, type Frontier } from '../../core/tlog/index.js';
import type { ReportLogEntry } from './index.js';

const PAGE = 5000;
const MAX_PROBLEMS = 100;

export async function checkReports(ctx: Ctx): Promise<string[]> {
  const db = ctx.db.kysely;
  const problems: string[] = [];
  const problem = (p: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(p);
  };

  // 1. The log: contiguous indices, leaf hashes of the stored data, the root at the checkpoint and now.
  const cp = await latestCheckpoint(ctx);
  try {
    const opened = openCheckpoint(cp.note, logInfo(ctx).verifierKey, logInfo(ctx).origin);
    if (opened.size !== cp.size || !Buffer.from(opened.root).equals(cp.root)) problem(`checkpoint ${cp.size}: the signed note does not say the stored size and root`);
  } catch (e) {
    problem(`checkpoint ${cp.size}: signature does not verify with the log key (${(e as Error).message})`);
  }
  const state = await db.selectFrom('tlog_state').select(['size', 'root']).where('id', '=', 1).executeTakeFirstOrThrow();
  const f: Frontier = { size: 0, nodes: [] };
  /** leaf index → the report entry it holds */
  const reportEntries = new Map<number, ReportLogEntry>();
  if (cp.size === 0 && !cp.root.equals(frontierRoot(f))) problem('checkpoint 0: root is not the empty root');
  for (let start = 0; ; start += PAGE) {
    const rows = await db.selectFrom('tlog_entries').select(['idx', 'leaf_hash', 'data']).where('idx', '>=', start).orderBy('idx').limit(PAGE).execute();
    for (const r of rows) {
      const idx = Number(r.idx);
      if (idx !== f.size) {
        problem(`log entry ${f.size} is missing (next stored is ${idx})`);
        return problems;
      }
      const leaf = leafHash(Buffer.from(r.data, 'utf8'));
      if (leaf.toString('hex') !== r.leaf_hash) problem(`log entry ${idx}: stored leaf hash is not the hash of its data`);
      frontierAppend(f, leaf);
      if (f.size === cp.size && !frontierRoot(f).equals(cp.root)) problem(`checkpoint ${cp.size}: root recomputed from the stored entries differs from the signed root`);
      if (r.data.startsWith('{"kind":"menhu.report/v1"')) {
        try {
          reportEntries.set(idx, JSON.parse(r.data) as ReportLogEntry);
        } catch {
          problem(`log entry ${idx}: report entry is not JSON`);
        }
      }
    }
    if (rows.length < PAGE) break;
  }
  if (f.size < cp.size) problem(`checkpoint ${cp.size} covers more entries than are stored (${f.size})`);
  if (Number(state.size) !== f.size || frontierRoot(f).toString('hex') !== state.root) problem(`tree head (size ${Number(state.size)}) differs from the tree recomputed from ${f.size} stored entries`);

  // 2. Every report version: its log entry says what is stored, and its bytes hash to the registered SHA-256.
  const seen = new Set<number>();
  for (let after = 0; ; ) {
    const rows = await db
      .selectFrom('report_versions as v')
      .innerJoin('reports as r', 'r.id', 'v.report_pk')
      .select(['v.id', 'v.tenant_id', 'r.report_id', 'v.version', 'v.action', 'v.file_key', 'v.file_sha256', 'v.meta_hash', 'v.tlog_index'])
      .where('v.id', '>', after)
      .orderBy('v.id')
      .limit(PAGE)
      .execute();
    for (const v of rows) {
      const what = `report ${v.report_id} (tenant ${Number(v.tenant_id)}) version ${Number(v.version)}`;
      const idx = Number(v.tlog_index);
      const e = reportEntries.get(idx);
      if (!e) problem(`${what}: no report entry at log index ${idx}`);
      else if (e.action !== v.action || e.tenant !== Number(v.tenant_id) || e.report !== v.report_id || e.version !== Number(v.version) || e.sha256 !== v.file_sha256 || e.meta !== v.meta_hash)
        problem(`${what}: log entry ${idx} describes something else`);
      if (seen.has(idx)) problem(`${what}: log entry ${idx} is claimed by two versions`);
      seen.add(idx);
      try {
        const { data } = await ctx.blobs.get(v.file_key);
        if (createHash('sha256').update(data).digest('hex') !== v.file_sha256) problem(`${what}: stored bytes do not hash to the registered SHA-256`);
      } catch (err) {
        problem(`${what}: file ${v.file_key} cannot be read (${(err as Error).message})`);
      }
    }
    if (rows.length < PAGE) break;
    after = Number(rows[rows.length - 1].id);
  }

  // 3. Every commit/update entry of the log has its version (recalls refer to an existing version).
  for (const [idx, e] of reportEntries) {
    if (e.action === 'recall') {
      const v = await db
        .selectFrom('report_versions as v')
        .innerJoin('reports as r', 'r.id', 'v.report_pk')
        .select('v.id')
        .where('r.tenant_id', '=', e.tenant)
        .where('r.report_id', '=', e.report)
        .where('v.version', '=', e.version)
        .executeTakeFirst();
      if (!v) problem(`log entry ${idx}: recall of report ${e.report} version ${e.version}, which is not stored`);
    } else if (!seen.has(idx)) problem(`log entry ${idx}: ${e.action} of report ${e.report} version ${e.version} has no stored version`);
  }
  return problems;
}
