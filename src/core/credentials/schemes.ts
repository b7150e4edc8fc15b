/**
 * The signature schemes of every dialect, as pure functions of their inputs.
 * Verification against stored apps (lookup, expiry, blocking, IP) lives in verify.ts.
 */
import { createHash } from 'node:crypto';
import { hmacSha256hex, md5hex, safeEqual, sha256hex } from '../crypto.js';

// ---------------------------------------------------------------------------------------------
// Fangtang (seed 001): token = md5(secret + time) + "," + time, time in seconds, valid ±300 s.

export const FANGTANG_WINDOW_S = 300;

export function fangtangToken(secret: string, time: string | number): string {
  return `${md5hex(secret + String(time))},${time}`;
}

export type TokenCheck = { ok: true } | { ok: false; reason: 'malformed' | 'stale' | 'mismatch' };

export function checkFangtangToken(token: string, secret: string, nowMs: number): TokenCheck {
  const m = /^([0-9a-fA-F]{32}),(\d{1,12})$/.exec(token.trim());
  if (!m) return { ok: false, reason: 'malformed' };
  const t = Number(m[2]);
  if (Math.abs(nowMs / 1000 - t) > FANGTANG_WINDOW_S) return { ok: false, reason: 'stale' };
  return safeEqual(m[1].toLowerCase(), md5hex(secret + m[2])) ? { ok: true } : { ok: false, reason: 'mismatch' };
}

// ---------------------------------------------------------------------------------------------
// cli.im (seed 002): sign = md5(k1=v1&k2=v2…(sorted by key, sign excluded) + secret).
// Values that are not strings are written as compact JSON (fastjson's toJSONString), strings as is.

export function cliSignString(params: Record<string, unknown>): string {
  return Object.keys(params)
    .filter((k) => k !== 'sign' && params[k] !== undefined)
    .sort()
    .map((k) => {
      const v = params[k];
      return `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
    })
    .join('&');
}

export const cliSign = (params: Record<string, unknown>, secret: string): string => md5hex(cliSignString(params) + secret);

export function checkCliSign(params: Record<string, unknown>, sign: string, secret: string): boolean {
  return safeEqual(String(sign).toLowerCase(), cliSign(params, secret));
}

// ---------------------------------------------------------------------------------------------
// BQP (seed 004): HTTP Basic, or _sign = md5(timestamp + secret), timestamp in s or ms, ±2 h.

export const BQP_WINDOW_S = 2 * 3600;

export const bqpSign = (timestamp: string | number, secret: string): string => md5hex(String(timestamp) + secret);

export function checkBqpSign(timestamp: string, sign: string, secret: string, nowMs: number): TokenCheck {
  if (!/^\d{1,16}$/.test(timestamp) || !/^[0-9a-fA-F]{32}$/.test(sign)) return { ok: false, reason: 'malformed' };
  const n = Number(timestamp);
  const ms = n > 1e10 ? n : n * 1000;
  if (!safeEqual(sign.toLowerCase(), bqpSign(timestamp, secret))) return { ok: false, reason: 'mismatch' };
  if (Math.abs(nowMs - ms) > BQP_WINDOW_S * 1000) return { ok: false, reason: 'stale' };
  return { ok: true };
}

export function parseBasic(header: string | undefined): { user: string; password: string } | null {
  if (!header) return null;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return null;
  return { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

export const basicHeader = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

// ---------------------------------------------------------------------------------------------
// Native: Authorization: Bearer <key>.<secret>, or HMAC-SHA256 request signing:
//   X-Menhu-Key, X-Menhu-Timestamp (unix seconds), X-Menhu-Nonce (16-64 chars),
//   X-Menhu-Signature = hex(HMAC-SHA256(secret, canonical))
//   canonical = METHOD \n PATH \n CANONICAL_QUERY \n TIMESTAMP \n NONCE \n hex(SHA256(body))
// CANONICAL_QUERY: parameters percent-encoded (RFC 3986), sorted by name then value, joined by &.

export const EMPTY_BODY_SHA256 = sha256hex('');

const rfc3986 = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());

export function canonicalQuery(search: string): string {
  if (search === '' || search === '?') return '';
  const params = new URLSearchParams(search.startsWith('?') ? search.slice(1) : search);
  const pairs: [string, string][] = [];
  params.forEach((v, k) => pairs.push([rfc3986(k), rfc3986(v)]));
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

export interface SignedRequest {
  method: string;
  path: string;
  query: string;
  timestamp: string;
  nonce: string;
  body: Buffer | string;
}

export function hmacCanonical(r: SignedRequest): string {
  const bodyHash = r.body.length === 0 ? EMPTY_BODY_SHA256 : createHash('sha256').update(r.body).digest('hex');
  return [r.method.toUpperCase(), r.path, canonicalQuery(r.query), r.timestamp, r.nonce, bodyHash].join('\n');
}

export const hmacSign = (r: SignedRequest, secret: string): string => hmacSha256hex(secret, hmacCanonical(r));


