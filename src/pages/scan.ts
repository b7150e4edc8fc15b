/**
 * GET /s/<code>: the public end of every short link. Resolves the code (in-process cache), records
 * the scan (buffered), then redirects (url links) or hands over to the page registered for the
 * link's kind (code records, report verification).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../core/context.js';
import { recordScan, resolveLink, type Link, type LinkKind } from '../services/links/index.js';
import { escapeHtml, htmlPage, PAGE_CSP } from './html.js';

export type ScanPage = (ctx: Ctx, link: Link, req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

const pages = new Map<LinkKind, ScanPage>();

export function registerScanPage(kind: LinkKind, page: ScanPage): void {
  pages.set(kind, page);
}

const NOT_FOUND_HTML = htmlPage(
  '二维码不存在 · Code not found',
  `<h1>二维码不存在</h1><p>这个码不存在或已停用。</p><p lang="en">This code does not exist or has been disabled.</p>`,
);

export function sendNotFoundPage(reply: FastifyReply, message?: string): FastifyReply {
  const html = message ? htmlPage('Not found', `<h1>${escapeHtml(message)}</h1>`) : NOT_FOUND_HTML;
  return reply.code(404).header('content-security-policy', PAGE_CSP).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(html);
}

export function mountScan(app: FastifyInstance, ctx: Ctx): void {
  app.get<{ Params: { code: string } }>('/s/:code', async (req, reply) => {
    const link = await resolveLink(ctx, req.params.code);
    if (!link) return sendNotFoundPage(reply);
    if (req.method === 'GET') {
      const ua = req.headers['user-agent'];
      const ref = req.headers.referer;
      recordScan(ctx, link, { ua, referrer: typeof ref === 'string' ? ref : undefined, ip: req.ip });
    }
    if (link.kind === 'url') {
      // no-store: every scan reaches the server, so it is counted and an edited target applies at once.
      return reply.code(302).header('location', link.url).header('cache-control', 'no-store').send();
    }
    const page = pages.get(link.kind);
    if (!page) return sendNotFoundPage(reply);
    return page(ctx, link, req, reply);
  });
}
