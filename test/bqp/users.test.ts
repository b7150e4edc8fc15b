/**
 * The BQP user actions (research/bqp.md §1.11): reg, genCode (codes delivered to an SMS webhook —
 * a real HTTP server here), login by code, chpwd with the old password, with a code, `_none` right
 * after registration, and the logged-out reset by phone; a password change ends other sessions.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { ManualClock } from '../../src/core/context.js';
import type { TestServer } from '../helpers.js';
import { Client, startBqp, testSchemaFile } from './client.js';

describe('BQP reg, genCode, chpwd', () => {
  let s: TestServer;
  let B: string;
  let clock: ManualClock;
  let sms: Server;
  const sent: { phone: string; code: string; type: string; app: string }[] = [];
  let smsDown = false;

  before(async () => {
    sms = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (smsDown) {
          res.writeHead(503).end();
          return;
        }
        sent.push(JSON.parse(body));
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => sms.listen(0, '127.0.0.1', r));
    const hook = `http://127.0.0.1:${(sms.address() as AddressInfo).port}/sms`;
    ({ s, B, clock } = await startBqp({ config: { bqpSchema: testSchemaFile((x) => (x.login = { reg: true, codeDebug: false, smsWebhook: hook })) } }));
  });
  after(async () => {
    await s?.close();
    await new Promise((r) => sms.close(r));
  });

  it('reg creates a user, logs it in and refuses duplicates and bad input', async () => {
    const c = new Client(B);
    const r = await c.req('/reg', { form: { uname: 'alice', pwd: 'pass-1234', name: '爱丽丝', phone: '13800000001' } });
    assert.equal(r.json[0], 0, r.text);
    assert.equal(r.json[1].uname, 'alice');
    assert.equal(r.json[1].name, '爱丽丝');
    assert.equal(r.json[1]._isNew, 1);
    assert.equal(r.json[1].pwd, undefined);
    assert.match(r.headers.get('set-cookie') ?? '', /^userid=/);
    assert.equal((await c.call('/whoami'))[1].uname, 'alice');
    // the password works for login, and is stored hashed
    assert.equal((await new Client(B).call('/login', { form: { uname: 'alice', pwd: 'pass-1234' } }))[0], 0);
    const stored = await s.ctx.db.kysely.selectFrom('bqp_User' as never).select('pwd' as never).where('uname' as never, '=', 'alice' as never).executeTakeFirst();
    assert.notEqual((stored as { pwd: string }).pwd, 'pass-1234');
    // duplicates (uname or phone), missing / short password, bad phone, employees
    assert.equal((await new Client(B).call('/reg', { form: { uname: 'alice', pwd: 'another-1' } }))[0], 1);
    assert.equal((await new Client(B).call('/reg', { form: { uname: 'alice2', phone: '13800000001', pwd: 'another-1' } }))[0], 1);
    assert.equal((await new Client(B).call('/reg', { form: { uname: 'bob' } }))[0], 1);
    assert.equal((await new Client(B).call('/reg', { form: { uname: 'bob', pwd: '12' } }))[0], 1);
    assert.equal((await new Client(B).call('/reg', { form: { phone: '123', pwd: 'secret-1' } }))[0], 1);
    assert.equal((await new Client(B).call('/reg?_app=emp', { form: { uname: 'bob', pwd: 'secret-1' } }))[0], 5);
    // a uname starting with a digit is a phone
    const p = await new Client(B).call('/reg', { form: { uname: '13800000002', pwd: 'secret-1' } });
    assert.equal(p[1].phone, '13800000002');
  });

  it('genCode sends a code through the webhook; login by code; codes are single-use, expire, count tries', async () => {
    const c = new Client(B);
    assert.deepEqual(await c.call('/genCode', { form: { phone: '13900000009' } }), [0, null]);
    assert.equal(sent.length, 1);
    assert.match(sent[0].code, /^\d{6}$/);
    assert.equal(sent[0].phone, '13900000009');
    // debug=1 does not reveal the code unless the schema says so; a second code within a minute: 5
    assert.equal((await c.call('/genCode', { form: { phone: '13900000009', debug: '1' } }))[0], 5);
    assert.equal(sent.length, 1);
    clock.advance(61_000);
    assert.equal((await c.call('/genCode', { form: { phone: '13900000009', type: 'w4' } }))[0], 0);
    const w4 = sent.at(-1)!.code;
    assert.match(w4, /^[A-Z]{4}$/);
    // a wrong code counts, the right one logs in and registers the unknown phone
    assert.equal((await c.call('/login', { form: { uname: '13900000009', code: 'ZZZZ' } }))[0], -1);
    const r = await c.call('/login', { form: { uname: '13900000009', code: w4.toLowerCase() } });
    assert.equal(r[0], 0, JSON.stringify(r));
    assert.equal(r[1].phone, '13900000009');
    assert.equal(r[1]._isNew, 1);
    assert.equal((await c.call('/whoami'))[1].phone, '13900000009');
    // single use
    assert.equal((await new Client(B).call('/login', { form: { uname: '13900000009', code: w4 } }))[0], -1);
    // expiry
    clock.advance(61_000);
    await c.call('/genCode', { form: { phone: '13900000009' } });
    clock.advance(5 * 60_000 + 1);
    assert.equal((await new Client(B).call('/login', { form: { uname: '13900000009', code: sent.at(-1)!.code } }))[0], -1);
    // five wrong guesses end a code
    clock.advance(61_000);
    await c.call('/genCode', { form: { phone: '13900000009' } });
    for (let i = 0; i < 5; i++) await new Client(B).call('/login', { form: { uname: '13900000009', code: '000000' === sent.at(-1)!.code ? '111111' : '000000' } });
    assert.equal((await new Client(B).call('/login', { form: { uname: '13900000009', code: sent.at(-1)!.code } }))[0], -1);
    // bad phone, bad type; the webhook down: 4 and no code kept
    assert.equal((await c.call('/genCode', { form: { phone: '12345' } }))[0], 1);
    assert.equal((await c.call('/genCode', { form: { phone: '13900000008', type: 'x' } }))[0], 1);
    smsDown = true;
    clock.advance(61_000);
    const n = sent.length;
    assert.equal((await c.call('/genCode', { form: { phone: '13900000008' } }))[0], 4);
    smsDown = false;
    assert.equal(sent.length, n);
    assert.equal(await s.ctx.db.kysely.selectFrom('bqp_codes').select('id').execute().then((x) => x.length), 1); // only 13900000009's spent one
  });

  it('chpwd: old password, code, _none within an hour of reg, reset by phone; other sessions end', async () => {
    const a = new Client(B);
    const a2 = new Client(B);
    assert.equal((await a.call('/login', { form: { uname: 'alice', pwd: 'pass-1234' } }))[0], 0);
    assert.equal((await a2.call('/login', { form: { uname: 'alice', pwd: 'pass-1234' } }))[0], 0);
    assert.equal((await a.call('/chpwd', { form: { oldpwd: 'wrong', pwd: 'pass-5678' } }))[0], -1);
    const r = await a.call('/chpwd', { form: { oldpwd: 'pass-1234', pwd: 'pass-5678' } });
    assert.equal(r[0], 0, JSON.stringify(r));
    assert.equal(typeof r[1]._token, 'string');
    assert.equal((await a.call('/whoami'))[0], 0); // the new cookie
    assert.equal((await a2.call('/whoami'))[0], 2); // the other session ended
    assert.equal((await new Client(B).call('/login', { form: { uname: 'alice', pwd: 'pass-1234' } }))[0], -1);
    assert.equal((await new Client(B).call('/login', { form: { uname: 'alice', pwd: 'pass-5678' } }))[0], 0);
    // with a code sent to the account's phone
    clock.advance(61_000);
    await a.call('/genCode', { form: { phone: '13800000001' } });
    assert.equal((await a.call('/chpwd', { form: { code: sent.at(-1)!.code, pwd: 'pass-9999' } }))[0], 0);
    // _none: only right after registration
    const n = new Client(B);
    await n.call('/reg', { form: { uname: 'newbie', pwd: 'first-1' } });
    assert.equal((await n.call('/chpwd', { form: { oldpwd: '_none', pwd: 'second-2' } }))[0], 0);
    clock.advance(3601_000);
    assert.equal((await n.call('/chpwd', { form: { oldpwd: '_none', pwd: 'third-3' } }))[0], -1);
    // logged out: reset by phone + code; without phone: 2
    assert.equal((await new Client(B).call('/chpwd', { form: { oldpwd: 'x', pwd: 'pass-0000' } }))[0], 2);
    await new Client(B).call('/genCode', { form: { phone: '13800000001' } });
    const reset = new Client(B);
    assert.equal((await reset.call('/chpwd', { form: { phone: '13800000001', code: sent.at(-1)!.code, pwd: 'pass-0000' } }))[0], 0);
    assert.equal((await reset.call('/whoami'))[1].uname, 'alice');
    assert.equal((await a.call('/whoami'))[0], 2);
    assert.equal((await new Client(B).call('/chpwd', { form: { phone: '13800000001', code: '123456', pwd: 'pass-1111' } }))[0], -1);
    // too short a new password; employees change theirs too
    assert.equal((await reset.call('/chpwd', { form: { oldpwd: 'pass-0000', pwd: '1' } }))[0], 1);
    const e = new Client(B);
    await e.call('/login?_app=emp', { form: { uname: 'emp', pwd: '1234' } });
    assert.equal((await e.call('/chpwd?_app=emp', { form: { oldpwd: '1234', pwd: 'emp-pass-2' } }))[0], 0);
    assert.equal((await new Client(B).call('/login?_app=emp', { form: { uname: 'emp', pwd: 'emp-pass-2' } }))[0], 0);
    // passwords never appear in the call log
    const { objectsOf } = await import('../../src/modules/objects.js');
    await objectsOf(s.ctx).flushLog();
    const logs = (await s.ctx.db.kysely.selectFrom('bqp_ApiLog' as never).select(['req', 'res'] as never).execute()) as { req: string; res: string }[];
    assert.ok(logs.length > 0);
    assert.ok(!logs.some((l) => /pass-\d{4}|emp-pass-2/.test(l.req ?? '')));
    // nor session tokens or verification codes, in what was sent or answered
    const secrets = [r[1]._token, ...sent.map((x) => x.code)].map((t) => `"${t}"`);
    assert.ok(!logs.some((l) => secrets.some((t) => (l.req ?? '').includes(t) || (l.res ?? '').includes(t))));
    assert.ok(logs.some((l) => (l.res ?? '').includes('"_token":"***"')));
  });

  it('locks an account out after too many wrong passwords (login and chpwd), right ones included, until the window ends', async () => {
    const r = await new Client(B).req('/reg', { form: { uname: 'mallory-target', pwd: 'pass-9999' } });
    assert.equal(r.json[0], 0, r.text);
    const max = s.config.loginMaxFailures;
    for (let i = 0; i < max; i++) assert.equal((await new Client(B).call('/login', { form: { uname: 'mallory-target', pwd: `guess-${i}` } }))[0], -1);
    const locked = await new Client(B).req('/login', { form: { uname: 'mallory-target', pwd: 'pass-9999' } });
    assert.equal(locked.json[0], 5, locked.text); // E.FORBIDDEN, with the reason
    assert.match(String(locked.json[2]), /too many failed password attempts/);
    // the same account in the other user kind is another account
    assert.equal((await new Client(B).call('/login?_app=emp', { form: { uname: 'mallory-target', pwd: 'x' } }))[0], -1);
    clock.advance(s.config.loginWindowSeconds * 1000);
    const c = new Client(B);
    assert.equal((await c.call('/login', { form: { uname: 'mallory-target', pwd: 'pass-9999' } }))[0], 0);
    // chpwd's old password counts the same way, per account
    for (let i = 0; i < max; i++) assert.equal((await c.call('/chpwd', { form: { oldpwd: `guess-${i}`, pwd: 'pass-7777' } }))[0], -1);
    assert.equal((await c.call('/chpwd', { form: { oldpwd: 'pass-9999', pwd: 'pass-7777' } }))[0], 5);
    clock.advance(s.config.loginWindowSeconds * 1000);
    assert.equal((await c.call('/chpwd', { form: { oldpwd: 'pass-9999', pwd: 'pass-7777' } }))[0], 0);
  });

  it('concurrent registrations of one name or one phone: exactly one account', async () => {
    const same = await Promise.all(Array.from({ length: 8 }, (_, i) => new Client(B).call('/reg', { form: { uname: 'racer', pwd: `pass-r${i}00` } })));
    assert.equal(same.filter((r) => r[0] === 0).length, 1, JSON.stringify(same));
    assert.ok(same.every((r) => r[0] === 0 || r[0] === 1), 'the others are told the user exists');
    const phones = await Promise.all(Array.from({ length: 8 }, (_, i) => new Client(B).call('/reg', { form: { uname: `racer${i}`, phone: '13700000077', pwd: 'pass-rrrr' } })));
    assert.equal(phones.filter((r) => r[0] === 0).length, 1, JSON.stringify(phones));
    const rows = (await s.ctx.db.kysely.selectFrom('bqp_User' as never).select('id' as never).where((eb: any) => eb.or([eb('uname', '=', 'racer'), eb('phone', '=', '13700000077')])).execute()) as unknown[];
    assert.equal(rows.length, 2);
  });
});
