/**
 * Bulk import of code records from CSV or XLSX. The first row is a header: when it names every
 * field of the template, columns are matched by name (other columns, such as those of an export,
 * are ignored); otherwise columns are taken in field order. Valid rows are created in batches of
 * MAX_BATCH; invalid rows are reported with their reasons and not created.
 */
import { extname } from 'node:path';
import ExcelJS from 'exceljs';
import type { Ctx } from '../../core/context.js';
import { DomainError } from '../../core/errors.js';
import { checkValues, type FieldDef } from './fields.js';
import { createRecords, MAX_BATCH, type Template } from './index.js';

export interface ImportReport {
  rows: number;
  created: number;
  rejected: { row: number; field?: string; reason: string }[];
  mapping: 'by-name' | 'by-position';
}

export const MAX_IMPORT_ROWS = 200_000;

function cellText(v: ExcelJS.CellValue): string {
  if (v === null || v === undefined) return '';
  if (v instanceof Date) return v.toISOString().slice(0, 10);
  if (typeof v === 'object') {
    if ('text' in v && typeof v.text === 'string') return v.text; // hyperlink
    if ('richText' in v && Array.isArray(v.richText)) return v.richText.map((r) => r.text).join('');
    if ('result' in v) return cellText((v as { result: ExcelJS.CellValue }).result ?? null); // formula
    return '';
  }
  return String(v);
}

async function readRows(file: string): Promise<string[][]> {
  const wb = new ExcelJS.Workbook();
  const ext = extname(file).toLowerCase();
  let ws: ExcelJS.Worksheet | undefined;
  if (ext === '.xlsx') {
    await wb.xlsx.readFile(file);
    ws = wb.worksheets[0];
  } else if (ext === '.csv') {
    // keep every cell as text (no date or number guessing)
    ws = await wb.csv.readFile(file, { map: (v: unknown) => v } as unknown as ExcelJS.CsvReadOptions);
  } else throw new DomainError('VALIDATION', 'the file must be .csv or .xlsx', { field: 'file' });
  if (!ws) return [];
  const rows: string[][] = [];
  ws.eachRow({ includeEmpty: false }, (row) => {
    const vals = (row.values as ExcelJS.CellValue[]).slice(1).map(cellText);
    if (vals.some((x) => x.trim() !== '')) rows.push(vals);
  });
  return rows;
}

/** Friendlier cell forms: an option's label for its number, a plain address for a location. */
function fromCell(f: FieldDef, v: string): string {
  const s = v.trim();
  if (!s) return '';
  if (f.type === 'single_choice' && f.options && !/^\d+$/.test(s)) {
    const i = f.options.indexOf(s);
    return i >= 0 ? String(i + 1) : s;
  }
  if (f.type === 'multi_choice' && f.options && !/^[\d,\s]+$/.test(s)) {
    const parts = s.split(/[,、，]/).map((x) => x.trim());
    if (parts.every((p) => f.options!.includes(p))) return parts.map((p) => f.options!.indexOf(p) + 1).join(',');
    return s;
  }
  if (f.type === 'location' && !s.startsWith('{')) return JSON.stringify({ address: s });
  return f.type === 'multi_line' ? v : s;
}

export async function importFile(ctx: Ctx, t: Template, file: string, actor: string, progress?: (done: number, total: number) => void): Promise<ImportReport> {
  const rows = await readRows(file);
  if (rows.length === 0) throw new DomainError('VALIDATION', 'the file has no rows', { field: 'file' });
  if (rows.length - 1 > MAX_IMPORT_ROWS) throw new DomainError('VALIDATION', `at most ${MAX_IMPORT_ROWS} rows per import`, { field: 'file' });
  const header = rows[0].map((h) => h.trim());
  const byName = t.fields.every((f) => header.includes(f.name));
  const cols = byName ? t.fields.map((f) => header.indexOf(f.name)) : t.fields.map((_, i) => i);
  const data = rows.slice(1);
  const report: ImportReport = { rows: data.length, created: 0, rejected: [], mapping: byName ? 'by-name' : 'by-position' };
  let batch: string[][] = [];
  const flush = async () => {
    if (!batch.length) return;
    report.created += (await createRecords(ctx, t, batch, actor)).length;
    batch = [];
  };
  progress?.(0, data.length);
  for (let i = 0; i < data.length; i++) {
    const r = data[i];
    try {
      batch.push(checkValues(t.fields, t.fields.map((f, k) => fromCell(f, r[cols[k]] ?? ''))));
    } catch (e) {
      if (!(e instanceof DomainError)) throw e;
      report.rejected.push({ row: i + 2, field: e.field, reason: e.message }); // spreadsheet row number (header = 1)
    }
    if (batch.length >= MAX_BATCH) await flush();
    if (i % 100 === 99 || i === data.length - 1) progress?.(i + 1, data.length);
  }
  await flush();
  return report;
}
