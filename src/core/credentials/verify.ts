/**
 * Credential verification for every dialect: find the app by key for the service, prove the
 * secret with the dialect's scheme, then apply what every app carries (blocked, expiry, IP
 * allow-list, rate limit). Each function returns the app or throws a DomainError whose code the
 * dialect maps to its wire format.
 */
import type { Ctx } from '../context.js';
import { safeEqual } from '../crypto.js';
import { DomainError } from '../errors.js';
import { findApp, ipAllowed, validSecrets, type App, type Service } from './apps.js';
import { checkBqpSign, checkCliSign, checkFangtangToken, hmacSign, parseBasic, type SignedRequest } from './schemes.js';

export interface CallInfo {
  ip: string;
  /** Set by admit() once the caller has proved it is this app (the request log reads it). */
  app?: App;
}

/** Checks that apply to every app whatever the scheme. */
export async function admit(ctx: Ctx, app: App, call: CallInfo): Promise<App> {
  call.app = app;
  const now = ctx.clock.now();
  if (app.blocked) throw new DomainError('APP_BLOCKED', 'this app is blocked');
  if (app.expiresAt !== null && app.expiresAt <= now) throw new DomainError('APP_EXPIRED', 'this app has expired');
  if (!ipAllowed(app, call.ip)) throw new DomainError('IP_FORBIDDEN', `address ${call.ip} is not on this app's allow-list`);
  const limit = app.rateLimit ?? ctx.config.defaultRateLimit;
  if (limit > 0) {
    const r = await ctx.limits.hit(`app:${app.id}`, limit, 1000);
    if (!r.allowed) throw new DomainError('RATE_LIMITED', `more than ${limit} requests per second for this app`, { details: { retryAfterMs: r.resetMs } });
  }
  return app;
}

async function lookup(ctx: Ctx, key: string | undefined, service: Service): Promise<App> {
  if (!key) throw new DomainError('KEY_MISSING', 'no key given');
  const app = await findApp(ctx, key, service);
  if (!app) throw new DomainError('KEY_UNKNOWN', 'unknown key');
  return app;
}

const anySecret = (app: App, now: number, ok: (secret: string) => boolean): boolean => {
  let good = false;
  for (const s of validSecrets(app, now)) good = ok(s) || good; // evaluate all: no early exit on timing
  return good;
};

/** MiningLamp: form fields `user` and `passcode`; the passcode is the secret. */
export async function verifyPasscode(ctx: Ctx, user: string | undefined, passcode: string | undefined, call: CallInfo): Promise<App> {
  if (!user) throw new DomainError('KEY_MISSING', 'no user given');
  if (!passcode) throw new DomainError('SECRET_MISSING', 'no passcode given');
  const app = await lookup(ctx, user, 'mininglamp');
  if (!anySecret(app, ctx.clock.now(), (s) => safeEqual(passcode, s))) throw new DomainError('SECRET_INVALID', 'wrong passcode');
  return admit(ctx, app, call);
}

/** Fangtang: `third_code` names the app, header `token` = md5(secret+time),time within ±300 s. */
export async function verifyFangtang(ctx: Ctx, thirdCode: string | undefined, token: string | undefined, call: CallInfo): Promise<App> {
  if (!token) throw new DomainError('SIGN_INVALID', 'no token header');
  if (!thirdCode) throw new DomainError('KEY_MISSING', 'no third_code given');
  const app = await lookup(ctx, thirdCode, 'fangtang');
  const now = ctx.clock.now();
  const results = validSecrets(app, now).map((s) => checkFangtangToken(token, s, now));
  if (!results.some((r) => r.ok)) {
    const stale = results.some((r) => !r.ok && r.reason === 'stale');
    throw new DomainError(stale ? 'TIMESTAMP_STALE' : 'SIGN_INVALID', stale ? 'token time is more than 300 s away' : 'token does not verify');
  }
  return admit(ctx, app, call);
}

/** cli.im: `api_key` and `sign` in the JSON body; sign over the sorted parameters. */
export async function verifyCliSign(ctx: Ctx, params: Record<string, unknown>, call: CallInfo): Promise<App> {
  const key = typeof params.api_key === 'string' ? params.api_key : undefined;
  const sign = typeof params.sign === 'string' ? params.sign : undefined;
  if (!key) throw new DomainError('KEY_MISSING', 'api_key is required', { field: 'api_key' });
  if (!sign) throw new DomainError('SIGN_INVALID', 'sign is required', { field: 'sign' });
  const app = await lookup(ctx, key, 'cli');
  if (!anySecret(app, ctx.clock.now(), (s) => checkCliSign(params, sign, s))) throw new DomainError('SIGN_INVALID', 'sign does not verify');
  return admit(ctx, app, call);
}

