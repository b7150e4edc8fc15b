/**
 * BQP wire details that are not routing: the one table from symbolic errors to BQP codes, request
 * parameter parsing (PHP bracket notation), the envelope variants and the query output formats.
 */
import { PassThrough } from 'node:stream';
import ExcelJS from 'exceljs';
import type { FastifyReply } from 'fastify';
import iconv from 'iconv-lite';
import type { ErrorCode } from '../../core/errors.js';
import type { QueryResult } from '../../services/objects/index.js';
import { rowsToObjects, withBitColumns } from '../../services/objects/post.js';

export const E = { ABORT: -100, AUTHFAIL: -1, OK: 0, PARAM: 1, NOAUTH: 2, DB: 3, SERVER: 4, FORBIDDEN: 5 } as const;

export const MESSAGES: Record<number, string> = {
  [-100]: '中止执行',
  [-1]: '认证失败',
  1: '参数不正确',
  2: '未登录',
  3: '数据库错误',
  4: '服务器错误',
  5: '禁止操作',
};

/** The only place that knows BQP's error numbers. */
export const WIRE: Record<ErrorCode, number> = {
  KEY_MISSING: E.PARAM,
  SECRET_MISSING: E.PARAM,
  KEY_UNKNOWN: E.AUTHFAIL,
  SECRET_INVALID: E.AUTHFAIL,
  SIGN_INVALID: E.AUTHFAIL,
  TIMESTAMP_STALE: E.FORBIDDEN,
  NONCE_REPLAYED: E.FORBIDDEN,
  APP_BLOCKED: E.FORBIDDEN,
  APP_EXPIRED: E.FORBIDDEN,
  IP_FORBIDDEN: E.FORBIDDEN,
  SERVICE_DISABLED: E.FORBIDDEN,
  RATE_LIMITED: E.FORBIDDEN,
  QUOTA_EXHAUSTED: E.FORBIDDEN,
  NOT_LOGGED_IN: E.NOAUTH,
  FORBIDDEN: E.FORBIDDEN,
  USER_BLOCKED: E.FORBIDDEN,
  USER_EXISTS: E.PARAM,
  EMAIL_EXISTS: E.PARAM,
  USER_UNKNOWN: E.AUTHFAIL,
  PASSWORD_INVALID: E.AUTHFAIL,
  LOCKED: E.FORBIDDEN,
  BAD_REQUEST: E.PARAM,
  VALIDATION: E.PARAM,
  NOT_FOUND: E.PARAM,
  CONFLICT: E.PARAM,
  HAS_DEPENDENTS: E.DB,
  PAYLOAD_TOO_LARGE: E.PARAM,
  UNSUPPORTED_MEDIA: E.PARAM,
  GONE: E.PARAM,
  UNAVAILABLE: E.SERVER,
  INSUFFICIENT_FUNDS: E.FORBIDDEN,
  UNKNOWN_FIELD: E.DB,
  DB_ERROR: E.DB,
  ABORTED: E.ABORT,
  MISSING_FIELD: E.PARAM,
  CONTENT_UNKNOWN: E.PARAM,
  NOT_PURCHASED: E.FORBIDDEN,
  PAYMENT_REFUSED: E.FORBIDDEN,
  PROCESSING_FAILED: E.PARAM,
  REPORT_EXISTS: E.PARAM,
  REPORT_RECALLED: E.PARAM,
  METADATA_MISMATCH: E.PARAM,
  INTERNAL: E.SERVER,
};

// ---------------------------------------------------------------------------------------------
// parameters

export type PVal = string | PVal[] | { [k: string]: PVal };
export type PObj = Record<string, PVal>;

const MAX_PARAMS = 1000;

/** Sets `a[b][]=v` style keys the way PHP does. */
function setNested(root: PObj, key: string, value: string): void {
  const m = /^([^[\]]+)((?:\[[^[\]]*\])+)$/.exec(key);
  if (!m) {
    root[key] = value;
    return;
  }
  const path = [...m[2].matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1]);
  if (path.length > 5) {
    root[key] = value;
    return;
  }
  let cur: any = root;
  let k: string = m[1];
  for (const seg of path) {
    let next = cur[k];
    if (next === undefined || typeof next === 'string') next = seg === '' ? [] : {};
    if (Array.isArray(next) && seg !== '' && !/^\d+$/.test(seg)) next = Object.fromEntries(next.map((v: PVal, i: number) => [String(i), v]));
    cur[k] = next;
    cur = next;
    k = seg === '' ? String(Array.isArray(next) ? next.length : Object.keys(next).length) : seg;
  }
  if (Array.isArray(cur) && /^\d+$/.test(k)) cur[Number(k)] = value;
  else cur[k] = value;
}

