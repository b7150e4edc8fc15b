/**
 * The BQP dialect (JDCloud business query protocol, seed 004) mounted at ctx.config.bqpPrefix.
 * Parses a call (`/api/Obj.verb`, `?ac=`, RESTful aliases), authenticates it (session cookie
 * `{app}id`, HTTP Basic, `_sign`), hands it to the objects service and words the result:
 * always HTTP 200 with `[0, data]` or `[code, message, internal]`.
 */
import multipart from '@fastify/multipart';
import { parse as parseForm } from 'fast-querystring';
import iconv from 'iconv-lite';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../../core/context.js';
import type { App } from '../../core/credentials/apps.js';
import { verifyBasic, verifyBqpSign, type CallInfo } from '../../core/credentials/verify.js';
import type { FastHandler } from '../../module.js';
import { recorder } from '../../services/usage/index.js';
import { DomainError, isDomainError } from '../../core/errors.js';
import { callerOf, queryFmt, type AppType, type Caller, type ObjectsService, type ObjParams, type SessionData } from '../../services/objects/index.js';
import { andAll, condTree, intParam, type SubParams } from '../../services/objects/query.js';
import { parseTable } from '../../services/objects/crud.js';
import { contentDisposition, findFile, upload, type UploadPart } from '../../services/objects/files.js';
import { chpwd, genCode, loginByCode, register } from '../../services/objects/users.js';
import { callInfo, clientIp, header, isBackendDown } from '../http.js';
import { apiEvent } from '../events.js';
import { E, envelopeText, EXPORT_FMTS, MESSAGES, nestForm, parseQueryString, sendExport, shapeQuery, WIRE, type Envelope, type PObj, type PVal } from './wire.js';

class BqpFail extends Error {
  constructor(
    readonly code: number,
    readonly userMessage: string,
    readonly internal: unknown = null,
  ) {
    super(userMessage);
  }
}

/** One call as the dispatcher sees it. */
interface Call {
  ac: string;
  url: PObj;
  body: PObj;
  /** the body was not an object (text for batchAdd, bytes for raw upload) */
  rawBody: unknown;
  method: string;
  /** the charset named in the request's Content-Type, lower-case (null: none) */
  charset?: string | null;
}

interface Who {
  appType: AppType;
  session: SessionData | null;
  token: string | undefined;
  /** Basic / _sign credential, valid only for the calls its allowedAc lists */
  ext: { caller: Caller; allowedAc: string[]; session: SessionData } | null;
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);

function str(v: PVal | undefined): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v === '' ? undefined : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** `param_<sub>` as sent (URL `param_log[cond]=…` or a JSON object): res, cond, orderby, wantOne, pagesz. */
function subParamsOf(key: string, o: Record<string, unknown>): SubParams {
  const text = (x: unknown): string | undefined => (typeof x === 'string' && x !== '' ? x : typeof x === 'number' || typeof x === 'boolean' ? String(Number(x)) : undefined);
  const sp: SubParams = {};
  const res = text(o.res);
  if (res !== undefined) sp.res = res;
  if (o.cond !== undefined) sp.cond = condTree(o.cond);
  const orderby = text(o.orderby);
  if (orderby !== undefined) sp.orderby = orderby;
  const one = text(o.wantOne);
  if (one !== undefined) sp.wantOne = one === '1';
  const pagesz = text(o.pagesz);
  if (pagesz !== undefined) sp.pagesz = intParam(pagesz, `${key}[pagesz]`);
  return sp;
}

