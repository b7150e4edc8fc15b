/**
 * The Ulord dialect (seed 003): developer-platform management under /v1/role, /v1/type, /v1/users,
 * /v1/app (a logged-in developer), and the external calls under /v1/transactions and /v1/content
 * (header `appkey`). Every answer is the envelope {errcode, reason, result}; failures carry the
 * appendix code and reason, plus a `detail` sentence for people.
 */
import multipart from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import type { Ctx } from '../../core/context.js';
import { listApps } from '../../core/credentials/apps.js';
import { verifyAppkey } from '../../core/credentials/verify.js';
import { DomainError } from '../../core/errors.js';
import * as accounts from '../../services/accounts/index.js';
import { toUld } from '../../services/ledger/amount.js';
import { addDeveloperApp, removeDeveloperApp, rotateDeveloperApp } from '../../services/ledger/apps.js';
import * as content from '../../services/ledger/content.js';
import * as ledger from '../../services/ledger/index.js';
import { SESSION_COOKIE } from '../rest/auth.js';
import { callInfo, classify, header, logInternal } from '../http.js';
import { REASONS, ULORD_CODES, httpStatus } from './errors.js';

type Body = Record<string, unknown>;
type Handler = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** Python's isoformat of an aware UTC datetime, as the document shows times. */
export function isoTime(ms: number | null): string | null {
  if (ms === null) return null;
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000+00:00');
}

const ok = (result?: unknown) => (result === undefined ? { errcode: 0, reason: 'success' } : { errcode: 0, reason: 'success', result });

function fail(reply: FastifyReply, errcode: number, detail: string) {
  return reply.code(httpStatus(errcode)).type('application/json; charset=utf-8').send({ errcode, reason: REASONS[errcode], detail });
}

export function sendUlordError(req: FastifyRequest, reply: FastifyReply, err: unknown) {
  const c = classify(err, req);
  if (c.kind === 'domain') {
    const retry = c.error.details?.retryAfterMs;
    if (typeof retry === 'number') reply.header('retry-after', Math.max(1, Math.ceil(retry / 1000)));
    return fail(reply, ULORD_CODES[c.error.code], c.error.message);
  }
  if (c.kind === 'client') {
    const code = c.code === 'VALIDATION' ? 20101 : c.status === 413 ? 400 : c.status === 404 ? 404 : 20102;
    return fail(reply, code, c.message);
  }
  return fail(reply, 500, `internal error; quote request id ${logInternal(req, c.error)}`);
}

function body(req: FastifyRequest): Body {
  const b = req.body;
  if (b === undefined || b === null || b === '') return {};
  if (typeof b !== 'object' || Array.isArray(b) || Buffer.isBuffer(b)) throw new DomainError('BAD_REQUEST', 'the body must be a JSON object');
  return b as Body;
}

function need(b: Body, ...fields: string[]): void {
  for (const f of fields) if (b[f] === undefined || b[f] === null || b[f] === '') throw new DomainError('MISSING_FIELD', `${f} is required`, { field: f });
}

function idOf(v: unknown, field: string): number {
  if (v === undefined || v === null || v === '') throw new DomainError('MISSING_FIELD', `${field} is required`, { field });
  const n = typeof v === 'number' ? v : /^\d{1,15}$/.test(String(v)) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw new DomainError('VALIDATION', `${field} must be a positive integer id`, { field });
  return n;
}

function optId(v: unknown, field: string): number | null {
  return v === undefined || v === null || v === '' ? null : idOf(v, field);
}

function str(v: unknown, field: string, max: number): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new DomainError('VALIDATION', `${field} must be a string`, { field });
  if (v.length > max) throw new DomainError('VALIDATION', `${field} is longer than ${max} characters`, { field });
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (v === undefined || v === null || v === '' || v === false || v === 0) return false;
  if (v === true || v === 1) return true;
  if (typeof v === 'string' && /^(true|1|yes)$/i.test(v)) return true;
  if (typeof v === 'string' && /^(false|0|no)$/i.test(v)) return false;
  throw new DomainError('VALIDATION', `${field} must be true or false`, { field });
}

