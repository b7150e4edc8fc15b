/**
 * One conformance suite for every blob backend (local folder, S3-compatible): the same tests run
 * in blobs.test.ts and blobs.s3.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { after, before, it } from 'node:test';
import { ManualClock } from '../../src/core/context.js';
import { isDomainError } from '../../src/core/errors.js';
import { startPlatform, type TestOptions, type TestPlatform } from '../helpers.js';

export const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
export const UPLOAD_LIMIT = 64 * 1024;

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}
const code = (c: string) => (e: unknown) => isDomainError(e) && e.code === c;

/** Registers the suite's tests in the current describe(). `options` is read when the suite starts. */
export function blobSuite(backend: string, options: () => TestOptions): { platform: () => TestPlatform; clock: ManualClock } {
  const clock = new ManualClock(T0);
  let p: TestPlatform;
  before(async () => {
    const o = options();
    p = await startPlatform({ ...o, clock, env: { MENHU_UPLOAD_LIMIT: String(UPLOAD_LIMIT), ...o.env } });
  });
  after(() => p.close());

  it('uses the configured backend', () => {
    assert.equal(p.ctx.blobs.backend.name, backend);
  });

  it('puts, stats, gets, streams and deletes', async () => {
    const data = Buffer.from('hello blobs ' + 'x'.repeat(1000));
    const row = await p.ctx.blobs.put('t1/hello.txt', data, { contentType: 'text/plain', tenantId: null });
    assert.equal(row.size, data.length);
    assert.equal(row.sha256, createHash('sha256').update(data).digest('hex'));
    assert.equal(row.created_at, T0);
    const st = await p.ctx.blobs.stat('t1/hello.txt');
    assert.equal(st?.content_type, 'text/plain');
    assert.equal(Number(st?.size), data.length);
    assert.deepEqual((await p.ctx.blobs.get('t1/hello.txt')).data, data);
    assert.deepEqual(await collect((await p.ctx.blobs.stream('t1/hello.txt')).body), data);
    // overwrite
    const v2 = Buffer.from([0, 1, 2, 255]);
    await p.ctx.blobs.put('t1/hello.txt', v2);
    assert.deepEqual((await p.ctx.blobs.get('t1/hello.txt')).data, v2);
    assert.equal((await p.ctx.blobs.stat('t1/hello.txt'))?.content_type, 'application/octet-stream');
    await p.ctx.blobs.delete('t1/hello.txt');
    assert.equal(await p.ctx.blobs.stat('t1/hello.txt'), null);
    await assert.rejects(p.ctx.blobs.get('t1/hello.txt'), code('NOT_FOUND'));
    await assert.rejects(p.ctx.blobs.stream('t1/hello.txt'), code('NOT_FOUND'));
    await assert.rejects(p.ctx.blobs.backend.read('t1/hello.txt'), code('NOT_FOUND'));
    await p.ctx.blobs.delete('t1/hello.txt'); // deleting twice is harmless
  });

  it('stores an empty blob and a binary one byte for byte', async () => {
    await p.ctx.blobs.put('empty', Buffer.alloc(0));
    assert.equal((await p.ctx.blobs.get('empty')).data.length, 0);
    const bin = Buffer.from(Array.from({ length: UPLOAD_LIMIT }, (_, i) => (i * 7) % 256));
    await p.ctx.blobs.put('bin/all-bytes.bin', bin);
    assert.ok((await p.ctx.blobs.get('bin/all-bytes.bin')).data.equals(bin));
  });

  it('refuses bad keys and blobs over the upload limit', async () => {
    for (const key of ['', '../escape', 'a/../../b', '/abs', 'a//b', 'sp ace', 'a/'.repeat(9) + 'x', 'x'.repeat(129)]) {
      await assert.rejects(p.ctx.blobs.put(key, Buffer.from('x')), code('VALIDATION'), key);
    }
    await assert.rejects(p.ctx.blobs.put('big', Buffer.alloc(UPLOAD_LIMIT + 1)), code('PAYLOAD_TOO_LARGE'));
    assert.equal(await p.ctx.blobs.stat('big'), null);
  });

  it('expires blobs and sweeps them', async () => {
    await p.ctx.blobs.put('ttl/short', Buffer.from('short'), { expiresAt: T0 + 1000 });
    await p.ctx.blobs.put('ttl/long', Buffer.from('long'), { expiresAt: T0 + 60_000 });
    await p.ctx.blobs.put('ttl/forever', Buffer.from('forever'));
    assert.equal(await p.ctx.blobs.sweep(), 0);
    clock.advance(999);
    assert.ok(await p.ctx.blobs.stat('ttl/short'));
    clock.advance(1);
    assert.equal(await p.ctx.blobs.stat('ttl/short'), null, 'expired blobs are gone before the sweep');
    await assert.rejects(p.ctx.blobs.get('ttl/short'), code('NOT_FOUND'));
    assert.equal(await p.ctx.blobs.sweep(), 1);
    await assert.rejects(p.ctx.blobs.backend.read('ttl/short'), code('NOT_FOUND'), 'the sweep removed the bytes');
    await p.ctx.blobs.setExpiry('ttl/forever', T0 + 2000);
    clock.advance(60_000);
    assert.equal(await p.ctx.blobs.sweep(), 2);
    assert.equal(await p.ctx.blobs.sweep(), 0);
    const rows = await p.ctx.db.kysely.selectFrom('blobs').select('key').where('key', 'like', 'ttl/%').execute();
    assert.deepEqual(rows, []);
    clock.set(T0);
  });

  return { platform: () => p, clock };
}
