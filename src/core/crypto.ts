import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ConfigError } from './config.js';

const scryptAsync = promisify(scrypt) as (pw: string | Buffer, salt: Buffer, len: number, opts: object) => Promise<Buffer>;

export const md5hex = (s: string | Buffer): string => createHash('md5').update(s).digest('hex');
export const sha256hex = (s: string | Buffer): string => createHash('sha256').update(s).digest('hex');
export const hmacSha256hex = (key: string | Buffer, s: string | Buffer): string => createHmac('sha256', key).update(s).digest('hex');

/** Constant-time string comparison; unequal lengths compare a digest so timing does not leak length either. */
export function safeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ba.length !== bb.length) {
    timingSafeEqual(createHash('sha256').update(ba).digest(), createHash('sha256').update(bb).digest());
    return false;
  }
  return timingSafeEqual(ba, bb);
}

export const randomHex = (bytes: number): string => randomBytes(bytes).toString('hex');

/** URL-safe random token (base62-ish, no ambiguous characters needed for machines). */
export function randomToken(bytes = 24): string {
  return randomBytes(bytes).toString('base64url');
}

// ---------------------------------------------------------------------------------------------
// Master key and secret encryption (AES-256-GCM)

export function parseMasterKey(raw: string, source = 'MENHU_MASTER_KEY'): Buffer {
  const s = raw.trim();
  let key: Buffer | null = null;
  if (/^[0-9a-fA-F]{64}$/.test(s)) key = Buffer.from(s, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(s)) key = Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (!key || key.length !== 32) {
    throw new ConfigError(`${source} is malformed: a master key is 32 bytes written as 64 hex digits or 43-44 base64 characters`);
  }
  return key;
}

/** The configured key, or the one in dataDir/master.key, generated there once (mode 0600). */
export function loadOrCreateMasterKey(configured: string, dataDir: string): Buffer {
  if (configured) return parseMasterKey(configured);
  const file = join(dataDir, 'master.key');
  if (existsSync(file)) return parseMasterKey(readFileSync(file, 'utf8'), file);
  mkdirSync(dataDir, { recursive: true });
  const hex = randomBytes(32).toString('hex');
  writeFileSync(file, hex + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return Buffer.from(hex, 'hex');
}

export class SecretBox {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('SecretBox needs a 32-byte key');
  }
  /** v1.<iv>.<tag>.<ciphertext>, base64url parts. */
  seal(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const ct = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return ['v1', iv.toString('base64url'), c.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
  }
  open(sealed: string): string {
    const [v, iv, tag, ct] = sealed.split('.');
    if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('sealed secret has an unknown format');
    const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    d.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([d.update(Buffer.from(ct, 'base64url')), d.final()]).toString('utf8');
  }
}

// ---------------------------------------------------------------------------------------------
// Password hashing (scrypt, PHC-like string)

const SCRYPT = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const dk = await scryptAsync(password.normalize('NFC'), salt, 32, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${dk.toString('base64url')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [, n, r, p, salt, hash] = parts;
  const expected = Buffer.from(hash, 'base64url');
  const dk = await scryptAsync(password.normalize('NFC'), Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: SCRYPT.maxmem,
  });
  return dk.length === expected.length && timingSafeEqual(dk, expected);
}
