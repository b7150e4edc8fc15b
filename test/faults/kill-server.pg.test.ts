/**
 * Fault: `kill -9` of a server under concurrent writes (issue 9). A real `menhu serve` on PostgreSQL
 * takes MiningLamp commits/updates (then Ulord transfers) from 8 concurrent clients; it is killed
 * with SIGKILL mid-load and started again. Every write that was answered with success must be
 * stored (reports: and verify against the transparency log); nothing is stored twice; the stored
 * data passes every integrity check (no log entry without its report version, ledger conserved).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { createApp } from '../../src/core/credentials/apps.js';
import { checkpointCovering, getEntry, inclusionProof, leafHash, logInfo, openCheckpoint, treeHead, verifyInclusion } from '../../src/core/tlog/index.js';
import { fund, developerAccount } from '../../src/services/ledger/index.js';
import { createTenant, getDeveloper } from '../../src/services/accounts/index.js';
import { http, jsonBody } from '../helpers.js';
import { startServe, type ServeProc } from '../procs.js';
import { faultEnv, moduleProblems, skipInCluster, sleep, type FaultEnv } from './env.js';

const CLIENTS = 8;

/** Runs `one(i)` from CLIENTS concurrent loops until stopped; request errors (the kill) end a loop's request, not the loop. */
function load(one: (client: number, i: number) => Promise<void>) {
  let on = true;
  const loops = Array.from({ length: CLIENTS }, async (_, c) => {
    for (let i = 0; on; i++) await one(c, i).catch(() => sleep(50));
  });
  return {
    stop: async () => {
      on = false;
      await Promise.all(loops);
    },
  };
}

