/**
 * Beyond the document: real IPFS CIDs for uploads (checked against CIDs `ipfs add` is known to
 * produce, and against an independent computation for raw leaves), download of bought content,
 * the native REST API for wallets, transfers, content and statements, and the Excel export.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import ExcelJS from 'exceljs';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import { sha256 } from 'multiformats/hashes/sha2';
import { createApp } from '../../src/core/credentials/apps.js';
import { PLATFORM_TENANT } from '../../src/services/accounts/index.js';
import { checkCid } from '../../src/services/ledger/content.js';
import { cidsOf } from '../../src/services/ledger/ipfs.js';
import { http, jsonBody } from '../helpers.js';
import { ulordEnv, type UlordEnv } from './fixture.js';

describe('IPFS CIDs', () => {
  it('match `ipfs add` for the empty file and "hello world\\n"', async () => {
    // the CIDv0 every IPFS node prints for these (go-ipfs/kubo defaults: 256 KiB chunks, dag-pb leaves)
    assert.equal((await cidsOf(new Uint8Array())).v0, 'QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH');
    assert.equal((await cidsOf(Buffer.from('hello world\n'))).v0, 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o');
  });

  it('CIDv1 with raw leaves: a one-chunk file is the raw block of its bytes', async () => {
    for (const data of [Buffer.from(''), Buffer.from('hello world\n'), Buffer.alloc(262_144, 7)]) {
      const expected = CID.create(1, raw.code, await sha256.digest(data)).toString();
      assert.equal((await cidsOf(data)).v1, expected);
    }
    assert.equal((await cidsOf(Buffer.from(''))).v1, 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku');
    // two chunks: a dag-pb root over two raw leaves
    const two = await cidsOf(Buffer.alloc(262_145, 1));
    assert.match(two.v1, /^bafybei/);
    assert.match(two.v0, /^Qm/);
  });

  it('validates CIDs', () => {
    assert.equal(checkCid('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o'), 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o');
    assert.ok(checkCid('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'));
    for (const bad of ['Qm', 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5O', 'hello', 'bafy!', 42]) assert.throws(() => checkCid(bad), /CID/);
  });
});

describe('uploads, downloads and native REST', () => {
  let e: UlordEnv;
  let op: string;
  let dev: string;
  const rest = (path: string, init: RequestInit = {}, token = op) => http(`${e.s.url}/rest/v1${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) } });
  before(async () => {
    e = await ulordEnv();
    const opApp = await createApp(e.s.ctx, { tenantId: PLATFORM_TENANT, name: 'operator', services: ['native'] });
    op = `${opApp.key}.${opApp.secret}`;
    dev = e.token;
  });
  afterEach(() => e.checkInvariants());
  after(() => e.s.close());

  it('operator funding through REST; others may not fund', async () => {
    const r = await rest('/ledger/fund', jsonBody({ developer: 'dev1', amount: '250.5' }, { 'idempotency-key': 'fund-1' }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.amount_uld, '250.5');
    assert.equal(r.json.amount, 25_050_000_000);
    const again = await rest('/ledger/fund', jsonBody({ developer: 'dev1', amount: '250.5' }, { 'idempotency-key': 'fund-1' }));
    assert.equal(again.json.replayed, true);
    assert.equal((await rest('/ledger/fund', jsonBody({ developer: 'dev1', amount: '250.5' }), dev)).status, 403);
    assert.equal((await rest('/ledger/fund', jsonBody({ developer: 'nobody', amount: '1' }))).status, 404);
    assert.equal((await rest('/ledger/fund', jsonBody({ developer: 'dev1', amount: '-1' }))).status, 400);
    const me = await rest('/ledger/developer', {}, dev);
    assert.equal(me.json.total_uld, '250.5');
    const audit = await rest('/ledger/audit');
    assert.equal(audit.json.issued, audit.json.held);
  });

  it('wallets and transfers through REST', async () => {
    assert.equal((await rest(`/ledger/apps/${e.appId}/wallets`, jsonBody({ username: 'ann', pay_password: 'annpw' }), dev)).status, 201);
    assert.equal((await rest(`/ledger/apps/${e.appId}/wallets`, jsonBody({ username: 'ben', pay_password: 'benpw' }), dev)).status, 201);
    const t1 = await rest(`/ledger/apps/${e.appId}/transfers`, jsonBody({ from_developer: true, to: 'ann', amount: '10' }, { 'idempotency-key': 'x1' }), dev);
    assert.equal(t1.status, 201, t1.text);
    const t2 = await rest(`/ledger/apps/${e.appId}/transfers`, jsonBody({ from: 'ann', pay_password: 'annpw', to: 'ben', amount: '0.12345678' }, { 'idempotency-key': 'x2' }), dev);
    assert.equal(t2.status, 201, t2.text);
    const t2b = await rest(`/ledger/apps/${e.appId}/transfers`, jsonBody({ from: 'ann', pay_password: 'annpw', to: 'ben', amount: '0.12345678' }, { 'idempotency-key': 'x2' }), dev);
    assert.equal(t2b.status, 200);
    assert.equal(t2b.json.txid, t2.json.txid);
    assert.equal((await rest(`/ledger/apps/${e.appId}/transfers`, jsonBody({ from: 'ann', pay_password: 'annpw', to: 'ben', amount: '100' }), dev)).status, 402);
    assert.equal((await rest(`/ledger/apps/${e.appId}/transfers`, jsonBody({ from: 'ann', pay_password: 'nope', to: 'ben', amount: '1' }), dev)).status, 401);
    const bal = await rest(`/ledger/apps/${e.appId}/wallets/ben`, {}, dev);
    assert.equal(bal.json.total_uld, '0.12345678');
    const list = await rest(`/ledger/apps/${e.appId}/transfers?num=1`, {}, dev);
    assert.equal(list.json.total, 2);
    assert.equal(list.json.transfers.length, 1);
    const wl = await rest(`/ledger/apps/${e.appId}/wallets`, {}, dev);
    assert.deepEqual(wl.json.wallets.map((w: { username: string }) => w.username), ['ann', 'ben']);
    // another developer cannot see this app
    await http(`${e.s.url}/v1/users/reg/`, jsonBody({ username: 'other', password: 'otherpw' }));
    const otherTok = (await http(`${e.s.url}/v1/users/login/`, jsonBody({ username: 'other', password: 'otherpw' }))).json.result.token;
    assert.equal((await rest(`/ledger/apps/${e.appId}/wallets`, {}, otherTok)).status, 404);
  });

  it('upload answers real CIDs; content bought can be downloaded, not before', async () => {
    const file = Buffer.from('hello world\n');
    const up = await http(`${e.s.url}/v1/content/upload/`, { method: 'POST', headers: { appkey: e.appkey, 'content-type': 'application/octet-stream' }, body: file });
    assert.deepEqual(up.json, { errcode: 0, reason: 'success', result: { cid_v1: 'bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4', ipfs_hash: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o', size: 12 } });
    const form = new FormData();
    form.append('file', new Blob([Buffer.alloc(300_000, 3)], { type: 'application/pdf' }), 'big.pdf');
    const up2 = await http(`${e.s.url}/v1/content/upload/`, { method: 'POST', headers: { appkey: e.appkey }, body: form });
    assert.equal(up2.json.errcode, 0, up2.text);
    assert.equal(up2.json.result.size, 300_000);
    const restUp = await rest(`/ledger/apps/${e.appId}/uploads`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: Buffer.from('') }, dev);
    assert.equal(restUp.json.cid_v0, 'QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH');

    const pub = await e.ext('/transactions/publish/', { author: 'ann', title: 'hello', ipfs_hash: up.json.result.cid_v1, price: '1', pay_password: 'annpw', content_type: '.txt' });
    const claim = pub.json.result.claim_id;
    const dl = (user: string) => http(`${e.s.url}/v1/content/download/${claim}/?username=${user}`, { headers: { appkey: e.appkey } });
    assert.equal((await dl('ben')).json.errcode, 20008);
    assert.equal((await dl('ann')).text, 'hello world\n', 'the author may');
    assert.equal((await e.ext('/transactions/consume/', { username: 'ben', claim_id: claim, customer_pay_password: 'benpw' })).json.errcode, 20206, 'ben has 0.12 ULD');
    await rest(`/ledger/apps/${e.appId}/transfers`, jsonBody({ from_developer: true, to: 'ben', amount: '5' }), dev);
    assert.equal((await e.ext('/transactions/consume/', { username: 'ben', claim_id: claim, customer_pay_password: 'benpw' })).json.errcode, 0);
    const got = await dl('ben');
    assert.equal(got.status, 200);
    assert.equal(got.text, 'hello world\n');
    assert.equal(got.headers.get('x-ipfs-hash'), up.json.result.cid_v1);
    assert.equal(createHash('sha256').update(got.text).digest('hex'), createHash('sha256').update(file).digest('hex'));
    const viaRest = await rest(`/ledger/apps/${e.appId}/contents/${claim}/download?username=ben`, {}, dev);
    assert.equal(viaRest.text, 'hello world\n');
    assert.equal((await http(`${e.s.url}/v1/content/download/${'0'.repeat(40)}/?username=ben`, { headers: { appkey: e.appkey } })).json.errcode, 20007);
    assert.equal((await http(`${e.s.url}/v1/content/upload/`, { method: 'POST', headers: { appkey: e.appkey, 'content-type': 'application/json' }, body: '{}' })).json.errcode, 20100);
  });

  it('statements as JSON and as an Excel workbook', async () => {
    const s = await rest(`/ledger/apps/${e.appId}/statements?role=publisher&username=ann`, {}, dev);
    assert.equal(s.json.total, 1);
    assert.equal(s.json.records[0].price_uld, '1');
    const x = await fetch(`${e.s.url}/rest/v1/ledger/apps/${e.appId}/statements.xlsx?role=customer&username=ben`, { headers: { authorization: `Bearer ${dev}` } });
    assert.equal(x.status, 200);
    assert.match(x.headers.get('content-type')!, /spreadsheetml/);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(Buffer.from(await x.arrayBuffer()) as never);
    const ws = wb.worksheets[0];
    assert.equal(ws.rowCount, 2);
    assert.equal(ws.getRow(1).getCell(6).value, 'price (ULD)');
    assert.equal(ws.getRow(2).getCell(3).value, 'hello');
    assert.equal(ws.getRow(2).getCell(6).value, '1');
    assert.match(String(ws.getRow(2).getCell(7).value), /^[0-9a-f]{64}$/);
  });
});
