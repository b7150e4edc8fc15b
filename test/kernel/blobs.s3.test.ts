/**
 * Blob store on the S3 backend, against a real S3-compatible server (s3rver, in process) on a
 * random loopback port: the shared suite, and a missing bucket reported as an error.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
// @ts-expect-error s3rver ships no types
import S3rver from 's3rver';
import { S3Backend } from '../../src/core/blobs/index.js';
import { blobSuite } from './blob-suite.js';

describe('S3 blob store (s3rver)', () => {
  let server: { run(): Promise<{ port: number }>; close(): Promise<void> };
  let dir: string;
  let endpoint = '';
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'menhu-s3-'));
    server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: dir, configureBuckets: [{ name: 'menhu-test' }] });
    const addr = await server.run();
    endpoint = `http://127.0.0.1:${addr.port}`;
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const s3env = () => ({
    S3_BUCKET: 'menhu-test',
    S3_ENDPOINT: endpoint,
    S3_REGION: 'us-east-1',
    S3_ACCESS_KEY_ID: 'S3RVER',
    S3_SECRET_ACCESS_KEY: 'S3RVER',
    S3_FORCE_PATH_STYLE: 'true',
  });
  const s = blobSuite('s3', () => ({ env: s3env() }));

  it('keeps the bytes in the bucket, not in the data folder', async () => {
    const p = s.platform();
    await p.ctx.blobs.put('where/am-i.txt', Buffer.from('in the bucket'));
    const direct = new S3Backend({ endpoint, bucket: 'menhu-test', region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    assert.equal((await direct.read('where/am-i.txt')).toString(), 'in the bucket');
    await p.ctx.blobs.delete('where/am-i.txt');
  });

  it('reports a missing bucket as an error, not as a missing blob', async () => {
    const wrong = new S3Backend({ endpoint, bucket: 'no-such-bucket', region: 'us-east-1', accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', forcePathStyle: true });
    await assert.rejects(wrong.write('x', Buffer.from('x'), 'text/plain'), (e) => (e as { name?: string }).name === 'NoSuchBucket');
  });
});
