/**
 * The MiningLamp dialect over real HTTP: results in the status line (checked on the raw socket),
 * the seed's sample requests as written, every auth error, bad input, concurrent commits.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createApp } from '../../src/core/credentials/apps.js';
import { treeHead } from '../../src/core/tlog/index.js';
import { seedDemo } from '../../src/demo.js';
import { getReport, listVersions } from '../../src/services/reports/index.js';
import { startServer, type TestServer } from '../helpers.js';

const META = { title: 'XXX报告', type: '监播报告', period: '2020.01.01 - 2020.01.31', geom: '中国大陆' };
const CREDS = { user: 'test', passcode: 'test' };
const LIMIT = 3 * 1024 * 1024;

/** The seed's commit_update(): requests.post(url, data=metadata, files={'file': open(path, 'rb')}). */
function form(fields: Record<string, string | undefined>, file?: { field?: string; data: Buffer; name?: string }): FormData {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) fd.append(k, v);
  if (file) fd.append(file.field ?? 'file', new Blob([file.data]), file.name ?? 'MZ1000987654.pdf');
  return fd;
}

describe('MiningLamp dialect', () => {
  let s: TestServer;
  let tenantId: number;
  const post = async (path: string, body: FormData | URLSearchParams | undefined) => {
    const res = await fetch(s.url + path, { method: 'POST', body });
    return { status: res.status, statusText: res.statusText, type: res.headers.get('content-type'), text: await res.text() };
  };
  const expectWire = async (path: string, body: FormData | URLSearchParams | undefined, status: number, name: string) => {
    const r = await post(path, body);
    assert.deepEqual([r.status, r.statusText, r.text], [status, name, `${status} ${name}`], `${path} → ${r.status} ${r.statusText}`);
    assert.equal(r.type, 'text/html; charset=utf-8');
  };
  const logSize = async () => (await treeHead(s.ctx)).size;

  before(async () => {
    s = await startServer({ config: { uploadLimit: LIMIT } });
    tenantId = (await seedDemo(s.ctx)).tenantId;
  });
  after(() => s.close());

  it('carries the result in the status line on the wire (raw socket)', async () => {
    await expectWire('/api/v1/commitreport/RAW-1', form({ ...CREDS, ...META }, { data: Buffer.from('%PDF-1.4 raw') }), 200, 'DATA_UPDATED');
    const body = 'user=test&passcode=test&title=a&type=b&period=c&geom=d';
    const raw = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(new URL(s.url).port), '127.0.0.1', () => {
        sock.write(
          `POST /api/v1/recallreport/RAW-1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
        );
      });
      let out = '';
      sock.on('data', (b) => (out += b.toString('latin1')));
      sock.on('end', () => resolve(out));
      sock.on('error', reject);
    });
    assert.match(raw, /^HTTP\/1\.1 400 METADATA_NOT_MATCHED\r\n/);
    assert.match(raw, /\r\ncontent-type: text\/html; charset=utf-8\r\n/i);
    assert.ok(raw.endsWith('\r\n\r\n400 METADATA_NOT_MATCHED'));
  });

  it("runs the seed's commit, update and recall samples as written", async () => {
    const id = 'MZ1000987654';
    const fields = { ...CREDS, id, ...META };
    await expectWire(`/api/v1/commitreport/${id}`, form(fields, { data: Buffer.from('%PDF-1.4 first') }), 200, 'DATA_UPDATED');
    const size = await logSize();
    await expectWire(`/api/v1/commitreport/${id}`, form(fields, { data: Buffer.from('%PDF-1.4 again') }), 501, 'DATA_ALREADY_EXIST');
    assert.equal(await logSize(), size);
    await expectWire(`/api/v1/updatereport/${id}`, form(fields, { field: 'files', data: Buffer.from('%PDF-1.4 second') }), 200, 'DATA_UPDATED');
    const v = await listVersions(s.ctx, tenantId, id);
    assert.equal(v?.length, 2);
    assert.equal(v?.[0].contentType, 'application/pdf', 'a PDF sent as octet-stream is recognised');
    assert.equal(v?.[1].fileName, 'MZ1000987654.pdf');
    // recall: requests.post(url, data=d) is urlencoded
    await expectWire(`/api/v1/recallreport/${id}`, new URLSearchParams({ ...fields, geom: '全球' }), 400, 'METADATA_NOT_MATCHED');
    await expectWire(`/api/v1/recallreport/${id}`, new URLSearchParams(fields), 200, 'DATA_RECALLED');
    await expectWire(`/api/v1/recallreport/${id}`, new URLSearchParams(fields), 501, 'ALREADY_RECALLED');
    await expectWire('/api/v1/recallreport/NEVER-SEEN', new URLSearchParams(fields), 501, 'DATA_NOT_EXIST');
    await expectWire(`/api/v1/recallreport/${id}`, new URLSearchParams({ ...CREDS, title: 'x' }), 400, 'METADATA_NOT_COMPLETE');
    assert.equal((await getReport(s.ctx, tenantId, id))?.status, 'recalled');
  });

  it('answers every auth error of the document on every endpoint, and adds nothing', async () => {
    const size = await logSize();
    const cases: [Record<string, string | undefined>, number, string][] = [
      [{}, 400, 'NO_USERNAME'],
      [{ passcode: 'test' }, 400, 'NO_USERNAME'],
      [{ user: 'test' }, 400, 'NO_PASSCODE'],
      [{ user: 'nobody', passcode: 'test' }, 400, 'INVALID_USERNAME'],
      [{ user: 'test', passcode: 'wrong' }, 400, 'INVALID_PASSCODE'],
    ];
    for (const op of ['commitreport', 'updatereport', 'recallreport']) {
      for (const [c, status, name] of cases) {
        await expectWire(`/api/v1/${op}/AUTH-1`, form({ ...c, ...META }, { data: Buffer.from('x') }), status, name);
        await expectWire(`/api/v1/${op}/AUTH-1`, new URLSearchParams(Object.entries({ ...c, ...META }).filter((e): e is [string, string] => e[1] !== undefined)), status, name);
      }
      await expectWire(`/api/v1/${op}/AUTH-1`, undefined, 400, 'NO_USERNAME');
    }
    assert.equal(await logSize(), size);
    assert.equal(await getReport(s.ctx, tenantId, 'AUTH-1'), null);
  });

  it('refuses expired and blocked apps with their own names', async () => {
    await createApp(s.ctx, { tenantId, name: 'expired', services: ['mininglamp'], key: 'old', secret: 'oldpass', expiresAt: Date.now() - 1000 });
    await createApp(s.ctx, { tenantId, name: 'blocked', services: ['mininglamp'], key: 'blk', secret: 'blkpass' }).then((a) =>
      s.ctx.db.kysely.updateTable('apps').set({ blocked: 1 }).where('id', '=', a.id).execute(),
    );
    await createApp(s.ctx, { tenantId, name: 'other service', services: ['fangtang'], key: 'ft', secret: 'ftpass' });
    const f = (user: string, passcode: string) => form({ user, passcode, ...META }, { data: Buffer.from('x') });
    await expectWire('/api/v1/commitreport/EXP-1', f('old', 'oldpass'), 403, 'USER_EXPIRED');
    await expectWire('/api/v1/commitreport/EXP-1', f('blk', 'blkpass'), 403, 'USER_BLOCKED');
    await expectWire('/api/v1/commitreport/EXP-1', f('ft', 'ftpass'), 400, 'INVALID_USERNAME');
  });

  it('refuses bad IDs, missing metadata, missing, empty and oversized files', async () => {
    const size = await logSize();
    const good = (data = Buffer.from('%PDF-1.4 x')) => form({ ...CREDS, ...META }, { data });
    for (const path of ['a%2Fb', '..%2F..%2Fetc', 'a/b', '.hidden', `${'x'.repeat(129)}`, 'a%20b', '%E4%B8%AD', '']) {
      await expectWire(`/api/v1/commitreport/${path}`, good(), 400, 'INVALID_REPORT_ID');
    }
    for (const k of ['title', 'type', 'period', 'geom']) {
      await expectWire('/api/v1/commitreport/BAD-1', form({ ...CREDS, ...META, [k]: undefined }, { data: Buffer.from('x') }), 400, 'METADATA_NOT_COMPLETE');
    }
    await expectWire('/api/v1/commitreport/BAD-1', form({ ...CREDS, ...META }), 400, 'NO_FILE_PROVIDED');
    await expectWire('/api/v1/commitreport/BAD-1', form({ ...CREDS, ...META }, { field: 'attachment', data: Buffer.from('x') }), 400, 'NO_FILE_PROVIDED');
    await expectWire('/api/v1/commitreport/BAD-1', good(Buffer.alloc(0)), 400, 'NO_FILE_PROVIDED');
    await expectWire('/api/v1/commitreport/BAD-1', good(Buffer.alloc(LIMIT + 1, 1)), 413, 'FILE_TOO_LARGE');
    await expectWire('/api/v1/commitreport/BAD-1', 'garbage' as unknown as URLSearchParams, 400, 'NO_USERNAME');
    assert.equal(await logSize(), size);
    assert.equal(await getReport(s.ctx, tenantId, 'BAD-1'), null);
    // larger than the 1 MiB JSON/form body limit, within the upload limit
    await expectWire('/api/v1/commitreport/BIG-1', good(Buffer.alloc(2 * 1024 * 1024, 7)), 200, 'DATA_UPDATED');
    assert.equal((await listVersions(s.ctx, tenantId, 'BIG-1'))?.[0].size, 2 * 1024 * 1024);
  });

  it('concurrent commits of one ID over HTTP: exactly one DATA_UPDATED', async () => {
    const size = await logSize();
    const rs = await Promise.all(Array.from({ length: 8 }, (_, i) => post('/api/v1/commitreport/RACE-HTTP', form({ ...CREDS, ...META }, { data: Buffer.from(`r${i}`) }))));
    assert.deepEqual(rs.map((r) => r.statusText).sort(), ['DATA_ALREADY_EXIST', 'DATA_ALREADY_EXIST', 'DATA_ALREADY_EXIST', 'DATA_ALREADY_EXIST', 'DATA_ALREADY_EXIST', 'DATA_ALREADY_EXIST', 'DATA_ALREADY_EXIST', 'DATA_UPDATED']);
    assert.equal(await logSize(), size + 1);
  });
});
