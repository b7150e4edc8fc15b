/**
 * RFC 6962 Merkle tree hashing, proof generation and proof verification.
 *
 * Leaf hash H(0x00 || d), node hash H(0x01 || l || r), SHA-256. The verifiers take BigInt (or
 * number) indices so they work offline for trees of any size; they throw a ProofError saying what
 * is wrong and return nothing on success. Generation works on "complete subtree" hashes: node
 * (level, index) is the hash of leaves [index·2^level, (index+1)·2^level), which is exactly what the
 * log stores, so any root or proof needs O(log n) stored nodes.
 */
import { createHash } from 'node:crypto';

export const HASH_SIZE = 32;
const LEAF = Buffer.from([0]);
const NODE = Buffer.from([1]);

export const leafHash = (data: Uint8Array | string): Buffer => createHash('sha256').update(LEAF).update(data).digest();
export const nodeHash = (l: Uint8Array, r: Uint8Array): Buffer => createHash('sha256').update(NODE).update(l).update(r).digest();
/** Root of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT = createHash('sha256').digest();

export class ProofError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProofError';
  }
}

// ---------------------------------------------------------------------------------------------
// Verification (after transparency-dev/merkle proof/verify.go), BigInt indices.

const big = (v: bigint | number): bigint => {
  const b = typeof v === 'bigint' ? v : BigInt(v);
  if (b < 0n) throw new ProofError('negative index or size');
  return b;
};

/** Number of bits needed to write v (bits.Len64). */
function bitLen(v: bigint): number {
  let n = 0;
  while (v > 0n) {
    v >>= 1n;
    n++;
  }
  return n;
}

function onesCount(v: bigint): number {
  let n = 0;
  while (v > 0n) {
    n += Number(v & 1n);
    v >>= 1n;
  }
  return n;
}

function trailingZeros(v: bigint): number {
  if (v === 0n) return 64;
  let n = 0;
  while ((v & 1n) === 0n) {
    v >>= 1n;
    n++;
  }
  return n;
}

function decompInclProof(index: bigint, size: bigint): { inner: number; border: number } {
  const inner = bitLen(index ^ (size - 1n));
  const border = onesCount(index >> BigInt(inner));
  return { inner, border };
}

function chainInner(seed: Uint8Array, proof: Uint8Array[], index: bigint): Uint8Array {
  proof.forEach((h, i) => {
    seed = ((index >> BigInt(i)) & 1n) === 0n ? nodeHash(seed, h) : nodeHash(h, seed);
  });
  return seed;
}

function chainInnerRight(seed: Uint8Array, proof: Uint8Array[], index: bigint): Uint8Array {
  proof.forEach((h, i) => {
    if (((index >> BigInt(i)) & 1n) === 1n) seed = nodeHash(h, seed);
  });
  return seed;
}

function chainBorderRight(seed: Uint8Array, proof: Uint8Array[]): Uint8Array {
  for (const h of proof) seed = nodeHash(h, seed);
  return seed;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}

function checkHashes(proof: Uint8Array[]): void {
  for (const [i, h] of proof.entries()) if (h.length !== HASH_SIZE) throw new ProofError(`proof element ${i} is ${h.length} bytes, want ${HASH_SIZE}`);
}

/** The root that an inclusion proof for leafHash at index in a tree of size implies. */
export function rootFromInclusionProof(index: bigint | number, size: bigint | number, leaf: Uint8Array, proof: Uint8Array[]): Uint8Array {
  const i = big(index);
  const n = big(size);
  if (i >= n) throw new ProofError(`index ${i} is beyond tree size ${n}`);
  if (leaf.length !== HASH_SIZE) throw new ProofError(`leaf hash is ${leaf.length} bytes, want ${HASH_SIZE}`);
  const { inner, border } = decompInclProof(i, n);
  if (proof.length !== inner + border) throw new ProofError(`wrong proof size ${proof.length}, want ${inner + border}`);
  checkHashes(proof);
  return chainBorderRight(chainInner(leaf, proof.slice(0, inner), i), proof.slice(inner));
}

/** Throws unless proof shows that leaf is at index in the tree of size with this root. */
export function verifyInclusion(index: bigint | number, size: bigint | number, leaf: Uint8Array, proof: Uint8Array[], root: Uint8Array): void {
  const calc = rootFromInclusionProof(index, size, leaf, proof);
  if (root.length !== HASH_SIZE) throw new ProofError(`root is ${root.length} bytes, want ${HASH_SIZE}`);
  if (!sameBytes(calc, root)) throw new ProofError('calculated root does not match the given root');
}

/**
 * Throws unless proof shows that the tree of size2 with root2 extends the tree of size1 with root1.
 * A proof from the empty tree proves nothing and is refused.
 */
export function verifyConsistency(size1: bigint | number, size2: bigint | number, proof: Uint8Array[], root1: Uint8Array, root2: Uint8Array): void {
  const m = big(size1);
  const n = big(size2);
  if (n < m) throw new ProofError(`size2 (${n}) < size1 (${m})`);
  if (m === 0n) throw new ProofError('consistency with the empty tree proves nothing');
  if (m === n) {
    if (proof.length > 0) throw new ProofError('size1 = size2, but the proof is not empty');
    if (!sameBytes(root1, root2)) throw new ProofError('size1 = size2, but the roots differ');
    return;
  }
  if (proof.length === 0) throw new ProofError('empty proof');
  checkHashes(proof);
  if (root1.length !== HASH_SIZE || root2.length !== HASH_SIZE) throw new ProofError(`roots must be ${HASH_SIZE} bytes`);
  let { inner, border } = decompInclProof(m - 1n, n);
  const shift = trailingZeros(m);
  inner -= shift;
  let seed: Uint8Array = proof[0];
  let start = 1;
  if (m === 1n << BigInt(shift)) {
    seed = root1;
    start = 0;
  }
  if (proof.length !== start + inner + border) throw new ProofError(`wrong proof size ${proof.length}, want ${start + inner + border}`);
  const rest = proof.slice(start);
  const mask = (m - 1n) >> BigInt(shift);
  const h1 = chainBorderRight(chainInnerRight(seed, rest.slice(0, inner), mask), rest.slice(inner));
  if (!sameBytes(h1, root1)) throw new ProofError('proof does not lead to root1');
  const h2 = chainBorderRight(chainInner(seed, rest.slice(0, inner), mask), rest.slice(inner));
  if (!sameBytes(h2, root2)) throw new ProofError('proof does not lead to root2');
}

