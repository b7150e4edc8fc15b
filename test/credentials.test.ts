import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  basicHeader,
  bqpSign,
  canonicalQuery,
  checkBqpSign,
  checkCliSign,
  checkFangtangToken,
  cliSign,
  cliSignString,
  fangtangToken,
  hmacCanonical,
  parseBasic,
} from '../src/core/credentials/schemes.js';
import { hashPassword, parseMasterKey, safeEqual, SecretBox, verifyPassword } from '../src/core/crypto.js';
import { randomBytes } from 'node:crypto';

const U = 'https://cli-api.oss-cn-hangzhou-internal.aliyuncs.com/example/2023/1108/15/44/i9528fa4d7ba3-60fa-4ea2-b467-60fbb0c44621_source.jpg';
const CLI_PARAMS = { template_num: 'M8', api_key: 'CLb87ea759f877622c', values: ['消防栓', 'A23154', '宁波市', '张成杰', '13023214212', '资产运营部', U, U] };

describe('SPEC.md §2 test vectors', () => {
  it('cli.im sign', () => {
    assert.equal(cliSign(CLI_PARAMS, 'ddb42b7299b90cb5e0fd6c41e154c15d'), 'a6bb0eb47c5bdd67bdfccbf0a0aec903');
    assert.ok(cliSignString(CLI_PARAMS).startsWith('api_key=CLb87ea759f877622c&template_num=M8&values=["消防栓",'));
    // the sign field itself is not signed, and a changed value breaks it
    assert.ok(checkCliSign({ ...CLI_PARAMS, sign: 'a6bb0eb47c5bdd67bdfccbf0a0aec903' }, 'A6BB0EB47C5BDD67BDFCCBF0A0AEC903', 'ddb42b7299b90cb5e0fd6c41e154c15d'));
    assert.ok(!checkCliSign({ ...CLI_PARAMS, template_num: 'M9' }, 'a6bb0eb47c5bdd67bdfccbf0a0aec903', 'ddb42b7299b90cb5e0fd6c41e154c15d'));
  });

  it('Fangtang token', () => {
    assert.equal(fangtangToken('hiliad', '1629962357'), '5484490c8e797dabe52af90ab8bd1e50,1629962357');
    const at = 1629962357 * 1000;
    assert.deepEqual(checkFangtangToken('5484490c8e797dabe52af90ab8bd1e50,1629962357', 'hiliad', at), { ok: true });
    // window edges: exactly 300 s either side is accepted, 301 s is stale
    assert.deepEqual(checkFangtangToken('5484490c8e797dabe52af90ab8bd1e50,1629962357', 'hiliad', at + 300_000), { ok: true });
    assert.deepEqual(checkFangtangToken('5484490c8e797dabe52af90ab8bd1e50,1629962357', 'hiliad', at - 300_000), { ok: true });
    assert.deepEqual(checkFangtangToken('5484490c8e797dabe52af90ab8bd1e50,1629962357', 'hiliad', at + 301_000), { ok: false, reason: 'stale' });
    assert.deepEqual(checkFangtangToken('5484490c8e797dabe52af90ab8bd1e50,1629962357', 'other', at), { ok: false, reason: 'mismatch' });
    assert.deepEqual(checkFangtangToken('nonsense', 'hiliad', at), { ok: false, reason: 'malformed' });
  });

  it('BQP _sign and Basic', () => {
    assert.equal(bqpSign('1576600003', 'demo'), 'cfb74e1d9c85910ea9f9b2ff30885d4a');
    assert.equal(basicHeader('test', '1234'), 'Basic dGVzdDoxMjM0');
    assert.deepEqual(parseBasic('Basic dGVzdDoxMjM0'), { user: 'test', password: '1234' });
    const at = 1576600003 * 1000;
    assert.deepEqual(checkBqpSign('1576600003', 'cfb74e1d9c85910ea9f9b2ff30885d4a', 'demo', at + 7200_000), { ok: true });
    assert.deepEqual(checkBqpSign('1576600003', 'cfb74e1d9c85910ea9f9b2ff30885d4a', 'demo', at + 3 * 3600_000), { ok: false, reason: 'stale' });
    assert.deepEqual(checkBqpSign('1576600003', 'CFB74E1D9C85910EA9F9B2FF30885D4A', 'demo', at), { ok: true });
    // milliseconds are accepted
    const ms = String(at);
    assert.deepEqual(checkBqpSign(ms, bqpSign(ms, 'demo'), 'demo', at), { ok: true });
    assert.deepEqual(checkBqpSign('1576600003', 'cfb74e1d9c85910ea9f9b2ff30885d4b', 'demo', at), { ok: false, reason: 'mismatch' });
  });
});

describe('native HMAC canonical form', () => {
  it('sorts and percent-encodes the query', () => {
    assert.equal(canonicalQuery('?b=2&a=1&a=0&c=x y&d=*'), 'a=0&a=1&b=2&c=x%20y&d=%2A');
    const c = hmacCanonical({ method: 'post', path: '/rest/v1/apps', query: 'z=1', timestamp: '100', nonce: 'n'.repeat(16), body: '{}' });
    assert.equal(c.split('\n').length, 6);
    assert.equal(c.split('\n')[0], 'POST');
    assert.equal(c.split('\n')[5], '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
  });
});

describe('crypto', () => {
  it('constant-time compare', () => {
    assert.ok(safeEqual('abc', 'abc'));
    assert.ok(!safeEqual('abc', 'abd'));
    assert.ok(!safeEqual('abc', 'abcd'));
  });

  it('seals secrets with AES-256-GCM and detects tampering', () => {
    const box = new SecretBox(randomBytes(32));
    const sealed = box.seal('ddb42b7299b90cb5e0fd6c41e154c15d');
    assert.ok(!sealed.includes('ddb42b'));
    assert.equal(box.open(sealed), 'ddb42b7299b90cb5e0fd6c41e154c15d');
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[3], 'base64url');
    ct[0] ^= 0x01; // flip one bit of the ciphertext
    parts[3] = ct.toString('base64url');
    assert.throws(() => box.open(parts.join('.')));
    assert.throws(() => new SecretBox(randomBytes(32)).open(sealed));
  });

  it('refuses malformed master keys', () => {
    assert.equal(parseMasterKey('00'.repeat(32)).length, 32);
    assert.throws(() => parseMasterKey('abc'), /32 bytes/);
    assert.throws(() => parseMasterKey('zz'.repeat(32)), /32 bytes/);
  });

  it('hashes passwords with scrypt', async () => {
    const h = await hashPassword('s3cret');
    assert.match(h, /^scrypt\$/);
    assert.ok(await verifyPassword('s3cret', h));
    assert.ok(!(await verifyPassword('s3cret!', h)));
    assert.ok(!(await verifyPassword('x', 'garbage')));
  });
});
