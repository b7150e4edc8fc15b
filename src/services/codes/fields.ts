/**
 * Template fields and the validation of their values (seed 002's formats). Pure functions: each
 * failure is a DomainError VALIDATION whose field is `values[i]` and whose message names the field.
 */
import { DomainError } from '../../core/errors.js';

export const FIELD_TYPES = ['single_line', 'multi_line', 'number', 'date', 'single_choice', 'multi_choice', 'location', 'image', 'file', 'audio', 'video'] as const;
export type FieldType = (typeof FIELD_TYPES)[number];
/** Types that exist in templates but whose values the API does not take (the document: 不支持音频、视频字段). */
export const MEDIA_TYPES: readonly FieldType[] = ['audio', 'video'];

export interface FieldDef {
  name: string;
  type: FieldType;
  /** Options of single_choice / multi_choice, in order (1-based on the wire). */
  options?: string[];
  required?: boolean;
}

export const FIELD_LABELS: Record<FieldType, string> = {
  single_line: '单行文本',
  multi_line: '多行文本',
  number: '数字',
  date: '日期',
  single_choice: '单选项',
  multi_choice: '多选项',
  location: '定位',
  image: '图片',
  file: '文件',
  audio: '音频',
  video: '视频',
};

export const LIMITS = { fields: 50, name: 50, options: 50, option: 100, singleLine: 500, multiLine: 5000, number: 40, url: 2048, address: 500 };

/** Location as stored: address, and coordinates when given. */
export interface Location {
  address: string;
  lat?: number;
  log?: number;
}

const bad = (msg: string, field = 'fields'): never => {
  throw new DomainError('VALIDATION', msg, { field });
};

export function checkFields(input: unknown): FieldDef[] {
  if (!Array.isArray(input) || input.length === 0 || input.length > LIMITS.fields) bad(`fields must be a list of 1 to ${LIMITS.fields} fields`);
  const names = new Set<string>();
  return (input as unknown[]).map((f, i) => {
    const at = `fields[${i}]`;
    if (!f || typeof f !== 'object') return bad(`${at} must be an object with name and type`, at);
    const { name, type, options, required } = f as Record<string, unknown>;
    if (typeof name !== 'string' || !name.trim() || name.length > LIMITS.name) bad(`${at}.name must be 1-${LIMITS.name} characters`, at);
    if (names.has((name as string).trim())) bad(`${at}.name ${JSON.stringify(name)} is used twice`, at);
    names.add((name as string).trim());
    if (!FIELD_TYPES.includes(type as FieldType)) bad(`${at}.type must be one of ${FIELD_TYPES.join(', ')}`, at);
    const out: FieldDef = { name: (name as string).trim(), type: type as FieldType };
    if (type === 'single_choice' || type === 'multi_choice') {
      if (!Array.isArray(options) || options.length === 0 || options.length > LIMITS.options) bad(`${at}.options must list 1-${LIMITS.options} choices`, at);
      out.options = (options as unknown[]).map((o) => {
        if (typeof o !== 'string' || !o.trim() || o.length > LIMITS.option) return bad(`${at}.options must be strings of 1-${LIMITS.option} characters`, at);
        return o.trim();
      });
    } else if (options !== undefined) bad(`${at}: only choice fields have options`, at);
    if (required !== undefined) {
      if (typeof required !== 'boolean') bad(`${at}.required must be true or false`, at);
      if (required) out.required = true;
    }
    return out;
  });
}

function realDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const dt = new Date(Date.UTC(y, mo - 1, d));
  return dt.getUTCFullYear() === y && dt.getUTCMonth() === mo - 1 && dt.getUTCDate() === d && y >= 1000;
}

export function checkUrl(v: string): boolean {
  if (v.length > LIMITS.url || /\s/.test(v)) return false;
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && !!u.hostname;
  } catch {
    return false;
  }
}

/**
 * Validates one positional value and returns its normalised string form ('' = no value).
 * Single choice → "2"; multi choice → "1,3" (ascending); location → compact JSON; number → as given.
 */
