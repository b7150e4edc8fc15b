/**
 * Proof bundles: everything needed to check a report file offline — every log entry of the report
 * (commit, updates, recall) with its inclusion proof against one signed checkpoint, and the log's
 * verifier key. verifyBundle() uses nothing but node:crypto, so `menhu verify` runs it offline.
 *
 * What a bundle proves: the entries are in the log the checkpoint commits to, signed by the key.
 * What it cannot prove: that no entry of the report came after the checkpoint; fetch a fresh
 * bundle to learn of later updates or a recall.
 */
import { createHash } from 'node:crypto';
import type { Ctx } from '../../core/context.js';
import { DomainError } from '../../core/errors.js';
import {
  checkpointCovering,
  getEntry,
  inclusionProof,
  leafHash,
  logInfo,
  openCheckpoint,
  parseVerifierKey,
  verifyInclusion,
} from '../../core/tlog/index.js';
import { getReport, REPORT_ID_RE, type ReportLogEntry } from './index.js';

export const BUNDLE_FORMAT = 'menhu.report-proof/v1';

export interface BundleEntry {
  index: number;
  /** The exact entry data; its leaf hash is SHA-256(0x00 ‖ UTF-8 data). */
  data: string;
  leaf_hash: string;
  /** Audit path (base64) from this leaf to the checkpoint root. */
  inclusion_proof: string[];
}

export interface ProofBundle {
  format: typeof BUNDLE_FORMAT;
  tenant_id: number;
  report_id: string;
  entries: BundleEntry[];
  /** Signed note (C2SP tlog-checkpoint). */
  checkpoint: string;
  log: { origin: string; verifier_key: string };
}

/** Log indices of every entry of a report, oldest first, following the `prev` chain. */
async function chain(ctx: Ctx, last: number): Promise<BundleEntry[]> {
  const out: { index: number; data: string; leaf_hash: string }[] = [];
  let at: number | null = last;
  while (at !== null && at >= 0) {
    const e = await getEntry(ctx, at);
    if (!e) throw new Error(`log entry ${at} is missing`);
    out.push({ index: e.index, data: e.data, leaf_hash: e.leafHash });
    at = (JSON.parse(e.data) as ReportLogEntry).prev;
    if (out.length > 100_000) throw new Error('report log chain too long');
  }
  return out.reverse().map((e) => ({ ...e, inclusion_proof: [] }));
}

export async function buildBundle(ctx: Ctx, tenantId: number, reportId: string): Promise<ProofBundle> {
  const r = REPORT_ID_RE.test(reportId) ? await getReport(ctx, tenantId, reportId) : null;
  if (!r) throw new DomainError('NOT_FOUND', `report ${reportId} is not registered`);
  const entries = await chain(ctx, r.lastTlogIndex);
  const cp = await checkpointCovering(ctx, r.lastTlogIndex + 1);
  for (const e of entries) e.inclusion_proof = (await inclusionProof(ctx, e.index, cp.size)).proof.map((b) => b.toString('base64'));
  const info = logInfo(ctx);
  return { format: BUNDLE_FORMAT, tenant_id: tenantId, report_id: reportId, entries, checkpoint: cp.note, log: { origin: info.origin, verifier_key: info.verifierKey } };
}

// ---------------------------------------------------------------------------------------------
// Offline verification

export type FileStatus = 'valid' | 'superseded' | 'recalled' | 'no-match';

export interface BundleCheck {
  /** valid: the file is the current version; superseded: an older version; recalled: the report is recalled; no-match: no version has this file. */
  status: FileStatus;
  sha256: string;
  /** Version whose file has this hash (the latest such), if any. */
  matchedVersion: number | null;
  latestVersion: number;
  recalled: boolean;
  treeSize: number;
  origin: string;
  /** Whether the key came from the caller (true) or only from the bundle itself (false). */
  keyTrusted: boolean;
  entries: ReportLogEntry[];
}

export class BundleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BundleError';
  }
}

/**
 * Checks a file (its bytes or its SHA-256 hex) against a bundle: the checkpoint signature (with
 * `trustedKey` when given, else the bundle's key), every entry's inclusion proof and chain, and
 * then what the file is. Throws BundleError when the bundle itself does not verify.
 */
export function verifyBundle(bundle: ProofBundle, file: Buffer | string, opts: { reportId?: string; trustedKey?: string } = {}): BundleCheck {
  if (!bundle || bundle.format !== BUNDLE_FORMAT) throw new BundleError(`not a ${BUNDLE_FORMAT} bundle`);
  if (opts.reportId !== undefined && bundle.report_id !== opts.reportId) throw new BundleError(`the bundle is for report ${bundle.report_id}, not ${opts.reportId}`);
  const vkey = opts.trustedKey ?? bundle.log?.verifier_key;
  if (!vkey) throw new BundleError('no log key to check the checkpoint with');
  let cp;
  try {
    parseVerifierKey(vkey);
    cp = openCheckpoint(bundle.checkpoint, vkey);
  } catch (e) {
    throw new BundleError(`checkpoint: ${(e as Error).message}`);
  }
  if (!Array.isArray(bundle.entries) || bundle.entries.length === 0) throw new BundleError('the bundle has no entries');
  const entries: ReportLogEntry[] = [];
  let prev: number | null = null;
  for (const e of bundle.entries) {
    const lh = leafHash(Buffer.from(e.data, 'utf8'));
    if (lh.toString('hex') !== e.leaf_hash) throw new BundleError(`entry ${e.index}: leaf hash does not match its data`);
    try {
      verifyInclusion(BigInt(e.index), cp.sizeBig, lh, e.inclusion_proof.map((p) => Buffer.from(p, 'base64')), cp.root);
    } catch (err) {
      throw new BundleError(`entry ${e.index}: ${(err as Error).message}`);
    }
    const d = JSON.parse(e.data) as ReportLogEntry;
    if (d.kind !== 'menhu.report/v1' || d.report !== bundle.report_id || d.tenant !== bundle.tenant_id) throw new BundleError(`entry ${e.index} is not about report ${bundle.report_id}`);
    if (d.prev !== prev) throw new BundleError(`entry ${e.index}: its previous entry is ${d.prev}, the bundle has ${prev}`);
    prev = e.index;
    entries.push(d);
  }
  const sha = typeof file === 'string' ? file.toLowerCase() : createHash('sha256').update(file).digest('hex');
  const last = entries[entries.length - 1];
  const recalled = last.action === 'recall';
  const registered = entries.filter((d) => d.action !== 'recall');
  const latestVersion = Math.max(...registered.map((d) => d.version));
  const match = registered.filter((d) => d.sha256 === sha).pop() ?? null;
  const status: FileStatus = !match ? 'no-match' : recalled ? 'recalled' : match.version < latestVersion ? 'superseded' : 'valid';
  return { status, sha256: sha, matchedVersion: match?.version ?? null, latestVersion, recalled, treeSize: cp.size, origin: cp.origin, keyTrusted: opts.trustedKey !== undefined, entries };
}