const glob = (pat: string, s: string): boolean => new RegExp('^' + pat.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$').test(s);

/** Where an unexpected failure is logged: the request's logger and id (null inside nothing). */
type Where = { readonly log: FastifyBaseLogger; readonly id: string } | null;

function failOf(err: unknown, req: Where): BqpFail {
  if (err instanceof BqpFail) return err;
  if (isDomainError(err)) {
    const code = WIRE[err.code] ?? E.SERVER;
    const um = typeof err.details?.userMessage === 'string' ? err.details.userMessage : /[\u4e00-\u9fff]/.test(err.message) ? err.message : MESSAGES[code];
    return new BqpFail(code, um, err.message);
  }
  if (isBackendDown(err)) return new BqpFail(E.SERVER, MESSAGES[E.SERVER], 'a backing service is unreachable right now');
  const e = err as { code?: string; name?: string; statusCode?: number; message?: string };
  if (e && (e.name === 'SqliteError' || (typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && e.name === 'error'))) {
    return new BqpFail(E.DB, MESSAGES[E.DB], null);
  }
  if (e && typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return new BqpFail(E.PARAM, MESSAGES[E.PARAM], e.message ?? null);
  req?.log.error({ err }, 'bqp call failed');
  return new BqpFail(E.SERVER, MESSAGES[E.SERVER], req ? `request ${req.id}` : null);
}

const E_CODES: Record<number, string> = { [E.ABORT]: 'ABORTED', [E.AUTHFAIL]: 'SECRET_INVALID', [E.PARAM]: 'VALIDATION', [E.NOAUTH]: 'NOT_LOGGED_IN', [E.DB]: 'DB_ERROR', [E.SERVER]: 'INTERNAL', [E.FORBIDDEN]: 'FORBIDDEN' };

/** The symbolic code of a failed call, for the request log. */
const errorCodeOf = (err: unknown, f: BqpFail): string => (isDomainError(err) ? err.code : (E_CODES[f.code] ?? 'INTERNAL'));

/** What authenticating a call reads of its request. */
interface Asker {
  cookie(name: string): string | undefined;
  authorization: string | undefined;
  info(): CallInfo;
}
const askerOf = (req: FastifyRequest): Asker => ({ cookie: (n) => req.cookies?.[n], authorization: header(req, 'authorization'), info: () => callInfo(req) });

/** The query string of a request URL as BQP parameters (up to a second `?`, like the route always read it). */
const urlParams = (url: string): PObj => parseQueryString(url.split('?')[1] ?? '');
const envelopeOf = (q: PObj): Envelope => ({ raw: str(q._raw), retfn: str(q.retfn), jsonp: str(q._jsonp) });

export interface BqpOptions {
  ctx: Ctx;
  svc: ObjectsService;
  /** Where the dialect enters its raw handler for plain reads (run before Fastify; see Module.fast). */
  lane: BqpLane;
}

/** The dialect's lane: its handler once mounted, and how many requests it answered (tests check it). */
export class BqpLane {
  handler: FastHandler | null = null;
  answered = 0;
}

export async function bqpDialect(app: FastifyInstance, { ctx, svc, lane }: BqpOptions): Promise<void> {
  const prefix = ctx.config.bqpPrefix.replace(/\/+$/, '');

  // text fields arrive as their bytes (latin1 is 1:1) and are decoded below: UTF-8, the form's
  // `_charset_` or Content-Type charset, else GB18030 when they are not valid UTF-8 (old GBK forms)
  await app.register(multipart, { defCharset: 'latin1', limits: { fileSize: Math.min(ctx.config.uploadLimit, 20 * 1024 * 1024), files: 20, fields: 200, parts: 220 } });
  // Bodies in another charset than UTF-8 (Content-Type `…; charset=gbk`, as Chinese clients send)
  // are decoded before they are parsed; an unknown charset is a parameter error.
  // text bodies stay bytes (the '*' parser below): batchAdd decodes them by charset or detection
  app.removeContentTypeParser('text/plain');
  app.removeContentTypeParser('application/x-www-form-urlencoded');
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer', bodyLimit: ctx.config.bodyLimit }, (req, body, done) => {
    const cs = charsetOf(req);
    if (isUtf8(cs)) return done(null, parseForm((body as Buffer).toString()));
    if (!iconv.encodingExists(cs!)) return done(new BqpFail(E.PARAM, MESSAGES[E.PARAM], `unsupported charset ${cs}`), undefined);
    done(null, parseFormIn(body as Buffer, cs!));
  });
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const cs = charsetOf(req);
    if (!isUtf8(cs) && !iconv.encodingExists(cs!)) return done(new BqpFail(E.PARAM, MESSAGES[E.PARAM], `unsupported charset ${cs}`), undefined);
    const s = isUtf8(cs) ? (body as Buffer).toString('utf8') : iconv.decode(body as Buffer, cs!);
    if (s.trim() === '') return done(null, {});
    try {
      done(null, JSON.parse(s));
    } catch {
      done(null, { __badJson: true });
    }
  });
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: ctx.config.uploadLimit }, (_req, body, done) => done(null, body));

  // CORS with credentials, reflected origin (browser clients run from other origins)
  app.addHook('onSend', async (req, reply, payload) => {
    const origin = header(req, 'origin');
    if (origin) {
      reply.header('Access-Control-Allow-Origin', origin);
      reply.header('Access-Control-Allow-Credentials', 'true');
      reply.header('Access-Control-Expose-Headers', 'X-Daca-Server-Rev, X-Daca-Test-Mode, X-Daca-Mock-Mode');
      reply.header('Vary', 'Origin');
      const h = header(req, 'access-control-request-headers');
      if (h) reply.header('Access-Control-Allow-Headers', h);
      const m = header(req, 'access-control-request-method');
      if (m) reply.header('Access-Control-Allow-Methods', m);
    }
    return payload;
  });
  // Fastify-level failures (too large, bad multipart) are still BQP answers
  app.setErrorHandler((err, req, reply) => {
    const f = failOf(err, req);
    req.errorCode = errorCodeOf(err, f);
    return sendEnvelope(reply, envOf(req), f.code, f.userMessage, f.internal);
  });

  const envOf = (req: FastifyRequest): Envelope => envelopeOf((req as { bqpUrl?: PObj }).bqpUrl ?? urlParams(req.url));

  function sendEnvelope(reply: FastifyReply, env: Envelope, code: number, data: unknown, internal: unknown = null): FastifyReply {
    const text = envelopeText(env, code, data, internal);
    (reply as { bqpRet?: number; bqpText?: string }).bqpRet = code;
    (reply as { bqpText?: string }).bqpText = text;
    return reply
      .code(200)
      .type(env.retfn === 'xml' ? 'application/xml; charset=UTF-8' : 'text/plain; charset=UTF-8')
      .header('Cache-Control', 'no-cache')
      .send(text);
  }

  // --- auth ------------------------------------------------------------------------------------

  async function who(req: Asker, call: Call): Promise<Who> {
    const param = (n: string) => str(call.url[n]) ?? str(call.body[n]);
    const rawApp = param('_app') ?? 'user';
    const t = rawApp.replace(/(-.*|\d+)$/, '');
    const appType: AppType = t === 'emp' ? 'emp' : t === 'admin' ? 'admin' : 'user';
    const token = req.cookie(`${appType}id`);
    const session = await svc.session(appType, token);
    let ext: Who['ext'] = null;
    if (!session) {
      const sign = param('_sign');
      let used: App | null = null;
      let def = null;
      if (sign !== undefined) {
        used = await verifyBqpSign(ctx, { timestamp: param('timestamp'), sign, partnerId: param('partnerId') }, req.info());
        def = svc.schema.auth.sign;
      } else if (req.authorization) {
        used = await verifyBasic(ctx, req.authorization, req.info()).catch((e) => {
          if (isDomainError(e) && ['KEY_UNKNOWN', 'SECRET_INVALID', 'APP_BLOCKED', 'APP_EXPIRED', 'IP_FORBIDDEN'].includes(e.code)) return null;
          throw e;
        });
        def = svc.schema.auth.basic;
      }
      if (used && def) {
        const s: SessionData = def.role === 'admin' ? { app: 'admin', adminId: def.session.adminId ?? -9999 } : def.role === 'user' ? { app: 'user', uid: def.session.uid ?? -9999 } : { app: 'emp', empId: def.session.empId ?? -9999 };
        const caller = def.role === 'guest' ? { role: 'guest' as const, loggedIn: true, vars: {} } : callerOf(s);
        ext = { caller, allowedAc: def.allowedAc, session: s };
      }
    }
    return { appType, session, token, ext };
  }

  function callerFor(w: Who, ac: string): { caller: Caller; session: SessionData | null } {
    if (w.session) return { caller: callerOf(w.session), session: w.session };
    if (w.ext && w.ext.allowedAc.some((p) => glob(p, ac))) return { caller: w.ext.caller, session: w.ext.session };
    return { caller: callerOf(null), session: null };
  }

  // --- one call ----------------------------------------------------------------------------------

  const QUERY_KEYS = new Set(['cond', 'gcond', 'res', 'gres', 'orderby', 'pagesz', 'pagekey', 'page', 'fmt', 'rows']);
  function objParams(call: Call): ObjParams {
    const param = (n: string) => str(call.url[n]) ?? str(call.body[n]);
    const cond = andAll([condTree(call.url.cond), condTree(call.body.cond)]);
    const gcond = andAll([condTree(call.url.gcond, 'gcond'), condTree(call.body.gcond, 'gcond')]);
    const subRes: Record<string, string> = {};
    for (const src of [call.body, call.url]) for (const [k, v] of Object.entries(src)) if (k.startsWith('res_') && typeof v === 'string') subRes[k.slice(4)] = v;
    const subParams: Record<string, SubParams> = {};
    for (const src of [call.body, call.url]) for (const [k, v] of Object.entries(src)) if (k.startsWith('param_') && k.length > 6 && isObj(v)) subParams[k.slice(6)] = subParamsOf(k, v);
    // POST fields: the body minus query parameters (URL parameters are never fields)
    const body: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(call.body)) if (!QUERY_KEYS.has(k) && !k.startsWith('res_') && !k.startsWith('param_')) body[k] = v;
    return { param, body, cond, gcond, subRes, subParams };
  }

  async function dispatch(req: FastifyRequest | null, reply: FastifyReply | null, call: Call, w: Who, inBatch: null | { exec: import('../../services/objects/crud.js').Exec | null }): Promise<{ data: unknown; sent?: boolean; setCookie?: string; clearCookie?: boolean; userId?: number | null }> {
    const ac = call.ac;
    const { caller, session } = callerFor(w, ac);
    const param = (n: string) => str(call.url[n]) ?? str(call.body[n]);
    const om = /^([A-Z]\w*)\.([a-z]\w*)$/.exec(ac);
    if (om) {
      const [, obj, op] = om;
      const p = objParams(call);
      if (op === 'batchAdd') p.rows = batchRows(req, call, param);
      const write = !svc.readsOnly(obj, op);
      const run = (x: import('../../services/objects/crud.js').Exec) => svc.objectCall(x, caller, obj, op, p);
      const r = inBatch?.exec ? await run(inBatch.exec) : await svc.run(write, run);
      if (r.kind === 'data') return { data: r.data };
      const shaped = shapeQuery(r.result, r.fmt);
      if (shaped === undefined) {
        if (!reply || inBatch) throw new BqpFail(E.PARAM, MESSAGES[E.PARAM], 'export formats cannot be used in batch');
        await sendExport(reply, r.result, r.fmt, param('fname') ?? obj);
        return { data: null, sent: true };
      }
      if (!shaped.ok) throw new BqpFail(E.PARAM, shaped.message, shaped.internal);
      return { data: shaped.data };
    }
    if (!/^[a-z]\w*$/.test(ac)) throw new BqpFail(E.PARAM, '接口不支持', `Bad request - unknown ac: ${ac}`);
    if (inBatch?.exec && !['whoami'].includes(ac)) throw new BqpFail(E.PARAM, MESSAGES[E.PARAM], `${ac} cannot run inside a batch transaction`);
    switch (ac) {
      case 'login': {
        const uname = param('uname') ?? param('phone');
        const code = param('code');
        const r = !param('pwd') && code && uname ? await loginByCode(svc, w.appType, uname, code) : await svc.login(w.appType, uname, param('pwd'));
        return { data: { ...r.info, id: r.info.id, _token: r.token, _expire: r.expires }, setCookie: r.token, userId: r.session.uid ?? null };
      }
      case 'reg': {
        const r = await register(svc, w.appType, { uname: param('uname'), phone: param('phone'), pwd: param('pwd'), name: param('name') });
        return { data: { ...r.info, _token: r.token, _expire: r.expires }, setCookie: r.token, userId: r.session.uid ?? null };
      }
      case 'genCode':
        return { data: await genCode(svc, w.appType, param('phone'), param('type') ?? 'd6', param('debug') === '1') };
      case 'chpwd': {
        const r = await chpwd(svc, w.appType, w.session, { oldpwd: param('oldpwd'), code: param('code'), pwd: param('pwd'), phone: param('phone') });
        return { data: { _token: r.token, _expire: r.expires }, setCookie: r.token, userId: r.session.uid ?? null };
      }
      case 'whoami':
        return { data: await svc.whoami(session, caller) };
      case 'logout':
        await svc.logout(w.token);
        return { data: 'OK', clearCookie: true };
      case 'upload': {
        if (!caller.loggedIn) throw new DomainError('NOT_LOGGED_IN', '未登录');
        if (!reply || inBatch) throw new BqpFail(E.PARAM, MESSAGES[E.PARAM], 'upload cannot be used in batch');
        const parts = await uploadParts(req, call, param);
        const by = session ? `${session.app}:${session.uid ?? session.empId ?? session.adminId}` : null;
        const out = await upload(ctx, parts, { genThumb: param('genThumb') === '1', autoResize: param('autoResize') !== '0', by });
        return { data: out.map((u) => ({ id: u.id, ...(u.thumbId ? { thumbId: u.thumbId } : {}), orgName: u.orgName, size: u.size })) };
      }
      case 'att':
      case 'pic':
        if (!req || !reply || inBatch) throw new BqpFail(E.PARAM, MESSAGES[E.PARAM], `${ac} cannot be used in batch`);
        if (ac === 'att') await sendAtt(req, reply, param);
        else sendPic(reply, param);
        return { data: null, sent: true };
      case 'batch':
        if (!req) throw new BqpFail(E.PARAM, MESSAGES[E.PARAM], 'batch needs a request body');
        if (inBatch) throw new BqpFail(E.PARAM, MESSAGES[E.PARAM], 'batch cannot be nested');
        return { data: await runBatch(req, call, w) };
      default:
        throw new BqpFail(E.PARAM, '接口不支持', `Bad request - unknown ac: ${ac}`);
    }
  }

  function batchRows(req: FastifyRequest | null, call: Call, param: (n: string) => string | undefined): Record<string, unknown>[] {
    if (isObj(call.rawBody) && Array.isArray(call.rawBody.list)) return (call.rawBody.list as unknown[]).filter(isObj);
    if (Array.isArray(call.body.list)) return (call.body.list as unknown[]).filter(isObj) as Record<string, unknown>[];
    // a csv/txt file (multipart) or a text body; UTF-8 or, when not valid UTF-8, GBK (Excel's csv)
    const file = (req as { bqpFiles?: { data: Buffer }[] } | null)?.bqpFiles?.[0]?.data;
    const bytes = file ?? (Buffer.isBuffer(call.rawBody) ? call.rawBody : null);
    const text = typeof call.rawBody === 'string' && !file ? call.rawBody : bytes ? decodeText(bytes, file ? null : call.charset) : null;
    if (text === null) throw new DomainError('VALIDATION', 'batchAdd needs a table (text) or {list:[…]}');
    return parseTable(text, param('title'));
  }

  async function uploadParts(req: FastifyRequest | null, call: Call, param: (n: string) => string | undefined): Promise<UploadPart[]> {
    const fmt = param('fmt');
    if (fmt === 'raw' || fmt === 'raw_b64') {
      const name = param('f');
      if (!name) throw new DomainError('VALIDATION', '缺少参数`f`');
      let data = Buffer.isBuffer(call.rawBody) ? call.rawBody : typeof call.rawBody === 'string' ? Buffer.from(call.rawBody) : null;
      if (!data) throw new DomainError('VALIDATION', '上传失败!没有内容');
      if (fmt === 'raw_b64') data = Buffer.from(data.toString('latin1').replace(/^data:[^,]*,/, ''), 'base64');
      return [{ name: name.split(/[\\/]/).pop()!, data }];
    }
    const parts = (req as { bqpFiles?: { field: string; name: string; data: Buffer }[] } | null)?.bqpFiles ?? [];
    const only = param('f')?.split(',');
    return parts.filter((p) => !only || only.includes(p.field)).map((p) => ({ name: p.name, data: p.data }));
  }

  async function sendAtt(req: FastifyRequest, reply: FastifyReply, param: (n: string) => string | undefined): Promise<void> {
    const n = (k: string) => {
      const v = param(k);
      return v !== undefined && /^\d{1,15}$/.test(v) ? Number(v) : undefined;
    };
    const idRaw = param('id');
    const thumbIdRaw = param('thumbId');
    const found =
      (idRaw !== undefined && n('id') === undefined) || (thumbIdRaw !== undefined && n('thumbId') === undefined)
        ? null
        : await findFile(ctx, { id: n('id'), thumb: param('thumb') === '1', thumbId: n('thumbId') });
    if (!found) {
      reply.code(404).header('Cache-Control', 'no-cache').type('text/plain; charset=UTF-8').send('');
      return;
    }
    const { row, etag } = found;
    if (header(req, 'if-none-match') === etag) {
      reply.code(304).header('Etag', etag).send();
      return;
    }
    let body;
    try {
      body = await ctx.blobs.stream(row.blob_key);
    } catch {
      reply.code(404).type('text/plain; charset=UTF-8').send('');
      return;
    }
    const inline = param('down') === '0' || (param('down') !== '1' && /^(image|video|audio)\//.test(row.mime));
    const disp = contentDisposition(row.org_name, inline);
    reply
      .code(200)
      .type(row.mime)
      .header('Content-Length', String(body.row.size))
      .header('Etag', etag)
      .header('Cache-Control', 'max-age=99999999')
      .header('Content-Disposition', disp)
      .send(body.body);
  }

  function sendPic(reply: FastifyReply, param: (n: string) => string | undefined): void {
    const ids = (k: string) => (param(k) ?? '').split(',').map((s) => s.trim().split(':')[0]).filter((s) => /^\d{1,15}$/.test(s));
    let html = '';
    if (param('thumbId')) for (const id of ids('thumbId')) html += `<img src='./att?thumbId=${id}'><br/>\n`;
    else if (param('smallId')) for (const id of ids('smallId')) html += `<a href='./att?thumbId=${id}' target='_blank'><img src='./att?id=${id}'></a><br/>\n`;
    else if (param('thumb') === '1') for (const id of ids('id')) html += `<a href='./att?id=${id}' target='_blank'><img src='./att?id=${id}&thumb=1'></a><br/>\n`;
    else for (const id of ids('id')) html += `<img src='./att?id=${id}'><br/>\n`;
    reply.code(200).type('text/html; charset=UTF-8').header('Cache-Control', 'no-cache').send(html);
  }

  // --- batch ---------------------------------------------------------------------------------------

  async function runBatch(req: FastifyRequest, call: Call, w: Who): Promise<unknown[]> {
    if (call.method !== 'POST') throw new BqpFail(E.PARAM, MESSAGES[E.PARAM], "batch MUST use `POST' method");
    const list = call.rawBody;
    if (!Array.isArray(list)) throw new BqpFail(E.PARAM, MESSAGES[E.PARAM], 'batch body must be a JSON array');
    if (list.length > 100) throw new BqpFail(E.PARAM, MESSAGES[E.PARAM], 'at most 100 calls per batch');
    const useTrans = str(call.url.useTrans) === '1';
    const results: unknown[][] = [];
    const one = async (item: unknown, exec: import('../../services/objects/crud.js').Exec | null): Promise<unknown[]> => {
      try {
        if (!isObj(item) || typeof item.ac !== 'string' || !item.ac) return [E.PARAM, '参数错误', "bad batch request: require `ac'"];
        const refs = Array.isArray(item.ref) ? item.ref.filter((x): x is string => typeof x === 'string') : [];
        const get = isObj(item.get) ? (substitute(item.get, refs, results) as PObj) : {};
        const post = isObj(item.post) ? (substitute(item.post, refs, results) as PObj) : {};
        const sub: Call = { ac: item.ac, url: get, body: post, rawBody: post, method: 'POST' };
        const r = await dispatch(req, null, sub, w, { exec });
        return [0, r.data ?? null];
      } catch (e) {
        const f = failOf(e, req);
        return [f.code, f.userMessage, f.internal];
      }
    };
    if (!useTrans) {
      for (const item of list) results.push(await one(item, null));
      return results;
    }
    const ROLLBACK = new Error('batch rollback');
    try {
      await ctx.db.tx(async (trx) => {
        const exec = svc.exec(trx as never);
        let failed = false;
        for (const item of list) {
          if (failed) {
            results.push([E.ABORT, '事务失败，取消执行', 'batch call cancelled.']);
            continue;
          }
          const r = await one(item, exec);
          results.push(r);
          if (r[0] !== 0) failed = true;
        }
        if (failed) throw ROLLBACK;
      });
    } catch (e) {
      if (e !== ROLLBACK) throw e;
    }
    return results;
  }

  // --- routes ----------------------------------------------------------------------------------------

  async function handle(req: FastifyRequest, reply: FastifyReply, pathCall: string | null, rest: string[]): Promise<FastifyReply> {
    if (req.method === 'OPTIONS') return reply.code(200).send('');
    const started = Date.now();
    const url = urlParams(req.url);
    (req as { bqpUrl?: PObj }).bqpUrl = url;
    const env = envelopeOf(url);
    let ac = '';
    let logUser: number | null = null;
    let retCode = 0;
    try {
      let body: PObj = {};
      let rawBody: unknown = req.body;
      if (req.isMultipart()) {
        const files: { field: string; name: string; data: Buffer }[] = [];
        const flat: Record<string, string> = {};
        for await (const part of req.parts()) {
          if (part.type === 'file') files.push({ field: part.fieldname, name: part.filename || part.fieldname, data: await part.toBuffer() });
          else flat[part.fieldname] = String(part.value);
        }
        const cs = flat._charset_ ? flat._charset_.toLowerCase() : charsetOf(req);
        for (const [k, v] of Object.entries(flat)) flat[k] = fieldText(v, cs);
        (req as { bqpFiles?: typeof files }).bqpFiles = files;
        body = nestForm(flat);
        rawBody = body;
      } else if (req.method !== 'GET' && isObj(req.body)) {
        if ((req.body as { __badJson?: boolean }).__badJson) throw new BqpFail(E.PARAM, '参数不正确', 'bad json-format body');
        const ct = header(req, 'content-type') ?? '';
        body = /json/i.test(ct) ? (req.body as PObj) : nestForm(req.body as Record<string, unknown>);
      } else if (req.method !== 'GET' && Array.isArray(req.body)) {
        rawBody = req.body;
      } else if (req.method === 'GET') rawBody = null;

      // call name: _ac, then the path, then ac (no path)
      let callUrl = url;
      if (str(url._ac)) ac = str(url._ac)!;
      else if (pathCall !== null) {
        ac = pathCall;
        if (/^[A-Z]\w*$/.test(pathCall)) {
          // RESTful: /Ordr, /Ordr/123, /Ordr/123/cancel, /Ordr/cancel/123
          const [a, b] = rest;
          const idLike = (s: string | undefined) => s !== undefined && /^-?\d+$/.test(s);
          callUrl = { ...url };
          if (rest.length === 0) {
            if (req.method === 'GET') ac = `${pathCall}.query`;
            else if (req.method === 'POST') ac = `${pathCall}.add`;
            else throw new BqpFail(E.PARAM, MESSAGES[E.PARAM], `bad method ${req.method} for ${pathCall}`);
          } else if (rest.length === 1 && idLike(a)) {
            callUrl.id = a;
            const m = { GET: 'get', PATCH: 'set', PUT: 'set', DELETE: 'del' }[req.method];
            if (!m) throw new BqpFail(E.PARAM, MESSAGES[E.PARAM], `bad method ${req.method} for ${pathCall}/${a}`);
            ac = `${pathCall}.${m}`;
          } else if (rest.length === 2 && (idLike(a) || idLike(b)) && (req.method === 'GET' || req.method === 'POST')) {
            callUrl.id = idLike(a) ? a : b;
            ac = `${pathCall}.${idLike(a) ? b : a}`;
          } else throw new BqpFail(E.PARAM, MESSAGES[E.PARAM], 'bad RESTful URL');
          if (req.method === 'PATCH' && Buffer.isBuffer(rawBody)) body = parseQueryString(rawBody.toString('utf8'));
        } else if (rest.length) throw new BqpFail(E.PARAM, '接口不支持', `Bad request - unknown ac: ${pathCall}/${rest.join('/')}`);
      } else if (str(url.ac)) ac = str(url.ac)!;
      else throw new BqpFail(E.PARAM, '缺少参数`ac`', 'require param `ac`');
      if (ac.length > 100) throw new BqpFail(E.PARAM, '接口不支持', 'Bad request - ac too long');

      const call: Call = { ac, url: callUrl, body, rawBody, method: req.method, charset: charsetOf(req) };
      const w = await who(askerOf(req), call);
      logUser = w.session?.uid ?? null;
      const r = await dispatch(req, reply, call, w, null);
      if (r.userId !== undefined) logUser = r.userId;
      if (r.sent) return reply;
      const cookiePath = prefix || '/';
      if (r.setCookie) reply.setCookie(`${w.appType}id`, r.setCookie, { path: cookiePath, httpOnly: true, sameSite: 'lax', maxAge: 30 * 24 * 3600 });
      if (r.clearCookie) reply.clearCookie(`${w.appType}id`, { path: cookiePath });
      return sendEnvelope(reply, env, 0, r.data);
    } catch (e) {
      const f = failOf(e, req);
      req.errorCode = errorCodeOf(e, f);
      retCode = f.code;
      return sendEnvelope(reply, env, f.code, f.userMessage, f.internal);
    } finally {
      if (ac !== 'att' && ac !== 'pic') {
        logCall({ ip: clientIp(req), headers: req.headers, url: req.url, params: url, body: req.body }, ac, started, logUser, (reply as { bqpRet?: number }).bqpRet ?? retCode, (reply as { bqpText?: string }).bqpText ?? '');
      }
    }
  }

  /** One call into the ApiLog object (the protocol logs every call; att and pic are not calls). */
  function logCall(x: { ip: string; headers: IncomingHttpHeaders; url: string; params: PObj; body: unknown }, ac: string, started: number, userId: number | null, retval: number, text: string): void {
    const h = (n: string) => {
      const v = x.headers[n];
      return Array.isArray(v) ? v[0] : v;
    };
    svc.logCall({
      tm: ctx.clock.now(),
      addr: x.ip,
      ua: h('user-agent'),
      app: str(x.params._app) ?? 'user',
      ac: ac || '(none)',
      userId,
      t: Date.now() - started,
      retval,
      req: redact(x.params, x.body),
      // session tokens (login, reg, chpwd) and debug codes are not kept in the call log
      res: ac === 'login' || ac === 'reg' || ac === 'chpwd' || ac === 'genCode' ? text.replace(/"(_token|code)":"[^"]*"/g, '"$1":"***"') : text,
      reqsz: Number(h('content-length') ?? 0) + x.url.length,
      ressz: Buffer.byteLength(text),
      ver: str(x.params._ver),
    });
  }

  // --- the lane: plain reads answered before Fastify ---------------------------------------------

  const callRoute = `${prefix}/:call`;
  const lanePrefix = `${prefix}/`;
  const rec = recorder(ctx);
  /**
   * `GET {prefix}/Obj.query|get?…` with nothing but a session cookie (or no credentials: a guest),
   * no body and no Origin: answered on node:http with the same bytes, call log and request log as the
   * route below (test/bqp/lane.test.ts compares the two). Anything else is left to Fastify.
   */
  const answer = async (req: IncomingMessage, res: ServerResponse, url: string, ac: string, params: PObj, ip: string, id: () => string): Promise<string> => {
    const started = Date.now();
    const t0 = performance.now();
    // parsed on first use, inside the try below: whatever fails is answered as the route would
    let cookies: Record<string, string | undefined> | null | undefined;
    const cookie = (n: string) => (cookies === undefined ? (cookies = req.headers.cookie === undefined ? null : app.parseCookie(req.headers.cookie)) : cookies)?.[n];
    const asker: Asker = { cookie, authorization: undefined, info: () => ({ ip }) };
    const where = { get log() { return app.log.child({ reqId: id() }); }, get id() { return id(); } };
    let code = 0;
    let text: string;
    let logUser: number | null = null;
    let errorCode: string | null = null;
    try {
      const call: Call = { ac, url: params, body: {}, rawBody: null, method: 'GET', charset: null };
      const w = await who(asker, call);
      logUser = w.session?.uid ?? null;
      const r = await dispatch(null, null, call, w, null);
      text = envelopeText(envelopeOf(params), 0, r.data);
    } catch (e) {
      const f = failOf(e, where);
      errorCode = errorCodeOf(e, f);
      code = f.code;
      text = envelopeText(envelopeOf(params), f.code, f.userMessage, f.internal);
    }
    res.writeHead(200, { 'content-type': str(params.retfn) === 'xml' ? 'application/xml; charset=UTF-8' : 'text/plain; charset=UTF-8', 'cache-control': 'no-cache', 'content-length': Buffer.byteLength(text) });
    res.end(text);
    lane.answered++;
    logCall({ ip, headers: req.headers, url, params, body: undefined }, ac, started, logUser, code, text);
    rec.push(apiEvent(ctx.clock.now(), { service: 'bqp', method: 'GET', route: callRoute, status: 200, elapsedMs: performance.now() - t0, ip, code: errorCode, app: undefined, principal: undefined }));
    return callRoute;
  };
  lane.handler = (req, res, ip, id) => {
    const url = req.url!;
    if (req.method !== 'GET' || !url.startsWith(lanePrefix)) return null;
    const h = req.headers;
    if (h.origin !== undefined || h.authorization !== undefined || h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0')) return null;
    const q = url.indexOf('?');
    const ac = q < 0 ? url.slice(lanePrefix.length) : url.slice(lanePrefix.length, q);
    if (!/^[A-Z]\w*\.(?:query|get)$/.test(ac)) return null;
    const params = urlParams(url);
    // another call named in the parameters, a signature, or a format written as a file: the route
    if (params._ac !== undefined || params._sign !== undefined || EXPORT_FMTS.has(queryFmt((n) => str(params[n])))) return null;
    return answer(req, res, url, ac, params, ip(), id);
  };

  const methods = ['GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'OPTIONS'] as const;
  app.route({ method: [...methods], url: '/', handler: (req, reply) => handle(req, reply, null, []) });
  app.route({ method: [...methods], url: '/:call', handler: (req, reply) => handle(req, reply, (req.params as { call: string }).call, []) });
  app.route({ method: [...methods], url: '/:call/:a', handler: (req, reply) => handle(req, reply, (req.params as { call: string }).call, [(req.params as { a: string }).a]) });
  app.route({ method: [...methods], url: '/:call/:a/:b', handler: (req, reply) => handle(req, reply, (req.params as { call: string }).call, [(req.params as { a: string }).a, (req.params as { b: string }).b]) });
}

// --- charsets -----------------------------------------------------------------------------------

function charsetOf(req: FastifyRequest): string | null {
  const m = /;\s*charset\s*=\s*"?([\w.:-]+)"?/i.exec(header(req, 'content-type') ?? '');
  return m ? m[1].toLowerCase() : null;
}
const isUtf8 = (cs: string | null | undefined): boolean => !cs || cs === 'utf-8' || cs === 'utf8';

/** Text in the given charset; without one, UTF-8 when the bytes are valid UTF-8, else GB18030 (a superset of GBK). */
function decodeText(b: Buffer, cs: string | null | undefined): string {
  if (cs && !isUtf8(cs)) {
    if (!iconv.encodingExists(cs)) throw new BqpFail(E.PARAM, MESSAGES[E.PARAM], `unsupported charset ${cs}`);
    return iconv.decode(b, cs);
  }
  if (cs) return b.toString('utf8');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return iconv.decode(b, 'gb18030');
  }
}

/**
 * A multipart text field, received as latin1 (its bytes): decoded in the given charset, else as
 * UTF-8 when valid, else GB18030. A value with characters above U+00FF was decoded by an explicit
 * per-part charset already and is kept.
 */
function fieldText(v: string, cs: string | null): string {
  if (/[^\x00-\xff]/.test(v) || !/[\x80-\xff]/.test(v)) return v;
  return decodeText(Buffer.from(v, 'latin1'), cs);
}

/** An urlencoded body whose %XX bytes (and raw bytes) are text in `cs`: like fast-querystring, repeated keys make arrays. */
function parseFormIn(body: Buffer, cs: string): Record<string, string | string[]> {
  const text = body.toString('latin1');
  const dec = (s: string): string => {
    const bytes: number[] = [];
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      if (c === '%' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
        bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
        i += 2;
      } else bytes.push(c === '+' ? 0x20 : c.charCodeAt(0) & 0xff);
    }
    return iconv.decode(Buffer.from(bytes), cs);
  };
  const out: Record<string, string | string[]> = Object.create(null);
  for (const part of text.split('&')) {
    if (!part) continue;
    const i = part.indexOf('=');
    const k = dec(i < 0 ? part : part.slice(0, i));
    const v = i < 0 ? '' : dec(part.slice(i + 1));
    const old = out[k];
    out[k] = old === undefined ? v : Array.isArray(old) ? [...old, v] : [old, v];
  }
  return out;
}

