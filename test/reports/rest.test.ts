/**
 * Native endpoints for reports and the log, the public checkpoint, proof bundles checked offline,
 * and `menhu verify` as a real process (online with --url, then offline with --bundle).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createApp } from '../../src/core/credentials/apps.js';
import { openCheckpoint, verifyConsistency, verifyInclusion } from '../../src/core/tlog/index.js';
import { seedDemo } from '../../src/demo.js';
import { createTenant } from '../../src/services/accounts/index.js';
import { verifyCommand } from '../../src/cli/verify.js';
import { BundleError, verifyBundle, type ProofBundle } from '../../src/services/reports/bundle.js';
import { http, jsonBody, startServer, type TestServer } from '../helpers.js';

const META = { title: 'Q3 监播报告', type: '监播报告', period: '2020.07.01 - 2020.09.30', geom: '中国大陆' };
const F1 = Buffer.from('%PDF-1.4\n% version 1 of the report\n');
const F2 = Buffer.from('%PDF-1.4\n% version 2 of the report\n');
const b64 = (s: string) => Buffer.from(s, 'base64');

function mlForm(file: Buffer): FormData {
  const fd = new FormData();
  for (const [k, v] of Object.entries({ user: 'test', passcode: 'test', ...META })) fd.append(k, v);
  fd.append('file', new Blob([file]), 'Q3.pdf');
  return fd;
}

describe('native report and log endpoints', () => {
  let s: TestServer;
  let auth: Record<string, string>;
  let other: Record<string, string>;
  let tenantId: number;
  let dir: string;

  before(async () => {
    s = await startServer();
    const demo = await seedDemo(s.ctx);
    tenantId = demo.tenantId;
    auth = { authorization: `Bearer ${demo.native.key}.${demo.native.secret}` };
    const t2 = await createTenant(s.ctx, 'someone else');
    const a2 = await createApp(s.ctx, { tenantId: Number(t2.id), name: 'n2', services: ['native'] });
    other = { authorization: `Bearer ${a2.key}.${a2.secret}` };
    dir = mkdtempSync(join(tmpdir(), 'menhu-verify-'));
    assert.equal((await fetch(`${s.url}/api/v1/commitreport/Q3-2020`, { method: 'POST', body: mlForm(F1) })).statusText, 'DATA_UPDATED');
    assert.equal((await fetch(`${s.url}/api/v1/updatereport/Q3-2020`, { method: 'POST', body: mlForm(F2) })).statusText, 'DATA_UPDATED');
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await s.close();
  });

  it('lists and reads reports, versions and files of the caller’s tenant only', async () => {
    const list = await http(`${s.url}/rest/v1/reports`, { headers: auth });
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.json.map((r: { report_id: string; version: number }) => [r.report_id, r.version]),
      [['Q3-2020', 2]],
    );
    const one = await http(`${s.url}/rest/v1/reports/Q3-2020`, { headers: auth });
    assert.equal(one.json.versions.length, 2);
    assert.equal(one.json.versions[0].content_type, 'application/pdf');
    const file = await fetch(`${s.url}/rest/v1/reports/Q3-2020/file?version=1`, { headers: auth });
    assert.deepEqual(Buffer.from(await file.arrayBuffer()), F1);
    assert.equal(file.headers.get('content-disposition'), 'attachment; filename="Q3.pdf"; filename*=UTF-8\'\'Q3.pdf');
    assert.equal((await http(`${s.url}/rest/v1/reports/Q3-2020`, { headers: other })).status, 404);
    assert.equal((await http(`${s.url}/rest/v1/reports/Q3-2020/file`, { headers: other })).status, 404);
    assert.deepEqual((await http(`${s.url}/rest/v1/reports`, { headers: other })).json, []);
    assert.equal((await http(`${s.url}/rest/v1/reports`)).status, 401);
    assert.equal((await http(`${s.url}/rest/v1/reports/a..b%2Fc`, { headers: auth })).status, 400);
  });

  it('publishes the checkpoint at /tlog/checkpoint (text/plain, public) and proofs by API', async () => {
    const res = await fetch(`${s.url}/tlog/checkpoint`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/plain; charset=utf-8');
    const note = await res.text();
    const vkey = (await (await fetch(`${s.url}/tlog/key`)).text()).trim();
    let cp = openCheckpoint(note, vkey);
    while (cp.size < 2) {
      await new Promise((r) => setTimeout(r, 100));
      cp = openCheckpoint(await (await fetch(`${s.url}/tlog/checkpoint`)).text(), vkey);
    }
    const j = (await http(`${s.url}/rest/v1/tlog/checkpoint`)).json;
    assert.equal(j.verifier_key, vkey);
    const incl = (await http(`${s.url}/rest/v1/tlog/proofs/inclusion?index=0&size=${cp.size}`)).json;
    verifyInclusion(0n, BigInt(cp.size), b64(incl.leaf_hash), incl.proof.map(b64), cp.root);
    const cons = (await http(`${s.url}/rest/v1/tlog/proofs/consistency?size1=1&size2=${cp.size}`)).json;
    verifyConsistency(1n, BigInt(cp.size), cons.proof.map(b64), b64(cons.root1), cp.root);
    const entry = (await http(`${s.url}/rest/v1/tlog/entries/1`)).json;
    assert.equal(JSON.parse(entry.data).version, 2);
    assert.equal((await http(`${s.url}/rest/v1/tlog/proofs/inclusion?index=99&size=2`)).status, 400);
    assert.equal((await http(`${s.url}/rest/v1/tlog/proofs/consistency?size1=5&size2=2`)).status, 400);
    assert.equal((await http(`${s.url}/rest/v1/tlog/entries/999`)).status, 404);
  });

  it('bundles prove which version a file is, offline; tampering is caught', async () => {
    const bundle = (await http(`${s.url}/rest/v1/reports/Q3-2020/proof`, { headers: auth })).json as ProofBundle;
    const pub = (await http(`${s.url}/rest/v1/tlog/reports/${tenantId}/Q3-2020/bundle`)).json as ProofBundle;
    assert.deepEqual(pub.entries, bundle.entries);
    const vkey = bundle.log.verifier_key;
    assert.equal(verifyBundle(bundle, F2, { reportId: 'Q3-2020', trustedKey: vkey }).status, 'valid');
    assert.equal(verifyBundle(bundle, F1, { trustedKey: vkey }).status, 'superseded');
    assert.equal(verifyBundle(bundle, Buffer.from('forged'), { trustedKey: vkey }).status, 'no-match');
    assert.throws(() => verifyBundle(bundle, F2, { reportId: 'OTHER' }), BundleError);
    const evil = structuredClone(bundle);
    evil.entries[1].data = evil.entries[1].data.replace(/"sha256":"[0-9a-f]+"/, `"sha256":"${'0'.repeat(64)}"`);
    assert.throws(() => verifyBundle(evil, F2, { trustedKey: vkey }), /leaf hash/);
    const evil2 = structuredClone(bundle);
    evil2.entries[0].inclusion_proof = evil2.entries[1].inclusion_proof;
    assert.throws(() => verifyBundle(evil2, F2, { trustedKey: vkey }), BundleError);
    const other = await startServer();
    try {
      const { logInfo } = await import('../../src/core/tlog/index.js');
      assert.throws(() => verifyBundle(bundle, F2, { trustedKey: logInfo(other.ctx).verifierKey }), /checkpoint/);
    } finally {
      await other.close();
    }
  });

  it('`menhu verify` fetches with --url, then checks offline with --bundle', async () => {
    // async spawn: the server answering the CLI runs in this process
    const cli = (args: string[]) =>
      new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
        const c = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'verify', ...args], { env: { ...process.env, MENHU_DATA: dir, LOG_LEVEL: 'silent' } });
        let stdout = '';
        let stderr = '';
        c.stdout.on('data', (b) => (stdout += b));
        c.stderr.on('data', (b) => (stderr += b));
        c.on('close', (status) => resolve({ status, stdout, stderr }));
      });
    const f2 = join(dir, 'v2.pdf');
    const f1 = join(dir, 'v1.pdf');
    const bundlePath = join(dir, 'bundle.json');
    writeFileSync(f2, F2);
    writeFileSync(f1, F1);
    const online = await cli([f2, '--report', 'Q3-2020', '--url', s.url, '--tenant', String(tenantId), '--bundle', bundlePath]);
    assert.equal(online.status, 0, online.stdout + online.stderr);
    assert.match(online.stdout, /VALID: the file is version 2/);
    const vkey = (JSON.parse(readFileSync(bundlePath, 'utf8')) as ProofBundle).log.verifier_key;
    // the rest in process (same function the CLI runs), to keep the test fast
    const lines: string[] = [];
    const offline = await verifyCommand({ file: f1, report: 'Q3-2020', bundle: bundlePath, key: vkey }, (l) => lines.push(l));
    assert.equal(offline, 1, lines.join('\n'));
    assert.match(lines.join('\n'), /SUPERSEDED: the file is version 1; version 2 replaced it/);
    assert.match(lines.join('\n'), /signature verified with the given key/);
    lines.length = 0;
    const wrongKey = await verifyCommand({ file: f2, report: 'Q3-2020', bundle: bundlePath, key: vkey.replace(/\+[0-9a-f]{8}\+/, '+00000000+') }, (l) => lines.push(l));
    assert.equal(wrongKey, 2);
    assert.match(lines.join('\n'), /verification failed/);
    assert.equal(await verifyCommand({ file: f2, report: 'Q3-2020' }, () => {}), 2, 'no bundle and no url');
  });

  it('recall by API needs the registered metadata; bundles then say recalled', async () => {
    const bad = await http(`${s.url}/rest/v1/reports/Q3-2020/recall`, jsonBody({ ...META, geom: 'x' }, auth));
    assert.equal(bad.status, 409);
    assert.equal(bad.json.code, 'METADATA_MISMATCH');
    const ok = await http(`${s.url}/rest/v1/reports/Q3-2020/recall`, jsonBody(META, auth));
    assert.equal(ok.status, 200);
    assert.equal(ok.json.status, 'recalled');
    const again = await http(`${s.url}/rest/v1/reports/Q3-2020/recall`, jsonBody(META, auth));
    assert.equal(again.json.code, 'REPORT_RECALLED');
    const bundle = (await http(`${s.url}/rest/v1/reports/Q3-2020/proof`, { headers: auth })).json as ProofBundle;
    assert.equal(bundle.entries.length, 3);
    assert.equal(verifyBundle(bundle, F2).status, 'recalled');
  });
});
