/**
 * Scan events as rows of `link_scans`: what the request path buffers (ScanEvent) and how a batch
 * becomes multi-row inserts (stored through the database's batch writer). No I/O here.
 */
import { createHash } from 'node:crypto';
import { classifyUa, ipPrefix, referrerHost } from './classify.js';

/** One scan as the request path records it: nothing derived yet (that is the writer's work). */
export interface ScanEvent {
  linkId: number;
  tenantId: number;
  at: number;
  ua: string | undefined;
  referrer: string | undefined;
  ip: string;
}

export const SCAN_COLS = ['link_id', 'tenant_id', 'at', 'device', 'os', 'referrer_host', 'ip_prefix', 'visitor', 'bot'] as const;
export const SCAN_INSERT = `insert into link_scans (${SCAN_COLS.join(',')})`;

/** User-Agent strings repeat a lot; classify each once. */
const uaCache = new Map<string, ReturnType<typeof classifyUa>>();
function classifyCached(ua: string | undefined): ReturnType<typeof classifyUa> {
  const k = ua ?? '';
  let c = uaCache.get(k);
  if (!c) {
    c = classifyUa(k);
    if (uaCache.size >= 5000) uaCache.clear();
    uaCache.set(k, c);
  }
  return c;
}

/**
 * Visitors are a salted hash of address and UTC day (unique visitors per day without storing
 * addresses); scans repeat addresses (carrier NAT, one visitor scanning twice), so an address's
 * prefix and hash are kept for the day.
 */
const DAY_MS = 86_400_000;
const visitors = new Map<string, { dayNo: number; prefix: string; visitor: string }>();
function visitorOf(ip: string, at: number, salt: string): { prefix: string; visitor: string } {
  const dayNo = Math.floor(at / DAY_MS);
  let v = visitors.get(ip);
  if (!v || v.dayNo !== dayNo) {
    const day = new Date(dayNo * DAY_MS).toISOString().slice(0, 10);
    v = { dayNo, prefix: ipPrefix(ip), visitor: createHash('sha256').update(`${ip}|${day}|${salt}`).digest('hex') };
    if (visitors.size >= 10_000) visitors.clear();
    visitors.set(ip, v);
  }
  return v;
}

/** The insert parameters of a batch, SCAN_COLS.length values per event, in order. */
export function scanParams(batch: readonly ScanEvent[], salt: string): unknown[] {
  const params: unknown[] = [];
  for (const e of batch) {
    const c = classifyCached(e.ua);
    const v = visitorOf(e.ip, e.at, salt);
    params.push(e.linkId, e.tenantId, e.at, c.device, c.os, referrerHost(e.referrer), v.prefix, v.visitor, c.bot ? 1 : 0);
  }
  return params;
}