// ---------------------------------------------------------------------------------------------
// Generation over stored complete subtrees (indices are numbers: the log stays below 2^53).

/** A complete subtree: leaves [index·2^level, (index+1)·2^level). */
export interface NodeId {
  level: number;
  index: number;
}

export const nodeKey = (n: NodeId): string => `${n.level}/${n.index}`;
const pow2 = (l: number): number => 2 ** l;

/** Largest power of two strictly below n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The complete subtrees that make up leaves [a, b), left to right, largest first. */
export function rangeNodes(a: number, b: number): NodeId[] {
  const out: NodeId[] = [];
  while (a < b) {
    let l = 0;
    while (a % pow2(l + 1) === 0 && a + pow2(l + 1) <= b) l++;
    out.push({ level: l, index: a / pow2(l) });
    a += pow2(l);
  }
  return out;
}

/** A hash still to be computed: the root of leaves [a, b) from its complete subtrees. */
export interface RangeRef {
  a: number;
  b: number;
}

/** RFC 6962 PATH(m, D[0:n]) as ranges whose roots form the audit path, leaf to root. */
export function inclusionRanges(m: number, n: number): RangeRef[] {
  if (!(m >= 0 && m < n)) throw new ProofError(`index ${m} is beyond tree size ${n}`);
  const out: RangeRef[] = [];
  const walk = (m: number, a: number, b: number): void => {
    if (b - a === 1) return;
    const k = splitPoint(b - a);
    if (m - a < k) {
      walk(m, a, a + k);
      out.push({ a: a + k, b });
    } else {
      walk(m, a + k, b);
      out.push({ a, b: a + k });
    }
  };
  walk(m, 0, n);
  return out;
}

/** RFC 6962 PROOF(m, D[0:n]) as ranges. 0 < m <= n. */
export function consistencyRanges(m: number, n: number): RangeRef[] {
  if (!(m > 0 && m <= n)) throw new ProofError(`need 0 < size1 <= size2, got ${m}, ${n}`);
  const out: RangeRef[] = [];
  const sub = (m: number, a: number, b: number, whole: boolean): void => {
    if (m === b - a) {
      if (!whole) out.push({ a, b });
      return;
    }
    const k = splitPoint(b - a);
    if (m <= k) {
      sub(m, a, a + k, whole);
      out.push({ a: a + k, b });
    } else {
      sub(m - k, a + k, b, false);
      out.push({ a, b: a + k });
    }
  };
  sub(m, 0, n, true);
  return out;
}

/** Root of a range from a map of stored complete subtree hashes. */
export function rangeHash(r: RangeRef, nodes: Map<string, Buffer>): Buffer {
  if (r.a === r.b) return EMPTY_ROOT;
  const parts = rangeNodes(r.a, r.b).map((n) => {
    const h = nodes.get(nodeKey(n));
    if (!h) throw new Error(`tlog node ${nodeKey(n)} is missing`);
    return h;
  });
  let h = parts[parts.length - 1];
  for (let i = parts.length - 2; i >= 0; i--) h = nodeHash(parts[i], h);
  return h;
}

/**
 * The right edge of a tree of size n: its complete subtrees, largest first. Appending leaf n
 * merges it with the right-most ones of equal size; storing every merge gives every complete
 * subtree of the tree, each exactly once.
 */
export interface Frontier {
  size: number;
  /** Complete subtree hashes with their levels, left to right (levels strictly decreasing). */
  nodes: { level: number; hash: Buffer }[];
}

/** Appends one leaf hash to a frontier; returns the complete subtrees it created (level >= 1). */
export function frontierAppend(f: Frontier, leaf: Buffer): { level: number; index: number; hash: Buffer }[] {
  const created: { level: number; index: number; hash: Buffer }[] = [];
  let h = leaf;
  let level = 0;
  let index = f.size;
  while (f.nodes.length > 0 && f.nodes[f.nodes.length - 1].level === level) {
    const left = f.nodes.pop()!;
    h = nodeHash(left.hash, h);
    level++;
    index = Math.floor(index / 2);
    created.push({ level, index, hash: h });
  }
  f.nodes.push({ level, hash: h });
  f.size++;
  return created;
}

export function frontierRoot(f: Frontier): Buffer {
  if (f.nodes.length === 0) return EMPTY_ROOT;
  let h = f.nodes[f.nodes.length - 1].hash;
  for (let i = f.nodes.length - 2; i >= 0; i--) h = nodeHash(f.nodes[i].hash, h);
  return h;
}

/** Node ids of the frontier of a tree of size n. */
export function frontierIds(n: number): NodeId[] {
  return rangeNodes(0, n);
}

/** Root of leaves computed directly (reference implementation for tests). */
export function rootOfLeaves(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return leaves[0];
  const k = splitPoint(leaves.length);
  return nodeHash(rootOfLeaves(leaves.slice(0, k)), rootOfLeaves(leaves.slice(k)));
}
