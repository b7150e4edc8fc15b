/**
 * The report registry on the real database and blob store: versions, recall, the log entries it
 * writes, bad input, and concurrent commits of one ID (exactly one wins, nothing half-stored).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Ctx } from '../../src/core/context.js';
import { isDomainError } from '../../src/core/errors.js';
import { getEntry, leafHash, treeHead } from '../../src/core/tlog/index.js';
import { createTenant } from '../../src/services/accounts/index.js';
import { getReport, listVersions, metaHash, recallReport, registerReport, reportFile, type ReportLogEntry } from '../../src/services/reports/index.js';
import { startPlatform, type TestPlatform } from '../helpers.js';

const META = { title: 'XXX报告', type: '监播报告', period: '2020.01.01 - 2020.01.31', geom: '中国大陆' };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isDomainError(e)) return e.field ? `${e.code}:${e.field}` : e.code;
    throw e;
  }
  return 'OK';
}

describe('report registry', () => {
  let p: TestPlatform;
  let ctx: Ctx;
  let t1: number;
  let t2: number;
  const blobCount = async () => Number((await ctx.db.kysely.selectFrom('blobs').select((eb) => eb.fn.countAll().as('n')).where('key', 'like', 'reports/%').executeTakeFirstOrThrow()).n);
  const logSize = async () => (await treeHead(ctx)).size;

  before(async () => {
    p = await startPlatform({ config: { uploadLimit: 64 * 1024 } });
    ctx = p.ctx;
    t1 = Number((await createTenant(ctx, 'Acme Research')).id);
    t2 = Number((await createTenant(ctx, 'Other Co')).id);
  });
  after(() => p.close());

  it('commits once, updates keep every version, each writes a chained log entry', async () => {
    const f1 = Buffer.from('%PDF-1.4 version one');
    const r1 = await registerReport(ctx, { tenantId: t1, reportId: 'MZ1000987654', mode: 'commit', meta: META, file: { data: f1, name: 'MZ1000987654.pdf', contentType: 'application/pdf' } });
    assert.equal(r1.version.version, 1);
    assert.equal(r1.version.sha256, sha(f1));
    assert.equal(r1.report.status, 'valid');
    const e1 = JSON.parse(r1.entry.data) as ReportLogEntry;
    assert.deepEqual(e1, { kind: 'menhu.report/v1', action: 'commit', tenant: t1, report: 'MZ1000987654', version: 1, sha256: sha(f1), meta: metaHash(META), time: e1.time, prev: null });
    assert.equal(r1.entry.leafHash, leafHash(Buffer.from(r1.entry.data)).toString('hex'));

    const before = await logSize();
    assert.equal(await code(registerReport(ctx, { tenantId: t1, reportId: 'MZ1000987654', mode: 'commit', meta: META, file: { data: Buffer.from('again') } })), 'REPORT_EXISTS');
    assert.equal(await logSize(), before, 'a refused commit adds no log entry');

    const f2 = Buffer.from('%PDF-1.4 version two');
    const r2 = await registerReport(ctx, { tenantId: t1, reportId: 'MZ1000987654', mode: 'update', meta: { ...META, title: 'XXX报告 (修订)' }, file: { data: f2 } });
    assert.equal(r2.version.version, 2);
    assert.equal(r2.version.action, 'update');
    assert.equal((JSON.parse(r2.entry.data) as ReportLogEntry).prev, r1.entry.index);
    const versions = await listVersions(ctx, t1, 'MZ1000987654');
    assert.deepEqual(
      versions?.map((v) => [v.version, v.sha256, v.title]),
      [
        [1, sha(f1), META.title],
        [2, sha(f2), 'XXX报告 (修订)'],
      ],
    );
    assert.deepEqual((await reportFile(ctx, t1, 'MZ1000987654', 1)).data, f1);
    assert.deepEqual((await reportFile(ctx, t1, 'MZ1000987654')).data, f2);
    assert.equal((await getEntry(ctx, r2.entry.index))?.data, r2.entry.data);

    // update of a new ID is a first registration
    const r3 = await registerReport(ctx, { tenantId: t1, reportId: 'NEW-1', mode: 'update', meta: META, file: { data: Buffer.from('x') } });
    assert.equal(r3.version.version, 1);
    assert.equal(r3.version.action, 'update');
  });

  it('recall needs the registered metadata, happens once, and is logged', async () => {
    const before = await logSize();
    assert.equal(await code(recallReport(ctx, { tenantId: t1, reportId: 'MZ1000987654', meta: META })), 'METADATA_MISMATCH', 'v1 metadata is not the current one');
    assert.equal(await code(recallReport(ctx, { tenantId: t1, reportId: 'NOPE', meta: META })), 'NOT_FOUND');
    assert.equal(await code(recallReport(ctx, { tenantId: t1, reportId: 'MZ1000987654', meta: { ...META, title: undefined } })), 'VALIDATION:title');
    assert.equal(await logSize(), before);
    const cur = { ...META, title: 'XXX报告 (修订)' };
    const r = await recallReport(ctx, { tenantId: t1, reportId: 'MZ1000987654', meta: cur });
    assert.equal(r.report.status, 'recalled');
    const e = JSON.parse(r.entry.data) as ReportLogEntry;
    assert.equal(e.action, 'recall');
    assert.equal(e.version, 2);
    assert.equal(await code(recallReport(ctx, { tenantId: t1, reportId: 'MZ1000987654', meta: cur })), 'REPORT_RECALLED');
    assert.equal(await logSize(), before + 1);
    assert.equal((await getReport(ctx, t1, 'MZ1000987654'))?.status, 'recalled');
  });

  it('refuses bad IDs, incomplete metadata, empty and oversized files without storing anything', async () => {
    const blobs = await blobCount();
    const size = await logSize();
    const f = { data: Buffer.from('ok') };
    for (const id of ['', '../etc', 'a/b', 'a\\b', '.hidden', 'a b', 'x'.repeat(129), 'a%2Fb', 'ä', 'a..b', 'a\nb']) {
      assert.equal(await code(registerReport(ctx, { tenantId: t1, reportId: id, mode: 'commit', meta: META, file: f })), 'VALIDATION:report_id', JSON.stringify(id));
    }
    assert.equal(await code(registerReport(ctx, { tenantId: t1, reportId: 'x'.repeat(128), mode: 'commit', meta: META, file: f })), 'OK');
    for (const k of ['title', 'type', 'period', 'geom']) {
      assert.equal(await code(registerReport(ctx, { tenantId: t1, reportId: 'M1', mode: 'commit', meta: { ...META, [k]: '  ' }, file: f })), `VALIDATION:${k}`);
    }
    assert.equal(await code(registerReport(ctx, { tenantId: t1, reportId: 'M1', mode: 'commit', meta: META, file: null })), 'VALIDATION:file');
    assert.equal(await code(registerReport(ctx, { tenantId: t1, reportId: 'M1', mode: 'commit', meta: META, file: { data: Buffer.alloc(0) } })), 'VALIDATION:file');
    assert.equal(await code(registerReport(ctx, { tenantId: t1, reportId: 'M1', mode: 'commit', meta: META, file: { data: Buffer.alloc(64 * 1024 + 1) } })), 'PAYLOAD_TOO_LARGE:file');
    assert.equal(await getReport(ctx, t1, 'M1'), null);
    assert.equal(await blobCount(), blobs + 1, 'only the 128-character ID stored a file');
    assert.equal(await logSize(), size + 1);
  });

  it('concurrent commits of one ID: exactly one wins; the losers leave no rows, blobs or log entries', async () => {
    const blobs = await blobCount();
    const size = await logSize();
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => code(registerReport(ctx, { tenantId: t1, reportId: 'RACE-1', mode: 'commit', meta: META, file: { data: Buffer.from(`racer ${i}`) } }))),
    );
    assert.equal(results.filter((r) => r === 'OK').length, 1, results.join(','));
    assert.equal(results.filter((r) => r === 'REPORT_EXISTS').length, 11);
    assert.equal(await logSize(), size + 1);
    assert.equal(await blobCount(), blobs + 1);
    assert.equal((await listVersions(ctx, t1, 'RACE-1'))?.length, 1);
    // concurrent updates of a new ID all land, as consecutive versions
    const ups = await Promise.all(Array.from({ length: 6 }, (_, i) => registerReport(ctx, { tenantId: t1, reportId: 'RACE-2', mode: 'update', meta: META, file: { data: Buffer.from(`u ${i}`) } })));
    assert.deepEqual(ups.map((u) => u.version.version).sort(), [1, 2, 3, 4, 5, 6]);
  });

  it('is scoped per tenant', async () => {
    assert.equal(await getReport(ctx, t2, 'MZ1000987654'), null);
    assert.equal(await listVersions(ctx, t2, 'MZ1000987654'), null);
    await assert.rejects(reportFile(ctx, t2, 'MZ1000987654'), (e) => isDomainError(e) && e.code === 'NOT_FOUND');
    const r = await registerReport(ctx, { tenantId: t2, reportId: 'MZ1000987654', mode: 'commit', meta: META, file: { data: Buffer.from('t2') } });
    assert.equal(r.version.version, 1);
    assert.equal((await getReport(ctx, t1, 'MZ1000987654'))?.status, 'recalled');
  });
});
