/** A small BQP test client: fetch with a cookie jar, form / JSON bodies, parsed answers. */
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { ManualClock } from '../../src/core/context.js';
import { seedDemo } from '../../src/demo.js';
import { startServer, type TestOptions, type TestServer } from '../helpers.js';

export class Client {
  cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  async req(path: string, init: RequestInit & { form?: Record<string, string> | string; json?: unknown } = {}) {
    const headers = new Headers(init.headers);
    let body = init.body;
    let method = init.method;
    if (init.form !== undefined) {
      headers.set('content-type', 'application/x-www-form-urlencoded');
      body = typeof init.form === 'string' ? init.form : new URLSearchParams(init.form).toString();
      method ??= 'POST';
    } else if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = typeof init.json === 'string' ? init.json : JSON.stringify(init.json);
      method ??= 'POST';
    }
    if (this.cookies.size) headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(this.base + path, { ...init, method, headers, body });
    for (const c of res.headers.getSetCookie()) {
      const [kv, ...attrs] = c.split(';');
      const i = kv.indexOf('=');
      const k = kv.slice(0, i).trim();
      const v = kv.slice(i + 1).trim();
      if (!v || attrs.some((a) => /max-age=0|expires=thu, 01 jan 1970/i.test(a.trim()))) this.cookies.delete(k);
      else this.cookies.set(k, v);
    }
    const buf = Buffer.from(await res.arrayBuffer());
    const text = buf.toString('utf8');
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json, buf };
  }

  /** The parsed `[code, data…]` answer of a call. */
  async call(path: string, init: Parameters<Client['req']>[1] = {}): Promise<any[]> {
    const r = await this.req(path, init);
    if (!Array.isArray(r.json)) throw new Error(`not a BQP answer (${r.status}): ${r.text.slice(0, 200)}`);
    return r.json;
  }
}

/** The server clock of these tests: one hour after the seed's sample _sign timestamp. */
export const SIGN_TS = 1576600003;
export const T0 = SIGN_TS * 1000 + 3600_000;

export async function startBqp(opts: Omit<TestOptions, 'clock'> = {}): Promise<{ s: TestServer; B: string; clock: ManualClock }> {
  const clock = new ManualClock(T0);
  const s = await startServer({ ...opts, clock });
  await seedDemo(s.ctx);
  return { s, B: `${s.url}${s.config.bqpPrefix}`, clock };
}

/** The example schema plus a tree object (Cate) and a per-user object with batch rights (Note). */
export function testSchemaFile(extra: (s: any) => void = () => {}): string {
  const s = parseYaml(readFileSync(join(import.meta.dirname, '../../examples/bqp-schema.yaml'), 'utf8'));
  s.objects.Cate = { fields: ['id', 'name', 'fatherId'], acl: { guest: { ops: ['query', 'add', 'set'] } } };
  s.objects.Note = {
    fields: ['id', 'userId', 'title', 'tm'],
    acl: { user: { ops: '*', filter: { userId: 'uid' }, readonly: ['userId'], defaults: { userId: '$uid', tm: '$now' } } },
  };
  s.login = { reg: true, codeDebug: true, smsWebhook: null };
  extra(s);
  const file = join(tmpdir(), `bqp-schema-${process.pid}-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, stringify(s));
  return file;
}

