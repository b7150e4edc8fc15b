/**
 * What a photo job asks for, parsed and checked. Shared by the service (upload) and the processing
 * child process, so both agree on the meaning of repair_type and rgb.
 */
import { DomainError } from '../../core/errors.js';

/** Processing steps, in the order they run. */
export type Step = 'repair' | 'colour' | 'sr' | 'bg';

export interface Recipe {
  steps: Step[];
  /** Background colour for `bg`. */
  rgb: [number, number, number] | null;
}

const KNOWN = new Set(['sr', 'repair', 'colour', 'color', 'bg']);

/**
 * repair_type as the document lists it: `sr` (super-resolution), `repair` (clean-up + sr),
 * `sr,repair,colour` (clean-up + colour + sr), `bg` (background colour, needs rgb). Any
 * comma-separated combination of sr/repair/colour is accepted; bg stands alone.
 */
export function parseRecipe(repairType: unknown, rgb: unknown): Recipe {
  const steps = parseSteps(repairType);
  if (steps[0] === 'bg') return { steps, rgb: parseRgb(rgb) };
  if (rgb !== undefined && rgb !== null && rgb !== '') parseRgb(rgb); // given but malformed is still an error
  return { steps, rgb: null };
}

/** The steps a repair_type asks for, in the order they run (`bg` alone, else ending in `sr`); as stored in photo_jobs.repair_type joined by commas. */
export function parseSteps(repairType: unknown): Step[] {
  if (typeof repairType !== 'string' || !repairType.trim()) throw new DomainError('VALIDATION', 'repair_type is required', { field: 'repair_type' });
  const parts = repairType.split(',').map((s) => s.trim().toLowerCase());
  for (const p of parts) if (!KNOWN.has(p)) throw new DomainError('VALIDATION', `unknown repair_type ${JSON.stringify(p.slice(0, 40))} (sr, repair, colour, bg)`, { field: 'repair_type' });
  const set = new Set(parts.map((p) => (p === 'color' ? 'colour' : p)));
  if (set.has('bg')) {
    if (set.size > 1) throw new DomainError('VALIDATION', 'repair_type bg cannot be combined with other repairs', { field: 'repair_type' });
    return ['bg'];
  }
  const steps: Step[] = [];
  if (set.has('repair')) steps.push('repair');
  if (set.has('colour')) steps.push('colour');
  steps.push('sr'); // every non-bg repair ends in super-resolution ("repair" = 超分+修复)
  return steps;
}

/** `255,255,255`: three integers 0..255 separated by commas (spaces allowed around them). */
export function parseRgb(v: unknown): [number, number, number] {
  if (typeof v !== 'string' || !v.trim()) throw new DomainError('VALIDATION', 'rgb is required for repair_type bg (e.g. 255,255,255)', { field: 'rgb' });
  const m = /^\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*$/.exec(v);
  const nums = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
  if (!nums || nums.some((n) => n > 255)) throw new DomainError('VALIDATION', `rgb must be three integers 0-255 like 255,255,255 (got ${JSON.stringify(v.slice(0, 40))})`, { field: 'rgb' });
  return nums as [number, number, number];
}
