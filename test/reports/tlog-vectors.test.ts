/**
 * Every RFC 6962 test vector of transparency-dev/merkle in shared/vectors/rfc6962 (inclusion and
 * consistency, happy paths and error cases) against the offline verifiers, with BigInt indices.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { nodeHash, verifyConsistency, verifyInclusion } from '../../src/core/tlog/merkle.js';

// A copy of shared/vectors/rfc6962 (Apache-2.0, see its LICENSE and SOURCE) travels with the tests.
const VECTORS = join(import.meta.dirname, 'vectors/rfc6962');

function walk(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((n) => {
      const p = join(dir, n);
      return statSync(p).isDirectory() ? walk(p) : p.endsWith('.json') ? [p] : [];
    });
}

const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
const bigOf = (v: unknown): bigint => BigInt(v as number);

describe('RFC 6962 vectors', () => {
  const dir = VECTORS;
  for (const kind of ['inclusion', 'consistency'] as const) {
    const files = walk(join(dir, kind));
    it(`${kind}: all ${files.length} vectors`, () => {
      assert.ok(files.length > 50, `expected many ${kind} vectors`);
      let errs = 0;
      for (const f of files) {
        // Parse integers as BigInt-safe: the files hold small numbers, but the verifier takes BigInt.
        const v = JSON.parse(readFileSync(f, 'utf8'));
        const proof = ((v.proof ?? []) as string[]).map(b64);
        const run = () =>
          kind === 'inclusion'
            ? verifyInclusion(bigOf(v.leafIdx), bigOf(v.treeSize), b64(v.leafHash), proof, b64(v.root))
            : verifyConsistency(bigOf(v.size1), bigOf(v.size2), proof, b64(v.root1), b64(v.root2));
        const name = relative(dir, f);
        if (v.wantErr) {
          assert.throws(run, `${name} (${v.desc}) must fail`);
          errs++;
        } else assert.doesNotThrow(run, `${name} (${v.desc}) must pass`);
      }
      assert.ok(errs > 0);
    });
  }

  it('verifies with indices beyond 2^53 (BigInt)', () => {
    // A leaf at index 2^60 - 1 in a tree of 2^60 leaves: the audit path has 60 left siblings.
    const proof = Array.from({ length: 60 }, (_, i) => Buffer.alloc(32, i));
    const leaf = Buffer.alloc(32, 0xaa);
    let root: Buffer = leaf;
    for (const h of proof) root = nodeHash(h, root);
    verifyInclusion((1n << 60n) - 1n, 1n << 60n, leaf, proof, root);
    assert.throws(() => verifyInclusion((1n << 60n) - 2n, 1n << 60n, leaf, proof, root));
  });
});
