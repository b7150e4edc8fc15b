/** Blob store on the local folder backend: the shared suite, plus atomic writes. */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { blobSuite } from './blob-suite.js';

describe('local blob store', () => {
  const s = blobSuite('local', () => ({}));

  it('writes atomically: the file is absent or complete, never partial, and no temp file stays', async () => {
    const p = s.platform();
    const root = join(p.dataDir, 'blobs');
    const file = join(root, 'atomic', 'big.bin');
    const size = 32 * 1024 * 1024;
    const data = Buffer.alloc(size, 7);
    // the size limit applies to the store; write through the backend to get a slow, large write
    const sizes = new Set<number>();
    let writing = true;
    const poll = (async () => {
      while (writing) {
        if (existsSync(file)) sizes.add(statSync(file).size);
        await new Promise((r) => setImmediate(r));
      }
    })();
    await p.ctx.blobs.backend.write('atomic/big.bin', data, 'application/octet-stream');
    writing = false;
    await poll;
    assert.deepEqual([...sizes].filter((x) => x !== size), [], 'a partial file was visible');
    assert.equal(statSync(file).size, size);
    assert.deepEqual(readdirSync(join(root, 'atomic')), ['big.bin'], 'no temp files left');
    assert.equal((statSync(file).mode & 0o777).toString(8), '600');
  });
});