export function parseQueryString(qs: string): PObj {
  const out: PObj = {};
  let n = 0;
  for (const [k, v] of new URLSearchParams(qs)) {
    if (++n > MAX_PARAMS) break;
    setNested(out, k, v);
  }
  return out;
}

/** A body already parsed by Fastify's form parser (flat keys) → nested like PHP. */
export function nestForm(flat: Record<string, unknown>): PObj {
  const out: PObj = {};
  let n = 0;
  for (const [k, v] of Object.entries(flat)) {
    if (++n > MAX_PARAMS) break;
    for (const x of Array.isArray(v) ? v : [v]) setNested(out, k, String(x));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// envelope

export interface Envelope {
  raw: string | undefined;
  retfn: string | undefined;
  jsonp: string | undefined;
}

const xmlEsc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '');
const XML_NAME = /^(?!xml)[\p{L}_][\p{L}\p{N}_.-]*$/iu;

/**
 * A JSON value as XML content: objects are elements named by their keys (a key that is not an XML
 * name becomes `<item key="…">`), arrays repeat `<item>`, null is an empty element.
 */
export function toXml(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map((x) => `<item>${toXml(x)}</item>`).join('');
  if (typeof v === 'object') {
    return Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => (XML_NAME.test(k) ? `<${k}>${toXml(x)}</${k}>` : `<item key="${xmlEsc(k)}">${toXml(x)}</item>`))
      .join('');
  }
  return xmlEsc(String(v));
}

export function envelopeText(env: Envelope, code: number, data: unknown, internal: unknown = null): string {
  let body: string;
  const raw = env.raw ?? (env.retfn === 'raw' ? '1' : undefined);
  if (env.retfn === 'xml') {
    // retfn=xml: <ret><code>0</code><data>…</data></ret>; failures like retfn=obj: code, message, debug
    body = code === 0 ? `<ret><code>0</code><data>${toXml(data)}</data></ret>` : `<ret><code>${code}</code><message>${toXml(data)}</message><debug>${toXml(internal)}</debug></ret>`;
    return body + '\n';
  }
  if (env.retfn === 'obj') {
    body = JSON.stringify(code === 0 ? { code, data } : { code, message: data, debug: internal });
  } else if (raw === '1' && code === 0) {
    body = JSON.stringify(data ?? null);
  } else if (raw === '2' && code === 0) {
    body = data !== null && typeof data === 'object' ? Object.values(data).map((v) => (v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v ?? ''))).join('\t') : String(data ?? '');
  } else {
    body = JSON.stringify(code === 0 ? [0, data ?? null] : [code, data, internal]);
  }
  if (env.jsonp && /^[A-Za-z_$][\w$.]{0,63}=?$/.test(env.jsonp)) body = env.jsonp.endsWith('=') ? `${env.jsonp}${body};` : `${env.jsonp}(${body});`;
  return body + '\n';
}

// ---------------------------------------------------------------------------------------------
// query formats


/** The query formats written as files (sendExport) rather than in the envelope. */
export const EXPORT_FMTS: ReadonlySet<string> = new Set(['csv', 'txt', 'html', 'excel', 'excelcsv']);

