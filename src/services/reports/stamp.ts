/**
 * The cover QR of a report (its short link, created once) and stamping it on page 1 of a PDF.
 * The QR is placed relative to what a reader sees: inside the page's crop box, upright whatever
 * the page's /Rotate, in the chosen corner.
 */
import { degrees, PDFDocument, type PDFPage } from 'pdf-lib';
import type { Ctx } from '../../core/context.js';
import { DomainError } from '../../core/errors.js';
import { renderQrPng } from '../../core/qr/index.js';
import { ensureLink, shortUrl, type Link } from '../links/index.js';
import { checkReportId } from './index.js';

/** The cover QR: 10 px modules, level M, 4-module margin; the same link always gives the same bytes. */
export const COVER_QR = { ecl: 'M', margin: 4, scale: 10 } as const;

/** The report's short link (created on first use) and its cover QR image. */
export async function coverQr(ctx: Ctx, tenantId: number, reportId: string): Promise<{ link: Link; url: string; png: Buffer }> {
  checkReportId(reportId);
  const { link } = await ensureLink(ctx, { tenantId, kind: 'report', targetRef: reportId });
  const url = shortUrl(ctx, link.code);
  return { link, url, png: await renderQrPng(url, COVER_QR) };
}

export type Corner = 'top-right' | 'top-left' | 'bottom-right' | 'bottom-left';
export const CORNERS: readonly Corner[] = ['top-right', 'top-left', 'bottom-right', 'bottom-left'];

export interface StampOptions {
  corner?: Corner;
  /** Side of the QR in points (1/72 inch); default 72. */
  size?: number;
  /** Distance from the visible page edges in points; default 18. */
  margin?: number;
}

/** Returns the PDF with the PNG drawn on page 1. Refuses what is not a readable, unencrypted PDF. */
export async function stampPdf(pdf: Buffer, png: Buffer, opts: StampOptions = {}): Promise<Buffer> {
  if (pdf.length === 0) throw new DomainError('VALIDATION', 'the PDF is empty', { field: 'file' });
  if (pdf.subarray(0, 1024).indexOf('%PDF-') < 0) throw new DomainError('UNSUPPORTED_MEDIA', 'the body is not a PDF', { field: 'file' });
  let doc: PDFDocument;
  let page: PDFPage;
  try {
    doc = await PDFDocument.load(pdf, { updateMetadata: false });
    page = doc.getPage(0);
  } catch (e) {
    // pdf-lib is lenient on load; a broken catalog or page tree shows up when the page is read.
    const encrypted = /encrypt/i.test(String((e as Error)?.message));
    throw new DomainError('VALIDATION', encrypted ? 'encrypted PDFs cannot be stamped' : 'the PDF could not be read (or has no pages)', { field: 'file' });
  }
  let crop: { x: number; y: number; width: number; height: number };
  let angle: number;
  try {
    crop = page.getCropBox();
    angle = page.getRotation().angle;
  } catch {
    throw new DomainError('VALIDATION', 'page 1 of the PDF could not be read', { field: 'file' });
  }
  const r = (((angle % 360) + 360) % 360) as 0 | 90 | 180 | 270;
  if (![0, 90, 180, 270].includes(r)) throw new DomainError('VALIDATION', 'page 1 has a rotation that is not a multiple of 90°', { field: 'file' });
  // Displayed page size (what a reader sees) and the stamp in displayed coordinates.
  const W = r === 90 || r === 270 ? crop.height : crop.width;
  const H = r === 90 || r === 270 ? crop.width : crop.height;
  const margin = opts.margin ?? 18;
  const size = Math.min(opts.size ?? 72, W - 2 * margin, H - 2 * margin);
  if (!(size >= 18)) throw new DomainError('VALIDATION', 'page 1 is too small for the QR with this margin', { field: 'size' });
  const corner = opts.corner ?? 'top-right';
  const u = corner.endsWith('right') ? W - margin - size : margin;
  const v = corner.startsWith('top') ? H - margin - size : margin;
  // Displayed (u, v) → user space (x, y) for a page shown rotated r degrees clockwise.
  const { x: x0, y: y0, width: w, height: h } = crop;
  const at = {
    0: { x: x0 + u, y: y0 + v },
    90: { x: x0 + w - v, y: y0 + u },
    180: { x: x0 + w - u, y: y0 + h - v },
    270: { x: x0 + v, y: y0 + h - u },
  }[r];
  const img = await doc.embedPng(png);
  // Drawn turned r degrees counter-clockwise, the image appears upright once the page turns r clockwise.
  page.drawImage(img, { x: at.x, y: at.y, width: size, height: size, rotate: degrees(r) });
  return Buffer.from(await doc.save({ useObjectStreams: false }));
}