const sorted = <T extends Record<string, unknown>>(o: T): T => Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]])) as T;

function contentOut(c: content.Content) {
  return {
    author: c.author,
    claim_id: c.claim_id,
    content_type: c.content_type,
    create_timed: isoTime(c.created_at),
    currency: ledger.CURRENCY,
    des: c.des,
    id: c.id,
    price: toUld(c.price),
    status: c.status,
    tags: JSON.parse(c.tags) as string[],
    title: c.title,
    update_timed: isoTime(c.updated_at),
  };
}

const sumOut = (s: { count: number; sum: number | null }) => ({ count: s.count, sum: s.sum === null ? null : toUld(s.sum) });

const ALL_METHODS: HTTPMethods[] = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];

export async function ulordDialect(app: FastifyInstance, opts: { ctx: Ctx }): Promise<void> {
  const { ctx } = opts;
  await app.register(multipart, { limits: { fileSize: ctx.config.uploadLimit, files: 1, fields: 10 } });
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: ctx.config.uploadLimit }, (_req, b, done) => done(null, b));
  app.setErrorHandler((err, req, reply) => sendUlordError(req, reply, err));
  app.setNotFoundHandler((req, reply) => fail(reply, 404, `no route ${req.method} ${req.url.split('?')[0]}`));

  /** Registers a route with and without its trailing slash, and 405 for the other methods. */
  function route(method: 'GET' | 'POST', path: string, handler: Handler, extra: { bodyLimit?: number } = {}): void {
    const bare = path.replace(/\/$/, '');
    for (const url of [bare, bare + '/']) {
      app.route({ method, url, handler, ...extra });
      app.route({ method: ALL_METHODS.filter((m) => m !== method), url, handler: async (_req, reply) => fail(reply, 405, `use ${method}`) });
    }
  }

  // --- management: a logged-in developer -------------------------------------------------------
  function sessionToken(req: FastifyRequest): string | undefined {
    const auth = header(req, 'authorization');
    if (auth && /^Bearer\s/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim();
    return header(req, 'token') || req.cookies?.[SESSION_COOKIE] || undefined;
  }
  async function developer(req: FastifyRequest): Promise<accounts.DeveloperView> {
    const d = await accounts.sessionDeveloper(ctx, sessionToken(req));
    if (!d) throw new DomainError('NOT_LOGGED_IN', 'log in first (POST /v1/users/login/)');
    if (d.role === 'blocked') throw new DomainError('USER_BLOCKED', 'this developer is blocked');
    return d;
  }
  async function admin(req: FastifyRequest): Promise<accounts.DeveloperView> {
    const d = await developer(req);
    if (d.role !== 'admin') throw new DomainError('FORBIDDEN', 'only admins manage roles and app types');
    return d;
  }

  route('POST', '/role/add/', async (req) => {
    await admin(req);
    const b = body(req);
    need(b, 'name');
    return ok({ id: await accounts.addRole(ctx, b.name as string, str(b.des, 'des', 1000) ?? '') });
  });
  route('GET', '/role/list/', async (req) => {
    await developer(req);
    return ok((await accounts.listRoles(ctx)).map((r) => ({ des: r.des, id: Number(r.id), name: r.name })));
  });
  route('POST', '/role/edit/', async (req) => {
    await admin(req);
    const b = body(req);
    const id = idOf(b.id, 'id');
    need(b, 'name');
    await accounts.editRole(ctx, id, b.name as string, str(b.des, 'des', 1000) ?? '');
    return ok();
  });
  route('POST', '/role/remove/', async (req) => {
    await admin(req);
    return ok({ num: await accounts.removeRole(ctx, idOf(body(req).id, 'id')) });
  });

  route('POST', '/type/add/', async (req) => {
    await admin(req);
    const b = body(req);
    need(b, 'name');
    return ok({ id: await accounts.addAppType(ctx, { name: b.name as string, des: str(b.des, 'des', 1000) ?? '', parentId: optId(b.parent_id, 'parent_id') }) });
  });
  route('GET', '/type/list/', async (req) => {
    await developer(req);
    const order = (nodes: accounts.AppTypeNode[]): unknown[] => nodes.map((n) => sorted({ ...n, ...(n.children ? { children: order(n.children) } : {}) }));
    return ok(order(await accounts.appTypeTree(ctx)));
  });
  route('POST', '/type/edit/', async (req) => {
    await admin(req);
    const b = body(req);
    const id = idOf(b.id, 'id');
    const cur = await ctx.db.kysely.selectFrom('app_types').selectAll().where('id', '=', id).executeTakeFirst();
    if (!cur) throw new DomainError('NOT_FOUND', `no app type ${id}`, { field: 'id' });
    // fields left out keep their value
    await accounts.editAppType(ctx, id, {
      name: b.name === undefined ? cur.name : (b.name as string),
      des: b.des === undefined ? cur.des : (str(b.des, 'des', 1000) ?? ''),
      parentId: b.parent_id === undefined ? (cur.parent_id === null ? null : Number(cur.parent_id)) : optId(b.parent_id, 'parent_id'),
    });
    return ok();
  });
  route('POST', '/type/remove/', async (req) => {
    await admin(req);
    return ok({ num: await accounts.removeAppType(ctx, idOf(body(req).id, 'id')) });
  });

  route('POST', '/users/reg/', async (req) => {
    const b = body(req);
    need(b, 'username', 'password');
    let caller: accounts.DeveloperView | null = null;
    if (sessionToken(req)) caller = await developer(req).catch(() => null);
    if (!ctx.config.openRegistration && caller?.role !== 'admin') {
      if (!caller) throw new DomainError('NOT_LOGGED_IN', 'registration is closed; an admin registers developers');
      throw new DomainError('FORBIDDEN', 'registration is closed; only admins register developers');
    }
    let role = 'normal';
    if (b.role_id !== undefined && b.role_id !== null && b.role_id !== '') {
      const id = idOf(b.role_id, 'role_id');
      const r = (await accounts.listRoles(ctx)).find((x) => Number(x.id) === id);
      if (!r) throw new DomainError('NOT_FOUND', `no role ${id}`, { field: 'role_id' });
      if (r.name !== 'normal' && caller?.role !== 'admin') throw new DomainError('FORBIDDEN', `only admins register developers with role ${r.name}`, { field: 'role_id' });
      role = r.name;
    }
    const d = await accounts.registerDeveloper(ctx, {
      username: b.username as string,
      password: b.password as string,
      email: str(b.email, 'email', 200) || null,
      telephone: str(b.telphone ?? b.telephone, 'telphone', 40) || null,
      role,
    });
    return ok({ id: d.id });
  });
  route('POST', '/users/login/', async (req, reply) => {
    const b = body(req);
    need(b, 'username', 'password');
    const s = await accounts.login(ctx, String(b.username), String(b.password));
    reply.setCookie(SESSION_COOKIE, s.token, { path: '/', httpOnly: true, sameSite: 'lax', expires: new Date(s.expiresAt) });
    return ok({ token: s.token });
  });
  route('POST', '/users/edit/', async (req) => {
    const d = await developer(req);
    const b = body(req);
    need(b, 'username', 'password', 'new_password');
    if (String(b.username) !== d.username && d.role !== 'admin') throw new DomainError('FORBIDDEN', 'you can change only your own password');
    await accounts.changePassword(ctx, String(b.username), String(b.password), b.new_password as string);
    return ok();
  });

  async function appOwner(req: FastifyRequest, b: Body): Promise<accounts.DeveloperView> {
    const d = await developer(req);
    if (b.user_id === undefined || b.user_id === null || b.user_id === '') return d;
    const id = idOf(b.user_id, 'user_id');
    if (id === d.id) return d;
    if (d.role !== 'admin') throw new DomainError('FORBIDDEN', 'user_id is not you');
    const other = await accounts.getDeveloper(ctx, id);
    if (!other) throw new DomainError('USER_UNKNOWN', `no developer ${id}`, { field: 'user_id' });
    return other;
  }
  route('POST', '/app/add/', async (req) => {
    const b = body(req);
    const owner = await appOwner(req, b);
    need(b, 'appname');
    const a = await addDeveloperApp(ctx, owner, { name: b.appname, typeId: b.apptype_id, des: b.appdes });
    return ok({ id: a.id });
  });
  route('POST', '/app/list/', async (req) => {
    const owner = await appOwner(req, body(req));
    const apps = await listApps(ctx, { developerId: owner.id });
    return ok(
      apps.map((a) => ({
        appdes: a.description,
        appkey: a.key,
        appname: a.name,
        create_timed: isoTime(a.createdAt),
        id: a.id,
        secret: a.secret,
        type: a.typeId,
        update_timed: isoTime(a.updatedAt),
      })),
    );
  });
  route('POST', '/app/edit/', async (req) => {
    const b = body(req);
    const owner = await appOwner(req, b);
    return ok({ secret: await rotateDeveloperApp(ctx, owner, b.id) });
  });
  route('POST', '/app/remove/', async (req) => {
    const d = await developer(req);
    return ok({ num: await removeDeveloperApp(ctx, d, body(req).id) });
  });

  // --- external calls: header appkey ---------------------------------------------------------
  async function caller(req: FastifyRequest): Promise<ledger.AppRef> {
    const a = await verifyAppkey(ctx, header(req, 'appkey'), callInfo(req));
    return { id: a.id, tenantId: a.tenantId, developerId: a.developerId };
  }

  route('POST', '/transactions/createwallet/', async (req) => {
    const a = await caller(req);
    const b = body(req);
    const w = await ledger.createWallet(ctx, a, b.username, b.pay_password ?? b.pay_passwrod);
    return ok({ id: w.owner });
  });
  route('POST', '/transactions/paytouser/', async (req, reply) => {
    const a = await caller(req);
    const b = body(req);
    const r = await ledger.pay(ctx, {
      app: a,
      isDeveloper: bool(b.is_developer, 'is_developer'),
      sendUser: b.send_user,
      payPassword: b.pay_password ?? b.pay_passwrod,
      recvUser: b.recv_user,
      amount: b.amount,
      idempotencyKey: header(req, 'idempotency-key') ?? b.idempotency_key,
    });
    reply.header('x-ulord-txid', r.transfer.txid);
    if (r.replayed) reply.header('idempotent-replayed', 'true');
    return ok();
  });
  route('POST', '/transactions/balance/', async (req) => {
    const a = await caller(req);
    const b = body(req);
    const bal = await ledger.walletBalance(ctx, a.id, b.username, b.pay_password ?? b.pay_passwrod);
    return ok({ confirmed: toUld(bal.confirmed), total: toUld(bal.total), unconfirmed: toUld(bal.unconfirmed), unmatured: toUld(bal.unmatured) });
  });
  route('POST', '/transactions/publish/', async (req) => {
    const a = await caller(req);
    const b = body(req);
    const c = await content.publish(ctx, a, {
      author: b.author,
      title: b.title,
      tag: b.tag ?? b.tags,
      ipfs_hash: b.ipfs_hash,
      price: b.price,
      content_type: b.content_type,
      pay_password: b.pay_password ?? b.pay_passwrod,
      description: b.description ?? b.des,
    });
    return ok({ claim_id: c.claim_id, id: c.id });
  });
  route('POST', '/transactions/check/', async (req) => {
    const a = await caller(req);
    const b = body(req);
    return ok(sorted(await content.check(ctx, a.id, b.username, b.claim_ids)));
  });
  route('POST', '/transactions/consume/', async (req, reply) => {
    const a = await caller(req);
    const b = body(req);
    const r = await content.consume(ctx, a, { username: b.username, claim_id: b.claim_id, customer_pay_password: b.customer_pay_password, author_pay_password: b.author_pay_password });
    if (r.txid) reply.header('x-ulord-txid', r.txid);
    return ok({ ipfs_hash: r.ipfs_hash });
  });
  route('POST', '/transactions/publisher/account/:page/:num/', async (req) => {
    const a = await caller(req);
    const p = req.params as { page: string; num: string };
    const { page, num } = content.paging(p.page, p.num);
    const s = await content.statement(ctx, a.id, 'publisher', body(req).author, page, num);
    return ok({
      pages: content.pages(s.total, num),
      records: s.records.map((r) => ({ author: r.author, create_timed: isoTime(r.created_at), customer: r.customer, id: r.claim_id, price: toUld(r.price), title: r.title, txid: r.txid })),
      total: s.total,
    });
  });
  route('POST', '/transactions/customer/account/:page/:num/', async (req) => {
    const a = await caller(req);
    const p = req.params as { page: string; num: string };
    const { page, num } = content.paging(p.page, p.num);
    const s = await content.statement(ctx, a.id, 'customer', body(req).customer, page, num);
    return ok({
      pages: content.pages(s.total, num),
      records: s.records.map((r) => ({ claim_id: r.claim_id, create_timed: isoTime(r.created_at), price: toUld(r.price), title: r.title, txid: r.txid })),
      total: s.total,
    });
  });
  route('POST', '/transactions/publish/inout/', async (req) => {
    const a = await caller(req);
    const t = await content.inout(ctx, a.id, body(req).username);
    return ok({
      customer_expenditure: sumOut(t.customer_expenditure),
      customer_income: sumOut(t.customer_income),
      publisher_expenditure: sumOut(t.publisher_expenditure),
      publisher_income: sumOut(t.publisher_income),
    });
  });
  route('POST', '/transactions/publish/count/', async (req) => {
    const a = await caller(req);
    return ok({ count: await content.publishCount(ctx, a.id, body(req).author) });
  });

  route('GET', '/content/list/:page/:num/', async (req) => {
    const a = await caller(req);
    const p = req.params as { page: string; num: string };
    const { page, num } = content.paging(p.page, p.num);
    const r = await content.listContent(ctx, a.id, page, num);
    return ok({ data: r.rows.map(contentOut), pages: content.pages(r.total, num), total: r.total });
  });
  route('POST', '/content/consume/list/:page/:num/', async (req) => {
    const a = await caller(req);
    const p = req.params as { page: string; num: string };
    const { page, num } = content.paging(p.page, p.num);
    const r = await content.consumedBy(ctx, a.id, body(req).customer, page, num);
    return ok({
      ads: r.rows.filter((c) => c.paid < 0).map(contentOut),
      consumes: r.rows.filter((c) => c.paid >= 0).map(contentOut),
      pages: content.pages(r.total, num),
      total: r.total,
    });
  });
  route('POST', '/content/publish/list/:page/:num/', async (req) => {
    const a = await caller(req);
    const p = req.params as { page: string; num: string };
    const { page, num } = content.paging(p.page, p.num);
    const r = await content.publishedBy(ctx, a.id, body(req).author, page, num);
    return ok({ data: r.rows.map(contentOut), pages: content.pages(r.total, num), total: r.total });
  });

  // --- beyond the document: upload a file (real IPFS CIDs), download what was bought -----------
  route(
    'POST',
    '/content/upload/',
    async (req) => {
      const a = await caller(req);
      let data: Buffer;
      let type = 'application/octet-stream';
      if (req.isMultipart()) {
        const f = await req.file();
        if (!f) throw new DomainError('MISSING_FIELD', 'no file in the form', { field: 'file' });
        data = await f.toBuffer();
        type = f.mimetype || type;
      } else if (Buffer.isBuffer(req.body)) {
        data = req.body;
      } else throw new DomainError('MISSING_FIELD', 'send the file as multipart field `file` or as application/octet-stream', { field: 'file' });
      const u = await content.storeUpload(ctx, a, data, type);
      return ok({ cid_v1: u.cid_v1, ipfs_hash: u.cid_v0, size: u.size });
    },
    { bodyLimit: ctx.config.uploadLimit },
  );
  route('GET', '/content/download/:claim_id/', async (req, reply) => {
    const a = await caller(req);
    const q = req.query as Record<string, unknown>;
    const d = await content.download(ctx, a.id, q.username, (req.params as { claim_id: string }).claim_id);
    reply.header('content-length', d.size).header('x-ipfs-hash', d.content.ipfs_hash);
    return reply.type(d.contentType).send(d.body);
  });
}