export function checkValue(f: FieldDef, raw: unknown, i: number): string {
  const field = `values[${i}]`;
  const label = `${field} (${f.name}, ${FIELD_LABELS[f.type]})`;
  const no = (msg: string): never => bad(`${label}: ${msg}`, field);
  if (raw === null || raw === undefined || raw === '') {
    if (f.required) no('a value is required');
    return '';
  }
  if (MEDIA_TYPES.includes(f.type)) no('audio and video fields cannot be set through the API; pass an empty string');
  if (f.type === 'location' && typeof raw === 'object' && !Array.isArray(raw)) raw = JSON.stringify(raw);
  if (typeof raw === 'number' && (f.type === 'number' || f.type === 'single_choice' || f.type === 'multi_choice' || f.type === 'single_line' || f.type === 'multi_line')) {
    if (!Number.isFinite(raw)) no('must be a finite number');
    raw = String(raw);
  }
  if (typeof raw !== 'string') return no(`must be a string, got ${Array.isArray(raw) ? 'an array' : typeof raw}`);
  const v = raw;
  switch (f.type) {
    case 'single_line':
      if (v.length > LIMITS.singleLine) no(`at most ${LIMITS.singleLine} characters (got ${v.length})`);
      if (/[\r\n]/.test(v)) no('a single-line field cannot contain line breaks');
      return v;
    case 'multi_line':
      if (v.length > LIMITS.multiLine) no(`at most ${LIMITS.multiLine} characters (got ${v.length})`);
      return v;
    case 'number':
      if (v.length > LIMITS.number || !/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(v.trim())) no(`${JSON.stringify(v.slice(0, 40))} is not a number`);
      return v.trim();
    case 'date':
      if (!realDate(v.trim())) no(`${JSON.stringify(v.slice(0, 40))} is not a date in the form YYYY-MM-DD`);
      return v.trim();
    case 'single_choice': {
      const n = f.options!.length;
      if (!/^\s*\d{1,3}\s*$/.test(v) || Number(v) < 1 || Number(v) > n) no(`must be the number of the chosen option, 1 to ${n}`);
      return String(Number(v));
    }
    case 'multi_choice': {
      const n = f.options!.length;
      const parts = v.split(',').map((x) => x.trim());
      const nums = parts.map((x) => (/^\d{1,3}$/.test(x) ? Number(x) : NaN));
      if (nums.some((x) => !(x >= 1 && x <= n))) no(`must be option numbers 1 to ${n} separated by commas, like "1,2"`);
      if (new Set(nums).size !== nums.length) no('an option is chosen twice');
      return nums.sort((a, b) => a - b).join(',');
    }
    case 'location': {
      let o: unknown;
      try {
        o = JSON.parse(v);
      } catch {
        return no('must be JSON like {"address":"浙江省宁波市","lat":29.86,"log":121.54}');
      }
      if (!o || typeof o !== 'object' || Array.isArray(o)) return no('must be a JSON object with an address');
      const { address, lat, log, ...rest } = o as Record<string, unknown>;
      if (Object.keys(rest).length) no(`unknown key ${JSON.stringify(Object.keys(rest)[0])}; allowed: address, lat, log`);
      if (typeof address !== 'string' || !address.trim() || address.length > LIMITS.address) no(`address must be a text of 1-${LIMITS.address} characters`);
      const loc: Location = { address: (address as string).trim() };
      if (lat !== undefined || log !== undefined) {
        const num = (x: unknown) => (typeof x === 'number' ? x : typeof x === 'string' && x.trim() !== '' ? Number(x) : NaN);
        const la = num(lat);
        const lo = num(log);
        if (!(la >= -90 && la <= 90)) no('lat must be a latitude from -90 to 90');
        if (!(lo >= -180 && lo <= 180)) no('log must be a longitude from -180 to 180');
        loc.lat = la;
        loc.log = lo;
      }
      return JSON.stringify(loc);
    }
    case 'image':
    case 'file':
      if (!checkUrl(v.trim())) no('must be a public http(s) URL of at most 2048 characters');
      return v.trim();
    default:
      return no('unsupported field type');
  }
}

/** Validates a whole values array against the fields (count first). */
export function checkValues(fields: FieldDef[], values: unknown): string[] {
  if (!Array.isArray(values)) bad('values must be an array with one value per template field', 'values');
  const arr = values as unknown[];
  if (arr.length !== fields.length) bad(`values has ${arr.length} values; template has ${fields.length} fields (${fields.map((f) => f.name).join(', ')})`, 'values');
  return fields.map((f, i) => checkValue(f, arr[i], i));
}

/** A stored value shown to people: option labels, address text. */
export function displayValue(f: FieldDef, v: string): string {
  if (!v) return '';
  if (f.type === 'single_choice') return f.options?.[Number(v) - 1] ?? v;
  if (f.type === 'multi_choice') return v.split(',').map((x) => f.options?.[Number(x) - 1] ?? x).join('、');
  if (f.type === 'location') {
    try {
      return (JSON.parse(v) as Location).address;
    } catch {
      return v;
    }
  }
  return v;
}