const SECRET_KEY = /pwd|passw|secret|token|_sign|^code$/i;

function redact(url: PObj, body: unknown): string {
  const clean = (o: unknown): unknown => (isObj(o) ? Object.fromEntries(Object.entries(o).map(([k, v]) => [k, SECRET_KEY.test(k) ? '***' : v])) : Buffer.isBuffer(o) ? `(${o.length} bytes)` : o);
  try {
    return JSON.stringify({ get: clean(url), post: clean(body) ?? null }).slice(0, 2000);
  } catch {
    return '';
  }
}

// --- batch references: {$1.id}, {$-1}, {$-2 - $-1} ---------------------------------------------

function substitute(o: Record<string, unknown>, refs: string[], results: unknown[][]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = refs.includes(k) && typeof v === 'string' ? subst(v, results) : v;
  return out;
}

function subst(s: string, results: unknown[][]): unknown {
  const whole = /^\{([^{}]*)\}$/.exec(s);
  if (whole) return evalRef(whole[1], results);
  return s.replace(/\{([^{}]*)\}/g, (_, e) => {
    const v = evalRef(e, results);
    return v === null || v === undefined ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  });
}

/** A tiny safe evaluator: refs `$n`/`$-n` with `.prop` / `[i]`, numbers, + - * /. */
function evalRef(expr: string, results: unknown[][]): unknown {
  const toks = expr.match(/\$-?\d+|\.[A-Za-z_]\w*|\[\d+\]|\d+(?:\.\d+)?|[-+*/]|\S/g) ?? [];
  let i = 0;
  const term = (): unknown => {
    const t = toks[i++];
    if (t === undefined) return undefined;
    if (/^\d/.test(t)) return Number(t);
    if (!t.startsWith('$')) return undefined;
    const n = Number(t.slice(1));
    const idx = n < 0 ? results.length + n : n - 1;
    const r = results[idx];
    let v: unknown = r && r[0] === 0 ? r[1] : undefined;
    while (i < toks.length && (toks[i].startsWith('.') || toks[i].startsWith('['))) {
      const p = toks[i++];
      const key = p.startsWith('.') ? p.slice(1) : p.slice(1, -1);
      v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined;
    }
    return v;
  };
  let v = term();
  while (i < toks.length) {
    const op = toks[i++];
    const b = term();
    if (typeof v !== 'number' && !(typeof v === 'string' && v !== '' && !isNaN(Number(v)))) return null;
    if (typeof b !== 'number' && !(typeof b === 'string' && b !== '' && !isNaN(Number(b)))) return null;
    const x = Number(v);
    const y = Number(b);
    v = op === '+' ? x + y : op === '-' ? x - y : op === '*' ? x * y : op === '/' ? (y === 0 ? null : x / y) : null;
    if (v === null) return null;
  }
  return v === undefined ? null : v;
}
