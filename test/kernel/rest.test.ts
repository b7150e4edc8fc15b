/**
 * Native REST API against the real server: sessions, /me, tenants, developers and roles, the app
 * type tree, apps (CRUD, secret once, rotation with grace, expiry, blocking, IP allow-list,
 * services, rate limit), quotas, and tenant isolation.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/context.js';
import { changePassword, registerDeveloper } from '../../src/services/accounts/index.js';
import type { DomainError } from '../../src/core/errors.js';
import { bearer, http, jsonBody, operatorCreds, startServer, tenantWithApp, type NativeCreds, type TestServer } from '../helpers.js';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);
const R = '/rest/v1';

function call(s: TestServer, method: string, path: string, auth: Record<string, string>, body?: unknown) {
  const init: RequestInit = { method, headers: { ...auth } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  return http(s.url + R + path, init);
}

function assertProblem(r: { status: number; headers: Headers; json: any }, status: number, code: string) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(r.json.code, code, JSON.stringify(r.json));
  assert.equal(r.json.status, status);
  assert.equal(typeof r.json.detail, 'string');
  assert.equal(typeof r.json.type, 'string');
}

async function login(s: TestServer, username: string, password: string) {
  const r = await http(s.url + R + '/sessions', jsonBody({ username, password }));
  assert.equal(r.status, 201, r.text);
  return { token: r.json.token as string, cookie: r.headers.get('set-cookie') ?? '', json: r.json };
}
const tokenAuth = (t: string) => ({ authorization: `Bearer ${t}` });

describe('sessions and developers', () => {
  let s: TestServer;
  let clock: ManualClock;
  let op: NativeCreds;
  let tenantId: number;
  before(async () => {
    clock = new ManualClock(T0);
    s = await startServer({ clock });
    op = await operatorCreds(s.ctx);
    tenantId = (await tenantWithApp(s.ctx, 'acme')).tenantId;
    await registerDeveloper(s.ctx, { username: 'alice', password: 'alice-pw', tenantId });
  });
  after(() => s.close());

  it('logs in with a cookie and a token, and logs out', async () => {
    const l = await login(s, 'alice', 'alice-pw');
    assert.match(l.token, /^[A-Za-z0-9_-]{40,}$/);
    assert.equal(l.json.expires_at, T0 + 7 * 24 * 3600 * 1000);
    assert.equal(l.json.developer.username, 'alice');
    assert.match(l.cookie, /menhu_session=/);
    assert.match(l.cookie, /HttpOnly/i);
    const cookie = l.cookie.split(';')[0];
    const viaCookie = await call(s, 'GET', '/me', { cookie });
    assert.equal(viaCookie.status, 200, viaCookie.text);
    assert.equal(viaCookie.json.kind, 'developer');
    assert.equal(viaCookie.json.tenant_id, tenantId);
    assert.equal(viaCookie.json.operator, false);
    assert.equal(viaCookie.json.tenant.name, 'acme');
    const viaToken = await call(s, 'GET', '/me', tokenAuth(l.token));
    assert.equal(viaToken.status, 200);
    assert.equal(viaToken.json.developer.username, 'alice');

    // the cookie carries the same session as the token
    const out = await call(s, 'DELETE', '/sessions', tokenAuth(l.token));
    assert.equal(out.status, 204);
    assertProblem(await call(s, 'GET', '/me', tokenAuth(l.token)), 401, 'NOT_LOGGED_IN');
    assertProblem(await call(s, 'GET', '/me', { cookie }), 401, 'NOT_LOGGED_IN');
    // another login is another session, ended by logging out with its cookie
    const l2 = await login(s, 'alice', 'alice-pw');
    const cookie2 = l2.cookie.split(';')[0];
    assert.equal((await call(s, 'GET', '/me', { cookie: cookie2 })).status, 200);
    const out2 = await call(s, 'DELETE', '/sessions', { cookie: cookie2 });
    assert.equal(out2.status, 204);
    assert.match(out2.headers.get('set-cookie') ?? '', /menhu_session=;/);
    assertProblem(await call(s, 'GET', '/me', { cookie: cookie2 }), 401, 'NOT_LOGGED_IN');
    assertProblem(await call(s, 'GET', '/me', tokenAuth(l2.token)), 401, 'NOT_LOGGED_IN');
    // logging out twice (or with an unknown token) is harmless
    assert.equal((await call(s, 'DELETE', '/sessions', tokenAuth(l.token))).status, 204);
  });

  it('refuses wrong passwords and unknown developers', async () => {
    assertProblem(await http(s.url + R + '/sessions', jsonBody({ username: 'alice', password: 'nope' })), 401, 'PASSWORD_INVALID');
    assertProblem(await http(s.url + R + '/sessions', jsonBody({ username: 'nobody', password: 'nope' })), 404, 'USER_UNKNOWN');
    assertProblem(await call(s, 'GET', '/me', {}), 401, 'NOT_LOGGED_IN');
    assertProblem(await call(s, 'GET', '/me', tokenAuth('made-up-token')), 401, 'NOT_LOGGED_IN');
  });

  it('locks an account out after too many failed passwords, right ones included, until the window ends', async () => {
    await registerDeveloper(s.ctx, { username: 'erin', password: 'erin-pw', tenantId });
    const max = s.config.loginMaxFailures;
    assert.equal(max, 10, 'default MENHU_LOGIN_MAX_FAILURES');
    // failures on one account, from wherever, add up (each refused with its own error)
    for (let i = 0; i < max; i++) assertProblem(await http(s.url + R + '/sessions', jsonBody({ username: 'erin', password: `guess-${i}` })), 401, 'PASSWORD_INVALID');
    const locked = await http(s.url + R + '/sessions', jsonBody({ username: 'erin', password: 'erin-pw' }));
    assertProblem(locked, 429, 'RATE_LIMITED');
    const retry = Number(locked.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= s.config.loginWindowSeconds, `Retry-After ${retry}`);
    // the Ulord dialect's login answers its own code for it; changing the password is a password check too
    const ul = await http(s.url + '/v1/users/login/', jsonBody({ username: 'erin', password: 'erin-pw' }));
    assert.equal(ul.json.errcode, 10007, ul.text);
    await assert.rejects(changePassword(s.ctx, 'erin', 'erin-pw', 'erin-pw-2'), (e: DomainError) => e.code === 'RATE_LIMITED');
    // other accounts are not affected; unknown names count on their own
    await login(s, 'alice', 'alice-pw'); // asserts 201
    clock.advance(retry * 1000);
    await login(s, 'erin', 'erin-pw'); // the right password works again after the window (asserts 201)
  });

  it('expires sessions after seven days', async () => {
    const l = await login(s, 'alice', 'alice-pw');
    clock.advance(7 * 24 * 3600 * 1000 - 1);
    assert.equal((await call(s, 'GET', '/me', tokenAuth(l.token))).status, 200);
    clock.advance(1);
    assertProblem(await call(s, 'GET', '/me', tokenAuth(l.token)), 401, 'NOT_LOGGED_IN');
  });

  it('lets operators create tenants and developers with roles; a blocked developer is refused', async () => {
    const t = await call(s, 'POST', '/tenants', bearer(op), { name: 'globex' });
    assert.equal(t.status, 201, t.text);
    assert.equal(t.json.name, 'globex');
    const d = await call(s, 'POST', '/developers', bearer(op), { username: 'bob', password: 'bob-pw', tenant_id: t.json.id, role: 'normal', email: 'bob@example.com' });
    assert.equal(d.status, 201, d.text);
    assert.deepEqual({ ...d.json, id: 0 }, { id: 0, tenant_id: t.json.id, username: 'bob', email: 'bob@example.com', telephone: null, role: 'normal' });
    assertProblem(await call(s, 'POST', '/developers', bearer(op), { username: 'bob', password: 'other', tenant_id: t.json.id }), 409, 'USER_EXISTS');
    assertProblem(await call(s, 'POST', '/developers', bearer(op), { username: 'bob2', password: 'other', tenant_id: t.json.id, email: 'bob@example.com' }), 409, 'EMAIL_EXISTS');
    assertProblem(await call(s, 'POST', '/developers', bearer(op), { username: 'carl', password: 'carl-pw', tenant_id: 999999 }), 404, 'NOT_FOUND');

    const bob = await login(s, 'bob', 'bob-pw');
    // a normal developer may create normal developers in their own tenant, nothing more
    const c = await call(s, 'POST', '/developers', tokenAuth(bob.token), { username: 'carol', password: 'carol-pw' });
    assert.equal(c.status, 201, c.text);
    assert.equal(c.json.tenant_id, t.json.id);
    assertProblem(await call(s, 'POST', '/developers', tokenAuth(bob.token), { username: 'dave', password: 'dave-pw', role: 'admin' }), 403, 'FORBIDDEN');
    assertProblem(await call(s, 'PATCH', `/developers/${c.json.id}`, tokenAuth(bob.token), { role: 'admin' }), 403, 'FORBIDDEN');
    assertProblem(await call(s, 'POST', '/tenants', tokenAuth(bob.token), { name: 'mine' }), 403, 'FORBIDDEN');
    const list = await call(s, 'GET', '/developers', tokenAuth(bob.token));
    assert.deepEqual(list.json.map((x: any) => x.username).sort(), ['bob', 'carol']);

    // operators change roles; blocking ends the open session and refuses new logins
    const blocked = await call(s, 'PATCH', `/developers/${d.json.id}`, bearer(op), { role: 'blocked' });
    assert.equal(blocked.status, 200, blocked.text);
    assert.equal(blocked.json.role, 'blocked');
    assertProblem(await call(s, 'GET', '/me', tokenAuth(bob.token)), 403, 'USER_BLOCKED');
    assertProblem(await http(s.url + R + '/sessions', jsonBody({ username: 'bob', password: 'bob-pw' })), 403, 'USER_BLOCKED');
    assertProblem(await call(s, 'PATCH', `/developers/${d.json.id}`, bearer(op), { role: 'no-such-role' }), 404, 'NOT_FOUND');
    assertProblem(await call(s, 'PATCH', '/developers/999999', bearer(op), { role: 'normal' }), 404, 'NOT_FOUND');
    // role admin makes a developer an operator (only operators grant it)
    await call(s, 'PATCH', `/developers/${c.json.id}`, bearer(op), { role: 'admin' });
    const carol = await login(s, 'carol', 'carol-pw');
    const me = await call(s, 'GET', '/me', tokenAuth(carol.token));
    assert.equal(me.json.operator, true);
    assert.ok((await call(s, 'GET', '/tenants', tokenAuth(carol.token))).json.length >= 3);
  });

  it('lists tenants: operators all, others their own', async () => {
    const all = await call(s, 'GET', '/tenants', bearer(op));
    assert.ok(all.json.length >= 3);
    const a = await login(s, 'alice', 'alice-pw');
    const own = await call(s, 'GET', '/tenants', tokenAuth(a.token));
    assert.deepEqual(own.json.map((t: any) => t.id), [tenantId]);
  });
});

describe('app types', () => {
  let s: TestServer;
  let op: NativeCreds;
  before(async () => {
    s = await startServer();
    op = await operatorCreds(s.ctx);
  });
  after(() => s.close());

  it('keeps a tree of unlimited depth, refuses cycles and removing types in use', async () => {
    const ids: number[] = [];
    let parent: number | null = null;
    for (let depth = 0; depth < 6; depth++) {
      const r = await call(s, 'POST', '/app-types', bearer(op), { name: `level ${depth}`, des: `d${depth}`, parent_id: parent });
      assert.equal(r.status, 201, r.text);
      ids.push(r.json.id);
      parent = r.json.id;
    }
    const other = (await call(s, 'POST', '/app-types', bearer(op), { name: 'other' })).json.id;
    const tree = await call(s, 'GET', '/app-types', bearer(op));
    assert.equal(tree.status, 200, tree.text);
    assert.deepEqual(tree.json.map((n: any) => n.name), ['level 0', 'other']);
    let node = tree.json[0];
    for (let depth = 1; depth < 6; depth++) {
      assert.equal(node.children.length, 1);
      node = node.children[0];
      assert.equal(node.name, `level ${depth}`);
      assert.equal(node.parent_id, ids[depth - 1]);
    }
    assert.equal(node.children, undefined);

    // cycles: a type under itself or any descendant
    assertProblem(await call(s, 'PUT', `/app-types/${ids[0]}`, bearer(op), { name: 'level 0', parent_id: ids[5] }), 400, 'VALIDATION');
    assertProblem(await call(s, 'PUT', `/app-types/${ids[2]}`, bearer(op), { name: 'level 2', parent_id: ids[2] }), 400, 'VALIDATION');
    assertProblem(await call(s, 'PUT', `/app-types/${ids[2]}`, bearer(op), { name: 'level 2', parent_id: 999999 }), 404, 'NOT_FOUND');
    assertProblem(await call(s, 'POST', '/app-types', bearer(op), { name: 'orphan', parent_id: 999999 }), 404, 'NOT_FOUND');
    // a legal move: level 3 (with its subtree) under "other"
    assert.equal((await call(s, 'PUT', `/app-types/${ids[3]}`, bearer(op), { name: 'level 3', parent_id: other })).status, 204);
    const moved = (await call(s, 'GET', '/app-types', bearer(op))).json;
    assert.equal(moved[1].children[0].id, ids[3]);
    assert.equal(moved[1].children[0].children[0].children[0].id, ids[5]);

    // removing: not with children, not while apps use it
    assertProblem(await call(s, 'DELETE', `/app-types/${ids[4]}`, bearer(op)), 409, 'HAS_DEPENDENTS');
    const app = await call(s, 'POST', '/apps', bearer(op), { name: 'typed', type_id: ids[5], services: ['native'] });
    assert.equal(app.status, 201, app.text);
    assertProblem(await call(s, 'DELETE', `/app-types/${ids[5]}`, bearer(op)), 409, 'HAS_DEPENDENTS');
    assert.equal((await call(s, 'DELETE', `/apps/${app.json.id}`, bearer(op))).status, 204);
    assert.equal((await call(s, 'DELETE', `/app-types/${ids[5]}`, bearer(op))).status, 204);
    assertProblem(await call(s, 'DELETE', `/app-types/${ids[5]}`, bearer(op)), 404, 'NOT_FOUND');
    assertProblem(await call(s, 'PUT', `/app-types/${ids[5]}`, bearer(op), { name: 'gone' }), 404, 'NOT_FOUND');
  });

  it('lets only operators change the tree', async () => {
    const t = await tenantWithApp(s.ctx, 'customer');
    assert.equal((await call(s, 'GET', '/app-types', bearer(t.creds))).status, 200);
    assertProblem(await call(s, 'POST', '/app-types', bearer(t.creds), { name: 'mine' }), 403, 'FORBIDDEN');
    assertProblem(await call(s, 'PUT', '/app-types/1', bearer(t.creds), { name: 'mine' }), 403, 'FORBIDDEN');
    assertProblem(await call(s, 'DELETE', '/app-types/1', bearer(t.creds)), 403, 'FORBIDDEN');
  });
});

describe('apps', () => {
  let s: TestServer;
  let clock: ManualClock;
  let dev: Record<string, string>;
  let tenantId: number;
  before(async () => {
    clock = new ManualClock(T0);
    s = await startServer({ clock });
    tenantId = (await tenantWithApp(s.ctx, 'acme')).tenantId;
    await registerDeveloper(s.ctx, { username: 'alice', password: 'alice-pw', tenantId });
    dev = tokenAuth((await login(s, 'alice', 'alice-pw')).token);
  });
  after(() => s.close());

  async function newApp(body: Record<string, unknown> = {}) {
    const r = await call(s, 'POST', '/apps', dev, { name: 'app', services: ['native'], ...body });
    assert.equal(r.status, 201, r.text);
    return { id: r.json.id as number, creds: { key: r.json.key, secret: r.json.secret } as NativeCreds, json: r.json };
  }
  const me = (c: NativeCreds, extra: Record<string, string> = {}) => call(s, 'GET', '/me', { ...bearer(c), ...extra });

  it('creates, reads, changes and deletes apps; the secret is shown once and stored encrypted', async () => {
    const a = await newApp({ name: 'shop', description: 'the shop', ip_allow: [], rate_limit: null });
    assert.match(a.creds.key, /^[0-9a-f]{32}$/);
    assert.match(a.creds.secret, /^[0-9a-f]{32}$/);
    assert.equal(a.json.tenant_id, tenantId);
    assert.equal(a.json.blocked, false);
    assert.deepEqual(a.json.services, ['native']);

    const got = await call(s, 'GET', `/apps/${a.id}`, dev);
    assert.equal(got.status, 200);
    assert.equal(got.json.name, 'shop');
    assert.equal(got.json.secret, undefined);
    assert.ok(!got.text.includes(a.creds.secret));
    const list = await call(s, 'GET', '/apps', dev);
    assert.ok(list.json.some((x: any) => x.id === a.id));
    assert.ok(!list.text.includes(a.creds.secret));
    const row = await s.ctx.db.kysely.selectFrom('apps').selectAll().where('id', '=', a.id).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes(a.creds.secret), 'secret stored in clear');

    const me1 = await me(a.creds);
    assert.equal(me1.status, 200, me1.text);
    assert.equal(me1.json.kind, 'app');
    assert.equal(me1.json.app.id, a.id);
    assert.equal(me1.json.app.secret, undefined);

    const patched = await call(s, 'PATCH', `/apps/${a.id}`, dev, { name: 'shop 2', description: null });
    assert.equal(patched.status, 200, patched.text);
    assert.equal(patched.json.name, 'shop 2');
    assert.equal(patched.json.description, null);
    assert.equal((await call(s, 'DELETE', `/apps/${a.id}`, dev)).status, 204);
    assertProblem(await call(s, 'GET', `/apps/${a.id}`, dev), 404, 'NOT_FOUND');
    assertProblem(await call(s, 'PATCH', `/apps/${a.id}`, dev, { name: 'x' }), 404, 'NOT_FOUND');
    assertProblem(await me(a.creds), 401, 'KEY_UNKNOWN');
  });

  it('refuses references that do not exist instead of failing', async () => {
    assertProblem(await call(s, 'POST', '/apps', dev, { name: 'x', type_id: 424242 }), 404, 'NOT_FOUND');
    const a = await newApp();
    assertProblem(await call(s, 'PATCH', `/apps/${a.id}`, dev, { type_id: 424242 }), 404, 'NOT_FOUND');
    assertProblem(await call(s, 'POST', '/apps', dev, { name: 'x', ip_allow: ['not-an-ip'] }), 400, 'VALIDATION');
    assertProblem(await call(s, 'GET', '/apps/99999999999999999999', dev), 400, 'VALIDATION');
    assertProblem(await call(s, 'GET', '/apps/abc', dev), 400, 'VALIDATION');
  });

  it('rotates secrets: the previous one works until the grace period ends', async () => {
    const a = await newApp();
    const r = await call(s, 'POST', `/apps/${a.id}/rotate`, dev, { grace_seconds: 60 });
    assert.equal(r.status, 200, r.text);
    const fresh = { key: a.creds.key, secret: r.json.secret as string };
    assert.notEqual(fresh.secret, a.creds.secret);
    assert.equal(r.json.secret_rotated_until, T0 + 60_000 + (clock.now() - T0));
    assert.equal((await me(a.creds)).status, 200);
    assert.equal((await me(fresh)).status, 200);
    clock.advance(59_999);
    assert.equal((await me(a.creds)).status, 200);
    clock.advance(1);
    assertProblem(await me(a.creds), 401, 'SECRET_INVALID');
    assert.equal((await me(fresh)).status, 200);

    // no grace: the old secret stops at once; the default grace comes from the config
    const r0 = await call(s, 'POST', `/apps/${a.id}/rotate`, dev, { grace_seconds: 0 });
    assertProblem(await me(fresh), 401, 'SECRET_INVALID');
    const third = { key: a.creds.key, secret: r0.json.secret as string };
    const rd = await call(s, 'POST', `/apps/${a.id}/rotate`, dev);
    assert.equal(rd.status, 200, rd.text);
    assert.equal(rd.json.secret_rotated_until, clock.now() + s.config.secretGraceSeconds * 1000);
    assert.equal((await me(third)).status, 200);
  });

  it('refuses expired and blocked apps', async () => {
    const a = await newApp({ expires_at: clock.now() + 1000 });
    assert.equal((await me(a.creds)).status, 200);
    clock.advance(1000);
    assertProblem(await me(a.creds), 403, 'APP_EXPIRED');
    await call(s, 'PATCH', `/apps/${a.id}`, dev, { expires_at: null });
    assert.equal((await me(a.creds)).status, 200);
    const b = await call(s, 'PATCH', `/apps/${a.id}`, dev, { blocked: true });
    assert.equal(b.json.blocked, true);
    assertProblem(await me(a.creds), 403, 'APP_BLOCKED');
    // a wrong secret on a blocked app is still a wrong secret (nothing is told before the proof)
    assertProblem(await me({ ...a.creds, secret: 'x'.repeat(32) }), 401, 'SECRET_INVALID');
    await call(s, 'PATCH', `/apps/${a.id}`, dev, { blocked: false });
    assert.equal((await me(a.creds)).status, 200);
  });

  it('applies the IP allow-list to the peer address', async () => {
    const a = await newApp({ ip_allow: ['10.0.0.0/8', '2001:db8::/32'] });
    assertProblem(await me(a.creds), 403, 'IP_FORBIDDEN');
    // X-Forwarded-For is ignored unless the proxy is trusted
    assertProblem(await me(a.creds, { 'x-forwarded-for': '10.1.2.3' }), 403, 'IP_FORBIDDEN');
    await call(s, 'PATCH', `/apps/${a.id}`, dev, { ip_allow: ['127.0.0.0/8'] });
    assert.equal((await me(a.creds)).status, 200);
    await call(s, 'PATCH', `/apps/${a.id}`, dev, { ip_allow: ['127.0.0.1'] });
    assert.equal((await me(a.creds)).status, 200);
    await call(s, 'PATCH', `/apps/${a.id}`, dev, { ip_allow: [] });
    assert.equal((await me(a.creds)).status, 200);
  });

  it('refuses an app that is not enabled for the native API', async () => {
    const a = await newApp({ services: ['cli', 'bqp'] });
    assertProblem(await me(a.creds), 401, 'KEY_UNKNOWN');
    await call(s, 'PATCH', `/apps/${a.id}`, dev, { services: ['*'] });
    assert.equal((await me(a.creds)).status, 200);
    assertProblem(await call(s, 'PATCH', `/apps/${a.id}`, dev, { services: ['nonsense'] }), 400, 'VALIDATION');
  });

  it('limits requests per app and second, answering 429 with Retry-After', async () => {
    const a = await newApp({ rate_limit: 3 });
    const other = await newApp({ rate_limit: 3 });
    let r;
    if (s.ctx.limits.mode() === 'memory') {
      // windows follow the pinned clock: exact
      for (let i = 0; i < 3; i++) assert.equal((await me(a.creds)).status, 200);
      r = await me(a.creds);
    } else {
      // Redis windows run on Redis' clock: send ten at once, they span one window (two at most)
      const all = await Promise.all(Array.from({ length: 10 }, () => me(a.creds)));
      const ok = all.filter((x) => x.status === 200).length;
      assert.ok(ok >= 3 && ok <= 6, `${ok} of 10 allowed`);
      r = all.find((x) => x.status !== 200)!;
    }
    assertProblem(r, 429, 'RATE_LIMITED');
    const retry = Number(r.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 1, `Retry-After ${retry}`);
    assert.equal((await me(other.creds)).status, 200, 'limits are per app');
    clock.advance(1000); // windows run on the platform clock, in memory and in Redis alike
    assert.equal((await me(a.creds)).status, 200);
  });
});

describe('trusted proxy', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer({ env: { MENHU_TRUST_PROXY: 'true' } });
  });
  after(() => s.close());

  it('takes the client address from X-Forwarded-For only when the proxy is trusted', async () => {
    const t = await tenantWithApp(s.ctx, 'acme', { ipAllow: ['10.1.2.3'] });
    assert.equal((await call(s, 'GET', '/me', { ...bearer(t.creds), 'x-forwarded-for': '10.1.2.3' })).status, 200);
    assertProblem(await call(s, 'GET', '/me', { ...bearer(t.creds), 'x-forwarded-for': '10.1.2.4' }), 403, 'IP_FORBIDDEN');
    assertProblem(await call(s, 'GET', '/me', bearer(t.creds)), 403, 'IP_FORBIDDEN');
  });
});

describe('quotas', () => {
  let s: TestServer;
  let op: NativeCreds;
  before(async () => {
    s = await startServer();
    op = await operatorCreds(s.ctx);
  });
  after(() => s.close());

  it('are topped up by operators and read by their tenant', async () => {
    const a = await tenantWithApp(s.ctx, 'acme');
    const b = await tenantWithApp(s.ctx, 'globex');
    const up = await call(s, 'POST', '/quotas', bearer(op), { tenant_id: a.tenantId, service: 'fangtang', units: 5 });
    assert.equal(up.status, 200, up.text);
    assert.deepEqual(up.json, { tenant_id: a.tenantId, service: 'fangtang', remaining: 5 });
    assert.equal((await call(s, 'POST', '/quotas', bearer(op), { tenant_id: a.tenantId, service: 'fangtang', units: -2 })).json.remaining, 3);
    assertProblem(await call(s, 'POST', '/quotas', bearer(op), { tenant_id: a.tenantId, service: 'fangtang', units: -4 }), 400, 'VALIDATION');
    assertProblem(await call(s, 'POST', '/quotas', bearer(op), { tenant_id: a.tenantId, service: 'fangtang', units: 0 }), 400, 'VALIDATION');
    assertProblem(await call(s, 'POST', '/quotas', bearer(op), { tenant_id: 999999, service: 'fangtang', units: 1 }), 404, 'NOT_FOUND');
    assertProblem(await call(s, 'POST', '/quotas', bearer(a.creds), { tenant_id: a.tenantId, service: 'fangtang', units: 100 }), 403, 'FORBIDDEN');

    const own = await call(s, 'GET', '/quotas?service=fangtang', bearer(a.creds));
    assert.deepEqual(own.json, { tenant_id: a.tenantId, service: 'fangtang', remaining: 3 });
    assert.equal((await call(s, 'GET', '/quotas?service=fangtang', bearer(b.creds))).json.remaining, 0);
    assertProblem(await call(s, 'GET', `/quotas?service=fangtang&tenant_id=${a.tenantId}`, bearer(b.creds)), 403, 'FORBIDDEN');
    assert.equal((await call(s, 'GET', `/quotas?service=fangtang&tenant_id=${a.tenantId}`, bearer(op))).json.remaining, 3);
    assertProblem(await call(s, 'GET', '/quotas', bearer(a.creds)), 400, 'VALIDATION');
  });
});

describe('tenant isolation', () => {
  let s: TestServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  it('keeps tenant A away from everything of tenant B: ids of B answer 404, tenant_id=B answers 403', async () => {
    const a = await tenantWithApp(s.ctx, 'A');
    const b = await tenantWithApp(s.ctx, 'B');
    await registerDeveloper(s.ctx, { username: 'a-dev', password: 'a-dev-pw', tenantId: a.tenantId });
    await registerDeveloper(s.ctx, { username: 'b-dev', password: 'b-dev-pw', tenantId: b.tenantId });
    const aDev = tokenAuth((await login(s, 'a-dev', 'a-dev-pw')).token);
    const before = await s.ctx.db.kysely.selectFrom('apps').selectAll().where('tenant_id', '=', b.tenantId).execute();

    for (const auth of [aDev, bearer(a.creds)]) {
      const id = b.app.id;
      assertProblem(await call(s, 'GET', `/apps/${id}`, auth), 404, 'NOT_FOUND');
      assertProblem(await call(s, 'PATCH', `/apps/${id}`, auth, { blocked: true }), 404, 'NOT_FOUND');
      assertProblem(await call(s, 'POST', `/apps/${id}/rotate`, auth, {}), 404, 'NOT_FOUND');
      assertProblem(await call(s, 'DELETE', `/apps/${id}`, auth), 404, 'NOT_FOUND');
      assertProblem(await call(s, 'GET', `/apps?tenant_id=${b.tenantId}`, auth), 403, 'FORBIDDEN');
      assertProblem(await call(s, 'GET', `/developers?tenant_id=${b.tenantId}`, auth), 403, 'FORBIDDEN');
      assertProblem(await call(s, 'POST', '/apps', auth, { name: 'intruder', tenant_id: b.tenantId }), 403, 'FORBIDDEN');
      assertProblem(await call(s, 'POST', '/developers', auth, { username: 'intruder', password: 'intruder', tenant_id: b.tenantId }), 403, 'FORBIDDEN');
      const apps = await call(s, 'GET', '/apps', auth);
      assert.ok(apps.json.every((x: any) => x.tenant_id === a.tenantId));
      const devs = await call(s, 'GET', '/developers', auth);
      assert.ok(devs.json.every((x: any) => x.tenant_id === a.tenantId));
      assert.deepEqual((await call(s, 'GET', '/tenants', auth)).json.map((t: any) => t.id), [a.tenantId]);
    }
    const afterRows = await s.ctx.db.kysely.selectFrom('apps').selectAll().where('tenant_id', '=', b.tenantId).execute();
    assert.deepEqual(afterRows, before);
    assert.equal((await call(s, 'GET', '/me', bearer(b.creds))).status, 200);
  });
});
