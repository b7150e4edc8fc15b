/**
 * Amounts in ULD, held as integers of 1e-8 ULD ("units"). Parsed from decimal text exactly (no
 * float arithmetic); a JSON number is read through its shortest round-trip decimal form.
 */
import { DomainError } from '../../core/errors.js';

export const DECIMALS = 8;
export const UNIT = 100_000_000n;
/** Largest single amount or price: 10,000,000 ULD (keeps every sum far below 2^53 units). */
export const MAX_UNITS = 10n ** 15n;

const DEC_RE = /^([+-])?(\d{1,16})(?:\.(\d+))?(?:[eE]([+-]?\d{1,3}))?$/;

/**
 * Parses a decimal amount into units. `signed` allows negative values (prices of ads);
 * zero is allowed only where `allowZero`.
 */
export function parseAmount(v: unknown, field: string, opts: { signed?: boolean; allowZero?: boolean } = {}): number {
  let text: string;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new DomainError('VALIDATION', `${field} must be a finite number`, { field });
    text = String(v);
  } else if (typeof v === 'string') {
    text = v.trim();
  } else if (v === undefined || v === null || v === '') {
    throw new DomainError('MISSING_FIELD', `${field} is required`, { field });
  } else {
    throw new DomainError('VALIDATION', `${field} must be a decimal number`, { field });
  }
  const m = DEC_RE.exec(text);
  if (!m) throw new DomainError('VALIDATION', `${field} must be a decimal number with at most ${DECIMALS} places`, { field });
  const [, sign, intPart, fracPart = '', expPart] = m;
  let digits = intPart + fracPart;
  let scale = fracPart.length - (expPart ? Number(expPart) : 0); // value = digits * 10^-scale
  // normalise to exactly DECIMALS places
  if (scale > DECIMALS) {
    const cut = scale - DECIMALS;
    const dropped = digits.slice(Math.max(0, digits.length - cut));
    if (/[1-9]/.test(dropped)) throw new DomainError('VALIDATION', `${field} has more than ${DECIMALS} decimal places`, { field });
    digits = digits.slice(0, Math.max(0, digits.length - cut)) || '0';
    scale = DECIMALS;
  }
  let units = BigInt(digits) * 10n ** BigInt(DECIMALS - scale);
  if (sign === '-') units = -units;
  if (units < 0n && !opts.signed) throw new DomainError('VALIDATION', `${field} must not be negative`, { field });
  if (units === 0n && !opts.allowZero) throw new DomainError('VALIDATION', `${field} must not be zero`, { field });
  if (units > MAX_UNITS || units < -MAX_UNITS) throw new DomainError('VALIDATION', `${field} is larger than ${MAX_UNITS / UNIT} ULD`, { field });
  return Number(units);
}

/** Units → exact decimal text ("1.5", "-0.02", "0"). */
export function formatUnits(units: number | bigint): string {
  let u = BigInt(units);
  const neg = u < 0n;
  if (neg) u = -u;
  const int = u / UNIT;
  const frac = (u % UNIT).toString().padStart(DECIMALS, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${int}${frac ? '.' + frac : ''}`;
}

/** Units → JSON number as the Ulord document shows amounts (shortest decimal that round-trips). */
export const toUld = (units: number | bigint): number => Number(formatUnits(units));
