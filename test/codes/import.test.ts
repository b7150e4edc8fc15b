import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import ExcelJS from 'exceljs';
import { createTenant } from '../../src/services/accounts/index.js';
import { createTemplate, listRecords, type Template } from '../../src/services/codes/index.js';
import { importFile } from '../../src/services/codes/import.js';
import { startPlatform, type TestPlatform } from '../helpers.js';

const FIELDS = [
  { name: '名称', type: 'single_line', required: true },
  { name: '日期', type: 'date' },
  { name: '状态', type: 'single_choice', options: ['正常', '维修'] },
  { name: '标签', type: 'multi_choice', options: ['室内', '室外'] },
  { name: '位置', type: 'location' },
];

describe('codes import (CSV / XLSX)', () => {
  let p: TestPlatform;
  let t: Template;
  let tenantId: number;
  before(async () => {
    p = await startPlatform();
    tenantId = Number((await createTenant(p.ctx, 'import')).id);
    t = await createTemplate(p.ctx, { tenantId, title: '导入', fields: FIELDS });
  });
  after(() => p.close());

  it('imports a CSV by column names, accepting labels and plain addresses, and reports rejected rows', async () => {
    const file = join(p.dataDir, 'codes.csv');
    writeFileSync(
      file,
      [
        '备注,位置,名称,日期,状态,标签',
        'ignored,宁波市,泵站1,2024-01-02,维修,"室内,室外"',
        'x,"{""address"":""杭州"",""lat"":30.2,""log"":120.1}",泵站2,2024-01-03,1,2',
        'x,宁波,,2024-01-04,1,1',
        'x,宁波,泵站4,2024-02-30,1,1',
        'x,宁波,泵站5,2024-01-05,9,1',
      ].join('\n'),
    );
    const progress: number[] = [];
    const r = await importFile(p.ctx, t, file, 'import', (done) => progress.push(done));
    assert.equal(r.mapping, 'by-name');
    assert.equal(r.rows, 5);
    assert.equal(r.created, 2);
    assert.deepEqual(
      r.rejected.map((x) => [x.row, x.field]),
      [
        [4, 'values[0]'],
        [5, 'values[1]'],
        [6, 'values[2]'],
      ],
    );
    assert.match(r.rejected[1].reason, /日期.*YYYY-MM-DD/);
    assert.equal(progress.at(-1), 5);
    const recs = await listRecords(p.ctx, t.id);
    assert.deepEqual(recs[0].values, ['泵站1', '2024-01-02', '2', '1,2', '{"address":"宁波市"}']);
    assert.deepEqual(JSON.parse(recs[1].values[4]), { address: '杭州', lat: 30.2, log: 120.1 });
  });

  it('imports an XLSX by position with the real CLI and its progress bar', async () => {
    const wb = new ExcelJS.Workbook();
    const ws = wb.addWorksheet('sheet');
    ws.addRow(['a', 'b', 'c', 'd', 'e']);
    for (let i = 0; i < 1500; i++) ws.addRow([`设备${i}`, new Date(Date.UTC(2024, 0, 1 + (i % 28))), (i % 2) + 1, '1', `地址${i}`]);
    ws.addRow(['', '2024-01-01', 1, 1, 'x']);
    const file = join(p.dataDir, 'codes.xlsx');
    await wb.xlsx.writeFile(file);
    const env = { ...process.env, MENHU_DATA: p.dataDir, MENHU_MASTER_KEY: p.config.masterKey, DATABASE_URL: p.config.databaseUrl, REDIS_URL: '', LOG_LEVEL: 'warn' };
    const out = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'codes', 'import', t.templateNum, file, '--tenant', String(tenantId)], { env, encoding: 'utf8' });
    assert.equal(out.status, 3, out.stderr); // 3: some rows were rejected
    assert.match(out.stdout, /1500 codes created from 1501 rows \(columns in field order\); 1 rejected/);
    assert.match(out.stdout, /row 1502: values\[0\] \(名称, 单行文本\): a value is required/);
    assert.match(out.stderr, /import M\d+: 100% \(1501\/1501\)/);
    const recs = await listRecords(p.ctx, t.id, { limit: 5000 });
    assert.equal(recs.length, 2 + 1500);
    assert.deepEqual(recs[2].values, ['设备0', '2024-01-01', '1', '1', '{"address":"地址0"}']);
    const bad = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'codes', 'import', 'M99', file, '--tenant', String(tenantId)], { env, encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /no template M99/);
  });
});