/** Shapes a query result for the JSON formats; returns undefined for the export formats. */
export function shapeQuery(r: QueryResult, fmt: string): { ok: true; data: unknown } | { ok: false; internal: string; message: string } | undefined {
  const paging = () => ({ ...(r.nextkey !== undefined ? { nextkey: r.nextkey } : {}), ...(r.total !== undefined ? { total: r.total } : {}), ...(r.stat !== undefined ? { stat: r.stat } : {}) });
  if (fmt === '') {
    const t = withBitColumns(r);
    return { ok: true, data: { h: t.rows.length ? t.cols : [], d: t.rows, ...paging() } };
  }
  if (fmt === 'list') return { ok: true, data: { list: rowsToObjects(r), ...paging() } };
  if (fmt === 'array') return { ok: true, data: rowsToObjects(r) };
  if (fmt === 'one') {
    if (!r.rows.length) return { ok: false, message: '查询不到数据', internal: 'no data' };
    return { ok: true, data: rowsToObjects(r)[0] };
  }
  if (fmt === 'one?') {
    if (!r.rows.length) return { ok: true, data: false };
    if (r.cols.length === 1) return { ok: true, data: r.rows[0][0] };
    return { ok: true, data: rowsToObjects(r)[0] };
  }
  const hm = /^(multihash|hash)(?::([^,]+)(?:,(.+))?)?$/.exec(fmt);
  if (hm) {
    const objs = rowsToObjects(r);
    const key = hm[2] ?? r.cols[0];
    const val = hm[3];
    const out: Record<string, unknown> = {};
    for (const o of objs) {
      const k = String(o[key] ?? '');
      const v = val ? o[val] : o;
      if (hm[1] === 'hash') out[k] = v;
      else ((out[k] ??= []) as unknown[]).push(v);
    }
    return { ok: true, data: out };
  }
  if (EXPORT_FMTS.has(fmt)) return undefined;
  return { ok: false, message: '参数不正确', internal: `unknown fmt ${fmt}` };
}

const cellText = (v: unknown): string => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
const csvCell = (s: string): string => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
const htmlEsc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function disposition(fname: string, ext: string, attachment = true): string {
  const name = `${fname}.${ext}`;
  const ascii = /^[\x20-\x7e]+$/.test(name) && !/["\\;]/.test(name);
  const base = attachment ? 'attachment;' : '';
  return ascii ? `${base}filename=${name}` : `${base}filename="${name.replace(/[^\x20-\x7e]|["\\;]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/** Writes an export format (csv, txt, html, excel, excelcsv) to the reply. */
export async function sendExport(reply: FastifyReply, result: QueryResult, fmt: string, fname: string): Promise<FastifyReply> {
  const r = withBitColumns(result);
  reply.code(200).header('Cache-Control', 'no-cache');
  if (fmt === 'txt') {
    const body = [r.cols, ...r.rows].map((row) => row.map((v) => cellText(v).replace(/[\t\r\n]/g, ' ')).join('\t')).join('\n') + '\n';
    return reply.type('text/plain; charset=UTF-8').header('Content-Disposition', disposition(fname, 'txt')).send(body);
  }
  if (fmt === 'csv' || fmt === 'excelcsv') {
    const long = fmt === 'excelcsv';
    const lines = [r.cols, ...r.rows].map((row) =>
      row
        .map((v) => {
          const s = cellText(v);
          return long && /^\d{11,}$/.test(s) ? `="${s}"` : csvCell(s);
        })
        .join(','),
    );
    const text = lines.join('\n') + '\n';
    if (long) return reply.type('application/csv; charset=gb18030').header('Content-Disposition', disposition(fname, 'csv')).send(iconv.encode(text, 'gb18030'));
    return reply.type('application/csv; charset=UTF-8').header('Content-Disposition', disposition(fname, 'csv')).send(text);
  }
  if (fmt === 'html') {
    let s = '<table border=1 cellspacing=0><tr>' + r.cols.map((c) => `<th>${htmlEsc(c)}</th>`).join('') + '</tr>\n';
    for (const row of r.rows) s += '<tr>' + row.map((v) => `<td>${htmlEsc(cellText(v))}</td>`).join('') + '</tr>\n';
    s += '</table>\n';
    return reply.type('text/html; charset=UTF-8').header('Content-Disposition', disposition(fname, 'html', false)).send(s);
  }
  // excel: a real xlsx, streamed
  const out = new PassThrough();
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ stream: out, useStyles: false, useSharedStrings: false });
  const ws = wb.addWorksheet(fname.slice(0, 31).replace(/[\\/*?:[\]]/g, '_') || 'Sheet1');
  ws.addRow(r.cols).commit();
  for (const row of r.rows) {
    ws.addRow(
      row.map((v) => {
        if (v === null || v === undefined) return null;
        if (typeof v === 'number') return String(Math.trunc(Math.abs(v))).length >= 11 ? String(v) : v;
        return cellText(v);
      }),
    ).commit();
  }
  ws.commit();
  void wb.commit();
  return reply
    .type('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet')
    .header('Content-Disposition', disposition(fname, 'xlsx'))
    .send(out);
}
