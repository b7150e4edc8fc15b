import { DomainError } from '../errors.js';
import type { Ecl } from './matrix.js';

export interface QrStyle {
  ecl?: Ecl;
  /** Quiet zone, in modules (default 4). */
  margin?: number;
  /** Pixels per module (default 8). */
  scale?: number;
  /** Dark colour, #rgb or #rrggbb (default #000000). */
  fg?: string;
  /** Light colour, #rgb or #rrggbb (default #ffffff). */
  bg?: string;
  /** PNG or JPEG, composited in the centre; forces level H. */
  logo?: Buffer;
}

export interface ResolvedStyle {
  ecl: Ecl;
  margin: number;
  scale: number;
  fg: string;
  bg: string;
  logo: Buffer | null;
}

export const QR_DEFAULTS = { ecl: 'M' as Ecl, margin: 4, scale: 8, fg: '#000000', bg: '#ffffff' };
export const QR_LIMITS = { maxMargin: 20, maxScale: 40, maxPixels: 4096, maxLogoBytes: 1024 * 1024, minContrast: 3 };

const bad = (field: string, msg: string): never => {
  throw new DomainError('VALIDATION', `${field}: ${msg}`, { field });
};

/** '#rgb' | '#rrggbb' (the '#' may be left out, handy in query strings) → '#rrggbb', or throws naming the field. */
export function parseColour(v: unknown, field: string): string {
  if (typeof v !== 'string') return bad(field, 'must be a colour like #000 or #1a2b3c');
  const m = /^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.exec(v.trim());
  if (!m) return bad(field, `must be a colour like #000 or #1a2b3c, got ${JSON.stringify(v.slice(0, 20))}`);
  const h = m[1].toLowerCase();
  return '#' + (h.length === 3 ? h[0] + h[0] + h[1] + h[1] + h[2] + h[2] : h);
}

export const rgb = (hex: string): [number, number, number] => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];

function luminance(hex: string): number {
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  const [r, g, b] = rgb(hex);
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

function int(v: unknown, field: string, min: number, max: number): number {
  const n = typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) return bad(field, `must be an integer from ${min} to ${max}`);
  return n;
}

/**
 * Validates a style from untrusted input (JSON body or query string; unknown keys are ignored).
 * Throws DomainError VALIDATION naming the field.
 */
export function parseQrStyle(input: Record<string, unknown>): QrStyle {
  const out: QrStyle = {};
  const present = (k: string) => input[k] !== undefined && input[k] !== null && input[k] !== '';
  if (present('ecl')) {
    const e = String(input.ecl).toUpperCase();
    if (e !== 'L' && e !== 'M' && e !== 'Q' && e !== 'H') bad('ecl', 'must be one of L, M, Q, H');
    out.ecl = e as Ecl;
  }
  if (present('margin')) out.margin = int(input.margin, 'margin', 0, QR_LIMITS.maxMargin);
  if (present('scale')) out.scale = int(input.scale, 'scale', 1, QR_LIMITS.maxScale);
  if (present('fg')) out.fg = parseColour(input.fg, 'fg');
  if (present('bg')) out.bg = parseColour(input.bg, 'bg');
  if (present('logo')) {
    if (!Buffer.isBuffer(input.logo)) bad('logo', 'must be PNG or JPEG bytes');
    out.logo = input.logo as Buffer;
  }
  resolveStyle(out);
  return out;
}

/** Fills defaults and checks what parseQrStyle checks (styles built in code are checked too). */
export function resolveStyle(s: QrStyle = {}): ResolvedStyle {
  const r: ResolvedStyle = {
    ecl: s.ecl ?? QR_DEFAULTS.ecl,
    margin: s.margin ?? QR_DEFAULTS.margin,
    scale: s.scale ?? QR_DEFAULTS.scale,
    fg: s.fg ? parseColour(s.fg, 'fg') : QR_DEFAULTS.fg,
    bg: s.bg ? parseColour(s.bg, 'bg') : QR_DEFAULTS.bg,
    logo: s.logo ?? null,
  };
  if (!['L', 'M', 'Q', 'H'].includes(r.ecl)) bad('ecl', 'must be one of L, M, Q, H');
  int(r.margin, 'margin', 0, QR_LIMITS.maxMargin);
  int(r.scale, 'scale', 1, QR_LIMITS.maxScale);
  const lf = luminance(r.fg);
  const lb = luminance(r.bg);
  // Scanners expect dark modules on a light ground; demand that, with a contrast ratio of at least 3.
  if (lf >= lb || (lb + 0.05) / (lf + 0.05) < QR_LIMITS.minContrast) {
    bad('fg', `${r.fg} on ${r.bg} does not scan reliably: the foreground must be darker than the background with a contrast ratio of at least ${QR_LIMITS.minContrast}:1`);
  }
  if (r.logo) {
    if (r.logo.length > QR_LIMITS.maxLogoBytes) bad('logo', `must be at most ${QR_LIMITS.maxLogoBytes} bytes`);
    const png = r.logo.length > 8 && r.logo.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const jpeg = r.logo.length > 3 && r.logo[0] === 0xff && r.logo[1] === 0xd8 && r.logo[2] === 0xff;
    if (!png && !jpeg) bad('logo', 'must be a PNG or JPEG image');
    r.ecl = 'H';
  }
  return r;
}

export const isPlain = (s: ResolvedStyle): boolean => s.fg === '#000000' && s.bg === '#ffffff' && !s.logo;