async function until(cond: () => boolean, ms: number, what: string) {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('kill -9 of a server', { skip: skipInCluster }, () => {
  const envs: FaultEnv[] = [];
  const procs: ServeProc[] = [];
  after(async () => {
    for (const p of procs) await p.kill9();
    for (const e of envs) await e.cleanup();
  });

  it('during MiningLamp commits and updates: every answered commit is stored and verifies against the log, nothing duplicated', { timeout: 240_000 }, async () => {
    const fe = await faultEnv({ pg: true });
    envs.push(fe);
    const setup = await fe.open();
    const t = await createTenant(setup, 'reports under fire');
    const app = await createApp(setup, { tenantId: Number(t.id), name: 'ml', services: ['mininglamp'] });
    const s1 = await startServe(fe.env);
    procs.push(s1);

    const ok: { report: string; sha256: string }[] = [];
    const sent: { report: string; sha256: string }[] = [];
    const answers = new Map<string, number>();
    let target = s1.url;
    const l = load(async (c, i) => {
      // each client commits a report then updates it: half new IDs, half new versions
      const report = `r-${c}-${i >> 1}`;
      const op = i % 2 === 0 ? 'commitreport' : 'updatereport';
      const data = Buffer.from(`%PDF-1.4 report ${report} ${op} ${randomBytes(8).toString('hex')}\n`);
      const sha256 = createHash('sha256').update(data).digest('hex');
      const form = new FormData();
      for (const [k, v] of Object.entries({ user: app.key, passcode: app.secret, title: `t ${report}`, type: 'quarterly', period: '2026Q3', geom: 'POINT(0 0)' })) form.set(k, v);
      form.set('file', new Blob([data], { type: 'application/pdf' }), `${report}.pdf`);
      sent.push({ report, sha256 });
      const r = await fetch(`${target}/api/v1/${op}/${report}`, { method: 'POST', body: form, signal: AbortSignal.timeout(20_000) });
      const text = await r.text();
      answers.set(text, (answers.get(text) ?? 0) + 1);
      if (r.status === 200) {
        assert.equal(text, '200 DATA_UPDATED');
        ok.push({ report, sha256 });
      }
    });
    await until(() => ok.length >= 40, 60_000, '40 answered commits');
    await s1.kill9();
    const answeredBeforeKill = ok.length;
    await sleep(200);
    const s2 = await startServe(fe.env, s1.port);
    procs.push(s2);
    target = s2.url;
    await until(() => ok.length >= answeredBeforeKill + 10, 60_000, 'commits after the restart');
    await l.stop();
    // a commit whose update went to the dead server retries as a new version on the same id: only 200 and the documented refusals
    for (const a of answers.keys()) assert.match(a, /^(200 DATA_UPDATED|501 DATA_ALREADY_EXIST)$/, `unexpected answer ${a}`);

    const ctx = await fe.open();
    const db = ctx.db.kysely;
    const versions = await db
      .selectFrom('report_versions as v')
      .innerJoin('reports as r', 'r.id', 'v.report_pk')
      .select(['r.report_id', 'v.version', 'v.file_sha256', 'v.tlog_index'])
      .where('r.tenant_id', '=', Number(t.id))
      .execute();
    const bySha = new Map<string, (typeof versions)[number][]>();
    for (const v of versions) bySha.set(v.file_sha256, [...(bySha.get(v.file_sha256) ?? []), v]);
    // nothing duplicated: every request's unique bytes are stored at most once, and only bytes that were sent
    const sentSha = new Set(sent.map((x) => x.sha256));
    for (const [sha, vs] of bySha) {
      assert.equal(vs.length, 1, `bytes ${sha} stored ${vs.length} times`);
      assert.ok(sentSha.has(sha), 'a stored version was never sent');
    }
    const cp = await checkpointCovering(ctx, (await treeHead(ctx)).size);
    const signed = openCheckpoint(cp.note, logInfo(ctx).verifierKey, logInfo(ctx).origin);
    assert.equal(signed.size, cp.size);
    for (const a of ok) {
      const v = bySha.get(a.sha256)?.[0];
      assert.ok(v, `answered commit of ${a.report} (${a.sha256}) is not stored`);
      assert.equal(v.report_id, a.report);
      const idx = Number(v.tlog_index);
      const entry = (await getEntry(ctx, idx))!;
      assert.equal(JSON.parse(entry.data).sha256, a.sha256);
      const { proof } = await inclusionProof(ctx, idx, cp.size);
      verifyInclusion(idx, cp.size, leafHash(Buffer.from(entry.data, 'utf8')), proof, signed.root);
    }
    // every log entry has its version, every version its entry and bytes; the tree recomputes to the signed root
    assert.deepEqual(await moduleProblems(ctx), []);
    const reportEntries = (await db.selectFrom('tlog_entries').select('data').execute()).filter((e) => e.data.includes('"menhu.report/v1"')).length;
    assert.equal(reportEntries, versions.length, 'one log entry per stored version');
    console.log(`# reports: ${sent.length} sent, ${ok.length} answered 200 (${answeredBeforeKill} before the kill), ${versions.length} stored`);
  });

  it('during Ulord transfers: every answered transfer is stored once, retries with the same key do not pay twice, the ledger is conserved', { timeout: 240_000 }, async () => {
    const fe = await faultEnv({ pg: true });
    envs.push(fe);
    const s1 = await startServe(fe.env);
    procs.push(s1);
    const reg = await http(`${s1.url}/v1/users/reg/`, jsonBody({ username: 'payer', password: 'pw-payer' }));
    assert.equal(reg.json.errcode, 0, reg.text);
    const login = await http(`${s1.url}/v1/users/login/`, jsonBody({ username: 'payer', password: 'pw-payer' }));
    const token: string = login.json.result.token;
    const add = await http(`${s1.url}/v1/app/add/`, jsonBody({ appname: 'shop', appdes: 'x' }, { authorization: `Bearer ${token}` }));
    assert.equal(add.json.errcode, 0, add.text);
    const appkey: string = (await http(`${s1.url}/v1/app/list/`, jsonBody({}, { authorization: `Bearer ${token}` }))).json.result[0].appkey;
    const wallets = ['w0', 'w1', 'w2', 'w3'];
    for (const w of wallets) assert.equal((await http(`${s1.url}/v1/transactions/createwallet/`, jsonBody({ username: w, pay_password: '123456' }, { appkey }))).json.errcode, 0);
    const setup = await fe.open();
    await fund(setup, await developerAccount(setup, (await getDeveloper(setup, reg.json.result.id))!), '100000');

    let target = s1.url;
    const tried: { key: string; recv: string }[] = [];
    const ok = new Map<string, string>(); // key → txid
    const pay = (key: string, recv: string, url = target) =>
      fetch(`${url}/v1/transactions/paytouser/`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', appkey, 'idempotency-key': key },
        body: JSON.stringify({ is_developer: true, recv_user: recv, amount: '1' }),
        signal: AbortSignal.timeout(20_000),
      });
    const l = load(async (c, i) => {
      const key = `k-${c}-${i}`;
      const recv = wallets[(c + i) % wallets.length];
      tried.push({ key, recv });
      const r = await pay(key, recv);
      const j = (await r.json()) as { errcode: number };
      if (j.errcode === 0) ok.set(key, r.headers.get('x-ulord-txid')!);
    });
    await until(() => ok.size >= 60, 60_000, '60 answered transfers');
    await s1.kill9();
    await l.stop();
    const s2 = await startServe(fe.env, s1.port);
    procs.push(s2);
    target = s2.url;

    const ctx = await fe.open();
    const db = ctx.db.kysely;
    for (const [key, txid] of ok) {
      const row = await db.selectFrom('ledger_transfers').select(['txid', 'amount']).where('idem_key', '=', key).execute();
      assert.equal(row.length, 1, `answered transfer ${key} stored ${row.length} times`);
      assert.equal(row[0].txid, txid);
    }
    // the client retries everything it sent (same idempotency key): answered ones replay, the rest are paid now, once
    let replayed = 0;
    for (const { key, recv } of tried) {
      const r = await pay(key, recv);
      assert.equal(((await r.json()) as { errcode: number }).errcode, 0);
      if (r.headers.get('idempotent-replayed') === 'true') replayed++;
      else assert.ok(!ok.has(key), `answered transfer ${key} was paid again`);
    }
    assert.ok(replayed >= ok.size);
    const stored = await db.selectFrom('ledger_transfers').select(['idem_key']).where('kind', '=', 'pay').execute();
    assert.equal(stored.length, tried.length, 'exactly one transfer per idempotency key');
    assert.equal(new Set(stored.map((x) => x.idem_key)).size, tried.length);
    assert.deepEqual(await moduleProblems(ctx), []);
    console.log(`# ledger: ${tried.length} transfers tried, ${ok.size} answered before the kill, ${replayed} replayed on retry`);
  });
});