/** Ulord external calls: header `appkey` names the app (the document defines no secret proof). */
export async function verifyAppkey(ctx: Ctx, appkey: string | undefined, call: CallInfo): Promise<App> {
  return admit(ctx, await lookup(ctx, appkey, 'ulord'), call);
}

/** BQP HTTP Basic: user = key, password = secret. Returns null when no Basic header was sent. */
export async function verifyBasic(ctx: Ctx, authorization: string | undefined, call: CallInfo): Promise<App | null> {
  const b = parseBasic(authorization);
  if (!b) return null;
  const app = await lookup(ctx, b.user, 'bqp');
  if (!anySecret(app, ctx.clock.now(), (s) => safeEqual(b.password, s))) throw new DomainError('SECRET_INVALID', 'wrong password');
  return admit(ctx, app, call);
}

/** BQP `_sign` = md5(timestamp + secret) of the app with key `partnerId` (default "1"), ±2 h. */
export async function verifyBqpSign(ctx: Ctx, p: { timestamp?: string; sign?: string; partnerId?: string }, call: CallInfo): Promise<App> {
  if (!p.timestamp || !p.sign) throw new DomainError('VALIDATION', 'timestamp and _sign are required', { field: p.timestamp ? '_sign' : 'timestamp' });
  const app = await lookup(ctx, p.partnerId || '1', 'bqp-sign');
  const now = ctx.clock.now();
  const results = validSecrets(app, now).map((s) => checkBqpSign(p.timestamp!, p.sign!, s, now));
  if (!results.some((r) => r.ok)) {
    const stale = results.some((r) => !r.ok && r.reason === 'stale');
    throw new DomainError(stale ? 'TIMESTAMP_STALE' : 'SIGN_INVALID', stale ? 'timestamp is more than 2 hours away' : '_sign does not verify');
  }
  return admit(ctx, app, call);
}

export interface NativeRequest extends Omit<SignedRequest, 'timestamp' | 'nonce'> {
  headers: Record<string, string | string[] | undefined>;
}

const header = (h: NativeRequest['headers'], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * Native scheme. Either `Authorization: Bearer <key>.<secret>`, or HMAC-SHA256 request signing with
 * X-Menhu-Key / -Timestamp / -Nonce / -Signature (see schemes.ts). Returns null if neither is present.
 */
export async function verifyNative(ctx: Ctx, r: NativeRequest, call: CallInfo): Promise<App | null> {
  const auth = header(r.headers, 'authorization');
  const now = ctx.clock.now();
  if (auth && /^Bearer\s/i.test(auth)) {
    const token = auth.replace(/^Bearer\s+/i, '').trim();
    const dot = token.indexOf('.');
    if (dot <= 0) throw new DomainError('KEY_MISSING', 'a bearer API key has the form <key>.<secret>');
    const app = await lookup(ctx, token.slice(0, dot), 'native');
    const secret = token.slice(dot + 1);
    if (!anySecret(app, now, (s) => safeEqual(secret, s))) throw new DomainError('SECRET_INVALID', 'wrong secret');
    return admit(ctx, app, call);
  }
  const key = header(r.headers, 'x-menhu-key');
  if (!key) return null;
  const ts = header(r.headers, 'x-menhu-timestamp') ?? '';
  const nonce = header(r.headers, 'x-menhu-nonce') ?? '';
  const sig = (header(r.headers, 'x-menhu-signature') ?? '').toLowerCase();
  if (!/^\d{1,12}$/.test(ts)) throw new DomainError('SIGN_INVALID', 'X-Menhu-Timestamp must be unix seconds');
  if (!/^[A-Za-z0-9_-]{16,64}$/.test(nonce)) throw new DomainError('SIGN_INVALID', 'X-Menhu-Nonce must be 16-64 characters of A-Z a-z 0-9 _ -');
  if (!/^[0-9a-f]{64}$/.test(sig)) throw new DomainError('SIGN_INVALID', 'X-Menhu-Signature must be 64 hex digits');
  const app = await lookup(ctx, key, 'native');
  const skew = ctx.config.hmacSkewSeconds;
  if (Math.abs(now / 1000 - Number(ts)) > skew) throw new DomainError('TIMESTAMP_STALE', `timestamp is more than ${skew} s away from the server clock`);
  const req: SignedRequest = { method: r.method, path: r.path, query: r.query, body: r.body, timestamp: ts, nonce };
  if (!anySecret(app, now, (s) => safeEqual(sig, hmacSign(req, s)))) throw new DomainError('SIGN_INVALID', 'signature does not verify');
  // Only a verified request consumes its nonce, so garbage cannot burn a client's nonces.
  if (!(await ctx.limits.firstUse(`${app.id}:${nonce}`, 2 * skew * 1000))) throw new DomainError('NONCE_REPLAYED', 'this nonce was already used');
  return admit(ctx, app, call);
}
