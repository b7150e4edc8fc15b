/**
 * The Ulord dialect end to end over HTTP: every endpoint of seed 003, the appendix error codes for
 * bad input (and nothing written when refused), and the ledger invariants after every test.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/context.js';
import { setDeveloperRole } from '../../src/services/accounts/index.js';
import { http, jsonBody } from '../helpers.js';
import { ulordEnv, type UlordEnv } from './fixture.js';

const CID = 'QmUH2NbKrURA6hAmJnhfP4VTDtkjUs3fVCN2L7DoE3JLmm';
const CID_V1 = 'bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4';

describe('Ulord management (part 一)', () => {
  let e: UlordEnv;
  let adminToken: string;
  const as = (token: string) => (path: string, body: unknown = {}) => http(`${e.s.url}/v1${path}`, jsonBody(body, { authorization: `Bearer ${token}` }));
  before(async () => {
    e = await ulordEnv();
    const r = await http(`${e.s.url}/v1/users/reg/`, jsonBody({ username: 'boss', password: 'bosspw' }));
    await setDeveloperRole(e.s.ctx, r.json.result.id, 'admin');
    adminToken = (await http(`${e.s.url}/v1/users/login/`, jsonBody({ username: 'boss', password: 'bosspw' }))).json.result.token;
  });
  after(() => e.s.close());

  it('needs a logged-in developer; login sets a session cookie', async () => {
    const anon = await http(`${e.s.url}/v1/role/list/`);
    assert.deepEqual(anon.json, { errcode: 10011, reason: '当前没有登录用户,请登录.', detail: anon.json.detail });
    const login = await fetch(`${e.s.url}/v1/users/login/`, jsonBody({ username: 'dev1', password: 'pw-dev1' }));
    const cookie = login.headers.get('set-cookie')!.split(';')[0];
    const withCookie = await http(`${e.s.url}/v1/role/list/`, { headers: { cookie } });
    assert.equal(withCookie.json.errcode, 0);
    assert.deepEqual(
      withCookie.json.result.map((r: { name: string }) => r.name),
      ['admin', 'normal', 'blocked'],
    );
    assert.deepEqual(Object.keys(withCookie.json.result[0]), ['des', 'id', 'name']);
    const bad = await http(`${e.s.url}/v1/users/login/`, jsonBody({ username: 'dev1', password: 'nope' }));
    assert.equal(bad.json.errcode, 20004);
    const nobody = await http(`${e.s.url}/v1/users/login/`, jsonBody({ username: 'ghost', password: 'nope' }));
    assert.equal(nobody.json.errcode, 20003);
    const missing = await http(`${e.s.url}/v1/users/login/`, jsonBody({ username: 'dev1' }));
    assert.equal(missing.json.errcode, 20100);
  });

  it('roles: only admins add, edit and remove', async () => {
    const admin = as(adminToken);
    assert.equal((await e.mgmt('/role/add/', { name: 'vip', des: 'x' })).json.errcode, 10013);
    const add = await admin('/role/add/', { name: 'vip', des: '贵宾' });
    assert.equal(add.json.errcode, 0);
    const id = add.json.result.id;
    assert.equal((await admin('/role/add/', { name: 'vip' })).json.errcode, 20002);
    assert.deepEqual((await admin('/role/edit/', { id, name: 'vip2', des: 'y' })).json, { errcode: 0, reason: 'success' });
    assert.equal((await admin('/role/edit/', { id: 999, name: 'z' })).json.errcode, 20005);
    assert.equal((await admin('/role/edit/', { id: 'abc', name: 'z' })).json.errcode, 20101);
    assert.deepEqual((await admin('/role/remove/', { id })).json, { errcode: 0, reason: 'success', result: { num: 1 } });
    assert.equal((await admin('/role/remove/', {})).json.errcode, 20100);
    assert.equal((await admin('/role/remove/', { id: 1 })).json.errcode, 10013, 'built-in roles stay');
  });

  it('app types: a tree of any depth; cycles and removal of used types refused', async () => {
    const admin = as(adminToken);
    assert.equal((await e.mgmt('/type/add/', { name: 'x' })).json.errcode, 10013);
    const text = (await admin('/type/add/', { name: '文字', des: '博客,论坛等等' })).json.result.id;
    const blog = (await admin('/type/add/', { name: '博客', des: 'boke', parent_id: text })).json.result.id;
    const deep = (await admin('/type/add/', { name: 'deep', des: 'd', parent_id: blog })).json.result.id;
    const pic = (await admin('/type/add/', { name: '图片', des: '图片' })).json.result.id;
    assert.equal((await admin('/type/add/', { name: 'orphan', parent_id: 9999 })).json.errcode, 20005);
    const list = await http(`${e.s.url}/v1/type/list/`, { headers: { authorization: `Bearer ${e.token}` } });
    assert.deepEqual(list.json.result, [
      { children: [{ children: [{ des: 'd', id: deep, name: 'deep', parent_id: blog }], des: 'boke', id: blog, name: '博客', parent_id: text }], des: '博客,论坛等等', id: text, name: '文字', parent_id: null },
      { des: '图片', id: pic, name: '图片', parent_id: null },
    ]);
    // moving a type under its own descendant is refused; nothing changes
    assert.equal((await admin('/type/edit/', { id: text, name: '文字', des: 'x', parent_id: deep })).json.errcode, 20101);
    assert.equal((await admin('/type/edit/', { id: pic, name: '图片2', parent_id: text })).json.errcode, 0);
    const moved = (await http(`${e.s.url}/v1/type/list/`, { headers: { authorization: `Bearer ${e.token}` } })).json.result;
    assert.equal(moved.length, 1);
    assert.equal(moved[0].children[1].name, '图片2');
    assert.equal(moved[0].children[1].des, '图片', 'fields left out keep their value');
    // a type with children, or with apps, cannot be removed
    const r1 = await admin('/type/remove/', { id: text });
    assert.equal(r1.json.errcode, 403);
    assert.match(r1.json.detail, /child types/);
    const app = await e.mgmt('/app/add/', { appname: 'typed', apptype_id: deep });
    assert.equal(app.json.errcode, 0);
    const r2 = await admin('/type/remove/', { id: deep });
    assert.equal(r2.json.errcode, 403);
    assert.match(r2.json.detail, /apps/);
    assert.equal((await e.mgmt('/app/remove/', { id: app.json.result.id })).json.result.num, 1);
    assert.deepEqual((await admin('/type/remove/', { id: deep })).json, { errcode: 0, reason: 'success', result: { num: 1 } });
  });

  it('developers: registration, duplicates, roles, password change, blocking', async () => {
    const reg = (b: unknown, h: Record<string, string> = {}) => http(`${e.s.url}/v1/users/reg/`, jsonBody(b, h));
    const r = await reg({ username: 'alice', password: 'alicepw', email: 'a@example.com', telphone: '123', role_id: 2 });
    assert.equal(r.json.errcode, 0);
    assert.equal((await reg({ username: 'alice', password: 'xxxx' })).json.errcode, 20000);
    assert.equal((await reg({ username: 'alice2', password: 'xxxx', email: 'a@example.com' })).json.errcode, 20001);
    assert.equal((await reg({ username: 'mallory', password: 'xxxx', role_id: 1 })).json.errcode, 10013, 'nobody makes themselves admin');
    assert.equal((await reg({ username: 'bob', password: 'xxxx', role_id: 1 }, { authorization: `Bearer ${adminToken}` })).json.errcode, 0, 'an admin may');
    assert.equal((await reg({ username: 'carol', password: 'xxxx', role_id: 999 })).json.errcode, 20005);
    assert.equal((await reg({ password: 'xxxx' })).json.errcode, 20100);
    // each registered developer has a tenant of their own
    const devs = await e.s.ctx.db.kysely.selectFrom('developers').select(['username', 'tenant_id']).execute();
    assert.equal(new Set(devs.map((d) => d.tenant_id)).size, devs.length);

    const tok = (await http(`${e.s.url}/v1/users/login/`, jsonBody({ username: 'alice', password: 'alicepw' }))).json.result.token;
    const alice = as(tok);
    assert.equal((await alice('/users/edit/', { username: 'alice', password: 'wrong', new_password: 'newpw1' })).json.errcode, 20004);
    assert.equal((await alice('/users/edit/', { username: 'dev1', password: 'pw-dev1', new_password: 'newpw1' })).json.errcode, 10013);
    assert.equal((await alice('/users/edit/', { username: 'alice', password: 'alicepw' })).json.errcode, 20100);
    assert.deepEqual((await alice('/users/edit/', { username: 'alice', password: 'alicepw', new_password: 'newpw1' })).json, { errcode: 0, reason: 'success' });
    assert.equal((await http(`${e.s.url}/v1/users/login/`, jsonBody({ username: 'alice', password: 'alicepw' }))).json.errcode, 20004);
    const tok2 = (await http(`${e.s.url}/v1/users/login/`, jsonBody({ username: 'alice', password: 'newpw1' }))).json.result.token;

    // blocked: the open session and new logins get 20006
    await setDeveloperRole(e.s.ctx, r.json.result.id, 'blocked');
    assert.equal((await http(`${e.s.url}/v1/role/list/`, { headers: { token: tok2 } })).json.errcode, 20006);
    assert.equal((await as(tok2)('/app/list/')).json.errcode, 20006);
    assert.equal((await http(`${e.s.url}/v1/users/login/`, jsonBody({ username: 'alice', password: 'newpw1' }))).json.errcode, 20006);
  });

  it('registration can be closed by configuration', async () => {
    e.s.ctx.config.openRegistration = false;
    try {
      assert.equal((await http(`${e.s.url}/v1/users/reg/`, jsonBody({ username: 'late', password: 'xxxx' }))).json.errcode, 10011);
      assert.equal((await http(`${e.s.url}/v1/users/reg/`, jsonBody({ username: 'late', password: 'xxxx' }, { authorization: `Bearer ${e.token}` }))).json.errcode, 10013);
      assert.equal((await http(`${e.s.url}/v1/users/reg/`, jsonBody({ username: 'late', password: 'xxxx' }, { authorization: `Bearer ${adminToken}` }))).json.errcode, 0);
    } finally {
      e.s.ctx.config.openRegistration = true;
    }
  });

  it('apps: add, list with key and secret, rotate the secret, remove', async () => {
    assert.equal((await e.mgmt('/app/add/', { appname: 'blog' })).json.errcode, 20002, 'names are unique per developer');
    assert.equal((await e.mgmt('/app/add/', { appdes: 'x' })).json.errcode, 20100);
    assert.equal((await e.mgmt('/app/add/', { appname: 'x', apptype_id: 424242 })).json.errcode, 20005);
    const add = await e.mgmt('/app/add/', { user_id: e.devId, appname: 'photos', appdes: 'pics' });
    assert.equal(add.json.errcode, 0);
    assert.equal((await e.mgmt('/app/add/', { user_id: 999, appname: 'x' })).json.errcode, 10013, "not another developer's");
    const list = (await e.mgmt('/app/list/', { user_id: e.devId })).json.result;
    const photos = list.find((a: { appname: string }) => a.appname === 'photos');
    assert.deepEqual(Object.keys(photos), ['appdes', 'appkey', 'appname', 'create_timed', 'id', 'secret', 'type', 'update_timed']);
    assert.match(photos.appkey, /^[0-9a-f]{32}$/);
    assert.match(photos.secret, /^[0-9a-f]{32}$/);
    assert.match(photos.create_timed, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
    const rot = await e.mgmt('/app/edit/', { id: photos.id, user_id: e.devId });
    assert.equal(rot.json.errcode, 0);
    assert.match(rot.json.result.secret, /^[0-9a-f]{32}$/);
    assert.notEqual(rot.json.result.secret, photos.secret);
    assert.equal((await as(adminToken)('/app/edit/', { id: 9999 })).json.errcode, 20005);
    // someone else's app is not found for them
    const other = await http(`${e.s.url}/v1/users/reg/`, jsonBody({ username: 'eve', password: 'evepw' }));
    assert.equal(other.json.errcode, 0);
    const eve = as((await http(`${e.s.url}/v1/users/login/`, jsonBody({ username: 'eve', password: 'evepw' }))).json.result.token);
    assert.equal((await eve('/app/remove/', { id: photos.id })).json.errcode, 20005);
    assert.deepEqual((await eve('/app/list/')).json.result, []);
    assert.deepEqual((await e.mgmt('/app/remove/', { id: photos.id })).json, { errcode: 0, reason: 'success', result: { num: 1 } });
  });
});

describe('Ulord external calls (part 二)', () => {
  let e: UlordEnv;
  const clock = new ManualClock(Date.UTC(2026, 10, 23, 9, 0, 0));
  before(async () => {
    e = await ulordEnv({ clock });
    await e.fundDeveloper('1000');
  });
  afterEach(() => e.checkInvariants());
  after(() => e.s.close());

  it('the app key is required and checked', async () => {
    const none = await http(`${e.s.url}/v1/transactions/balance/`, jsonBody({ username: 'x', pay_password: 'y' }));
    assert.deepEqual(none.json, { errcode: 10012, reason: '缺少应用KEY值.', detail: none.json.detail });
    assert.equal((await e.ext('/transactions/balance/', {}, { appkey: 'f'.repeat(32) })).json.errcode, 10001);
  });

  it('createwallet accepts pay_passwrod and pay_password; names are unique per app', async () => {
    assert.deepEqual((await e.ext('/transactions/createwallet/', { username: 'justin', pay_passwrod: '123456' })).json, { errcode: 0, reason: 'success', result: { id: 'justin' } });
    assert.equal((await e.ext('/transactions/createwallet/', { username: 'user2', pay_password: 'abcdef' })).json.errcode, 0);
    assert.equal((await e.ext('/transactions/createwallet/', { username: 'ads', pay_password: 'adspw' })).json.errcode, 0);
    assert.equal((await e.ext('/transactions/createwallet/', { username: 'justin', pay_password: 'x' })).json.errcode, 20000);
    assert.equal((await e.ext('/transactions/createwallet/', { username: 'nopw' })).json.errcode, 20100);
    assert.equal((await e.ext('/transactions/createwallet/', { username: { a: 1 }, pay_password: 'x' })).json.errcode, 20101);
    assert.equal((await e.ext('/transactions/createwallet/', { username: 'x'.repeat(65), pay_password: 'x' })).json.errcode, 20101);
    const hash = await e.s.ctx.db.kysely.selectFrom('ledger_accounts').select('pay_hash').where('owner', '=', 'justin').executeTakeFirstOrThrow();
    assert.match(hash.pay_hash!, /^scrypt\$/);
  });

  it('paytouser from the developer account and between wallets; balance', async () => {
    assert.deepEqual((await e.ext('/transactions/paytouser/', { is_developer: true, recv_user: 'justin', amount: '100' })).json, { errcode: 0, reason: 'success' });
    assert.equal((await e.ext('/transactions/paytouser/', { is_developer: true, recv_user: 'ads', amount: 50 })).json.errcode, 0);
    const r = await e.ext('/transactions/paytouser/', { is_developer: false, send_user: 'justin', pay_password: '123456', recv_user: 'user2', amount: 0.1 });
    assert.equal(r.json.errcode, 0);
    assert.match(r.headers.get('x-ulord-txid')!, /^[0-9a-f]{64}$/);
    assert.equal((await e.ext('/transactions/paytouser/', { send_user: 'justin', pay_password: '123456', recv_user: 'user2', amount: '0.00000001' })).json.errcode, 0);
    const bal = await e.ext('/transactions/balance/', { username: 'justin', pay_password: '123456' });
    assert.deepEqual(bal.json, { errcode: 0, reason: 'success', result: { confirmed: 99.89999999, total: 99.89999999, unconfirmed: 0, unmatured: 0 } });
    assert.equal((await e.ext('/transactions/balance/', { username: 'user2', pay_password: 'abcdef' })).json.result.total, 0.10000001);
    assert.equal((await e.ext('/transactions/balance/', { username: 'user2', pay_password: 'bad' })).json.errcode, 20004);
    assert.equal((await e.ext('/transactions/balance/', { username: 'ghost', pay_password: 'bad' })).json.errcode, 20003);
  });

  it('bad payments get the documented codes and write nothing', async () => {
    const cases: [unknown, number][] = [
      [{ send_user: 'justin', pay_password: '123456', recv_user: 'user2' }, 20100],
      [{ send_user: 'justin', pay_password: '123456', recv_user: 'user2', amount: -1 }, 20101],
      [{ send_user: 'justin', pay_password: '123456', recv_user: 'user2', amount: '-1' }, 20101],
      [{ send_user: 'justin', pay_password: '123456', recv_user: 'user2', amount: 0 }, 20101],
      [{ send_user: 'justin', pay_password: '123456', recv_user: 'user2', amount: 'ten' }, 20101],
      [{ send_user: 'justin', pay_password: '123456', recv_user: 'user2', amount: '1.123456789' }, 20101],
      [{ send_user: 'justin', pay_password: '123456', recv_user: 'user2', amount: 0.123456789 }, 20101],
      [{ send_user: 'justin', pay_password: '123456', recv_user: 'user2', amount: '1e400' }, 20101],
      [{ send_user: 'justin', pay_password: '123456', recv_user: 'user2', amount: [1] }, 20101],
      [{ send_user: 'justin', pay_password: '123456', recv_user: 'user2', amount: '100000000' }, 20101],
      [{ send_user: 'justin', pay_password: '123456', recv_user: 'justin', amount: 1 }, 20206],
      [{ send_user: 'justin', pay_password: '123456', recv_user: 'nobody', amount: 1 }, 20003],
      [{ send_user: 'nobody', pay_password: '123456', recv_user: 'user2', amount: 1 }, 20003],
      [{ send_user: 'justin', recv_user: 'user2', amount: 1 }, 20100],
      [{ send_user: 'justin', pay_password: '000000', recv_user: 'user2', amount: 1 }, 20004],
      [{ send_user: 'justin', pay_password: '123456', recv_user: 'user2', amount: '1000' }, 20206],
      [{ send_user: 'user2', pay_password: 'abcdef', recv_user: 'justin', amount: '0.10000002' }, 20206],
      [{ is_developer: 'maybe', recv_user: 'user2', amount: 1 }, 20101],
      [{ is_developer: true, recv_user: 'user2', amount: '100000' }, 20206],
    ];
    // a wrong pay password counts a failure (that is written, on purpose); reset it afterwards
    for (const [b, code] of cases) {
      const before = await e.counts();
      const r = await e.ext('/transactions/paytouser/', b);
      assert.equal(r.json.errcode, code, `${JSON.stringify(b)} → ${r.text}`);
      assert.equal(r.json.reason !== undefined && r.json.result === undefined, true);
      const after = await e.counts();
      assert.deepEqual({ ...after, state: 0 }, { ...before, state: 0 }, `nothing written for ${JSON.stringify(b)}`);
      if (code !== 20004) assert.equal(after.state, before.state);
    }
    const notJson = await http(`${e.s.url}/v1/transactions/paytouser/`, { method: 'POST', headers: { 'content-type': 'application/json', appkey: e.appkey }, body: '{"amount":' });
    assert.equal(notJson.json.errcode, 20102);
    const arr = await http(`${e.s.url}/v1/transactions/paytouser/`, { method: 'POST', headers: { 'content-type': 'application/json', appkey: e.appkey }, body: '[1,2]' });
    assert.equal(arr.json.errcode, 20102);
    // a good payment resets the failure count
    assert.equal((await e.ext('/transactions/balance/', { username: 'justin', pay_password: '123456' })).json.errcode, 0);
  });

  it('idempotency: a retried payment is not paid twice; the same key with other content is refused', async () => {
    const h = { 'idempotency-key': 'order-42' };
    const b = { send_user: 'justin', pay_password: '123456', recv_user: 'user2', amount: '2.5' };
    const r1 = await e.ext('/transactions/paytouser/', b, h);
    const r2 = await e.ext('/transactions/paytouser/', b, h);
    assert.equal(r1.json.errcode, 0);
    assert.equal(r2.json.errcode, 0);
    assert.equal(r2.headers.get('idempotent-replayed'), 'true');
    assert.equal(r1.headers.get('x-ulord-txid'), r2.headers.get('x-ulord-txid'));
    const n = await e.s.ctx.db.kysely.selectFrom('ledger_transfers').select('id').where('idem_key', '=', 'order-42').execute();
    assert.equal(n.length, 1);
    const r3 = await e.ext('/transactions/paytouser/', { ...b, amount: '3' }, h);
    assert.equal(r3.json.errcode, 20206);
    assert.match(r3.json.detail, /idempotency key/);
    // body field works as well
    assert.equal((await e.ext('/transactions/paytouser/', { ...b, amount: '0.5', idempotency_key: 'order-43' })).json.errcode, 0);
    assert.equal((await e.ext('/transactions/paytouser/', { ...b, amount: '0.5', idempotency_key: 'order-43' })).json.errcode, 0);
    assert.equal((await e.ext('/transactions/balance/', { username: 'user2', pay_password: 'abcdef' })).json.result.total, 3.10000001);
  });

  let paid: string;
  let ad: string;
  let free: string;
  it('publish validates the record and answers {id, claim_id}', async () => {
    const base = { author: 'justin', title: '第2篇技术博客', tag: ['C++', 'java', 'javascript'], ipfs_hash: CID, price: 1.3, content_type: '.txt', pay_password: '123456', description: '这是使用IPFS和区块链生成的第2篇博客的描述信息' };
    const r = await e.ext('/transactions/publish/', base);
    assert.equal(r.json.errcode, 0, r.text);
    assert.deepEqual(Object.keys(r.json.result), ['claim_id', 'id']);
    assert.match(r.json.result.claim_id, /^[0-9a-f]{40}$/);
    paid = r.json.result.claim_id;
    ad = (await e.ext('/transactions/publish/', { ...base, author: 'ads', title: 'the first ads', price: -0.02, ipfs_hash: CID_V1, pay_password: 'adspw' })).json.result.claim_id;
    free = (await e.ext('/transactions/publish/', { ...base, title: 'free', price: '0', tag: 'a, b' })).json.result.claim_id;
    assert.notEqual(paid, free);
    const before = await e.counts();
    const bad: [Record<string, unknown>, number][] = [
      [{ ipfs_hash: 'QmNotACid' }, 20101],
      [{ ipfs_hash: undefined }, 20100],
      [{ title: undefined }, 20100],
      [{ price: '1.000000001' }, 20101],
      [{ price: 'free' }, 20101],
      [{ tag: [1, 2] }, 20101],
      [{ pay_password: 'wrong' }, 20004],
      [{ author: 'ghost' }, 20003],
    ];
    for (const [patch, code] of bad) assert.equal((await e.ext('/transactions/publish/', { ...base, ...patch })).json.errcode, code, JSON.stringify(patch));
    const after = await e.counts();
    assert.equal(after.ledger_contents, before.ledger_contents);
    assert.equal((await e.ext('/transactions/balance/', { username: 'justin', pay_password: '123456' })).json.errcode, 0);
  });

  it('consume pays the author once; ads pay the customer from the author', async () => {
    assert.equal((await e.ext('/transactions/consume/', { username: 'user2', claim_id: paid })).json.errcode, 20100, 'customer_pay_password needed');
    assert.equal((await e.ext('/transactions/consume/', { username: 'user2', claim_id: paid, customer_pay_password: 'bad' })).json.errcode, 20004);
    assert.equal((await e.ext('/transactions/consume/', { username: 'user2', claim_id: 'e1b98bcc018950ac4684c663d0ea4fa9fc19543d', customer_pay_password: 'abcdef' })).json.errcode, 20007);
    assert.equal((await e.ext('/transactions/consume/', { username: 'user2', claim_id: 'zz', customer_pay_password: 'abcdef' })).json.errcode, 20101);
    const c1 = await e.ext('/transactions/consume/', { username: 'user2', claim_id: paid, customer_pay_password: 'abcdef' });
    assert.deepEqual(c1.json, { errcode: 0, reason: 'success', result: { ipfs_hash: CID } });
    const c2 = await e.ext('/transactions/consume/', { username: 'user2', claim_id: paid, customer_pay_password: 'abcdef' });
    assert.equal(c2.json.errcode, 0);
    assert.equal(c1.headers.get('x-ulord-txid'), c2.headers.get('x-ulord-txid'));
    assert.equal((await e.ext('/transactions/balance/', { username: 'user2', pay_password: 'abcdef' })).json.result.total, 1.80000001);
    // an ad: the author authorises, the customer receives 0.02
    assert.equal((await e.ext('/transactions/consume/', { username: 'user2', claim_id: ad })).json.errcode, 20100);
    assert.equal((await e.ext('/transactions/consume/', { username: 'user2', claim_id: ad, author_pay_password: 'adspw' })).json.result.ipfs_hash, CID_V1);
    assert.equal((await e.ext('/transactions/consume/', { username: 'user2', claim_id: ad, author_pay_password: 'adspw' })).json.errcode, 0);
    assert.equal((await e.ext('/transactions/balance/', { username: 'user2', pay_password: 'abcdef' })).json.result.total, 1.82000001);
    assert.equal((await e.ext('/transactions/consume/', { username: 'justin', claim_id: ad, author_pay_password: 'adspw' })).json.errcode, 0);
    // free content: recorded, nothing paid
    assert.equal((await e.ext('/transactions/consume/', { username: 'user2', claim_id: free })).json.errcode, 0);
    // an author reads their own content without paying
    assert.equal((await e.ext('/transactions/consume/', { username: 'justin', claim_id: paid })).json.result.ipfs_hash, CID);
    // not enough money
    await e.ext('/transactions/createwallet/', { username: 'poor', pay_password: 'poorpw' });
    const before = await e.counts();
    assert.equal((await e.ext('/transactions/consume/', { username: 'poor', claim_id: paid, customer_pay_password: 'poorpw' })).json.errcode, 20206);
    assert.deepEqual(await e.counts(), before);
  });

  it('check: ipfs hash when paid, false when not, null when unknown', async () => {
    const unknown = 'e1b98bcc018950ac4684c663d0ea4fa9fc19543d';
    const r = await e.ext('/transactions/check/', { username: 'user2', claim_ids: [paid, ad, unknown] });
    assert.deepEqual(r.json.result, Object.fromEntries([[paid, CID], [ad, CID_V1], [unknown, null]].sort()));
    const poor = await e.ext('/transactions/check/', { username: 'poor', claim_ids: [paid, free] });
    assert.deepEqual(poor.json.result, { [paid]: false, [free]: false });
    assert.equal((await e.ext('/transactions/check/', { username: 'poor' })).json.errcode, 20100);
    assert.equal((await e.ext('/transactions/check/', { username: 'poor', claim_ids: 'abc' })).json.errcode, 20101);
  });

  it('statements, totals and counts', async () => {
    const pub = await e.ext('/transactions/publisher/account/1/10/', { author: 'ads' });
    assert.equal(pub.json.errcode, 0);
    assert.equal(pub.json.result.total, 2);
    assert.equal(pub.json.result.pages, 1);
    const rec = pub.json.result.records[0];
    assert.deepEqual(Object.keys(rec), ['author', 'create_timed', 'customer', 'id', 'price', 'title', 'txid']);
    assert.deepEqual({ ...rec, create_timed: 0, txid: 0 }, { author: 'ads', create_timed: 0, customer: 'justin', id: ad, price: -0.02, title: 'the first ads', txid: 0 });
    assert.match(rec.txid, /^[0-9a-f]{64}$/);
    const cus = await e.ext('/transactions/customer/account/1/2/', { customer: 'user2' });
    assert.equal(cus.json.result.total, 3);
    assert.equal(cus.json.result.pages, 2);
    assert.deepEqual(Object.keys(cus.json.result.records[0]), ['claim_id', 'create_timed', 'price', 'title', 'txid']);
    assert.deepEqual(cus.json.result.records.map((r: { claim_id: string }) => r.claim_id), [free, ad]);
    const p2 = await e.ext('/transactions/customer/account/2/2', { customer: 'user2' });
    assert.deepEqual(p2.json.result.records.map((r: { price: number }) => r.price), [1.3]);
    for (const [path, code] of [
      ['/transactions/customer/account/0/10/', 20101],
      ['/transactions/customer/account/1/101/', 20101],
      ['/transactions/customer/account/1/0/', 20101],
      ['/transactions/customer/account/x/10/', 20101],
    ] as const) {
      assert.equal((await e.ext(path, { customer: 'user2' })).json.errcode, code, path);
    }
    assert.equal((await e.ext('/transactions/customer/account/1/10/', {})).json.errcode, 20100);
    assert.equal((await e.ext('/transactions/customer/account/1/10/', { customer: 'ghost' })).json.errcode, 20003);

    const io = await e.ext('/transactions/publish/inout/', { username: 'user2' });
    assert.deepEqual(io.json.result, { customer_expenditure: { count: 1, sum: 1.3 }, customer_income: { count: 1, sum: 0.02 }, publisher_expenditure: { count: 0, sum: null }, publisher_income: { count: 0, sum: null } });
    const ioJ = await e.ext('/transactions/publish/inout/', { username: 'justin' });
    assert.deepEqual(ioJ.json.result, { customer_expenditure: { count: 0, sum: null }, customer_income: { count: 1, sum: 0.02 }, publisher_expenditure: { count: 0, sum: null }, publisher_income: { count: 1, sum: 1.3 } });
    assert.deepEqual((await e.ext('/transactions/publish/count/', { author: 'justin' })).json.result, { count: 2 });
    assert.deepEqual((await e.ext('/transactions/publish/count/', { author: 'user2' })).json.result, { count: 0 });
  });

  it('content lists', async () => {
    const list = await http(`${e.s.url}/v1/content/list/1/10`, { headers: { appkey: e.appkey } });
    assert.equal(list.json.result.total, 3);
    const item = list.json.result.data.find((c: { claim_id: string }) => c.claim_id === paid);
    assert.deepEqual({ ...item, create_timed: 0, id: 0 }, { author: 'justin', claim_id: paid, content_type: '.txt', create_timed: 0, currency: 'ULD', des: '这是使用IPFS和区块链生成的第2篇博客的描述信息', id: 0, price: 1.3, status: 1, tags: ['C++', 'java', 'javascript'], title: '第2篇技术博客', update_timed: null });
    assert.equal((await http(`${e.s.url}/v1/content/list/1/10`, { method: 'POST', headers: { appkey: e.appkey } })).json.errcode, 405);
    const cl = await e.ext('/content/consume/list/1/10/', { customer: 'user2' });
    assert.deepEqual(Object.keys(cl.json.result), ['ads', 'consumes', 'pages', 'total']);
    assert.deepEqual(cl.json.result.ads.map((c: { claim_id: string }) => c.claim_id), [ad]);
    assert.deepEqual(cl.json.result.consumes.map((c: { claim_id: string }) => c.claim_id).sort(), [paid, free].sort());
    const pl = await e.ext('/content/publish/list/1/1/', { author: 'justin' });
    assert.equal(pl.json.result.total, 2);
    assert.equal(pl.json.result.pages, 2);
    assert.equal(pl.json.result.data.length, 1);
    assert.equal((await e.ext('/content/publish/list/1/1000/', { author: 'justin' })).json.errcode, 20101);
  });

  it('another app sees none of these wallets or contents', async () => {
    const add = await e.mgmt('/app/add/', { appname: 'other' });
    const key = (await e.mgmt('/app/list/')).json.result.find((a: { id: number }) => a.id === add.json.result.id).appkey;
    assert.equal((await e.ext('/transactions/balance/', { username: 'justin', pay_password: '123456' }, { appkey: key })).json.errcode, 20003);
    assert.equal((await http(`${e.s.url}/v1/content/list/1/10`, { headers: { appkey: key } })).json.result.total, 0);
    // and an app whose wallets hold money cannot be removed
    assert.equal((await e.mgmt('/app/remove/', { id: e.appId })).json.errcode, 403);
  });

  it('pay password brute force: locked after 5 failures, for a growing period', async () => {
    await e.ext('/transactions/createwallet/', { username: 'victim', pay_password: 'right-pw' });
    await e.ext('/transactions/paytouser/', { is_developer: true, recv_user: 'victim', amount: '1' });
    const guess = (pw: string) => e.ext('/transactions/paytouser/', { send_user: 'victim', pay_password: pw, recv_user: 'user2', amount: '0.1' });
    for (let i = 0; i < 4; i++) assert.equal((await guess('guess' + i)).json.errcode, 20004);
    const fifth = await guess('guess5');
    assert.equal(fifth.json.errcode, 10007);
    assert.equal(fifth.headers.get('retry-after'), '60');
    assert.equal((await guess('right-pw')).json.errcode, 10007, 'even the right password waits');
    clock.advance(61_000);
    assert.equal((await guess('again')).json.errcode, 10007, 'the 6th failure locks again');
    clock.advance(61_000);
    assert.equal((await guess('right-pw')).json.errcode, 10007, 'for twice as long');
    clock.advance(60_000);
    assert.equal((await guess('right-pw')).json.errcode, 0);
    assert.equal((await guess('wrong')).json.errcode, 20004, 'success resets the count');
  });
});
