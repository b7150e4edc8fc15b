/**
 * GET /s/<code>: the public end of every short link. Resolves the code (in-process cache), records
 * the scan (buffered), then redirects (url links) or hands over to the page registered for the
 * link's kind (code records, report verification).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../core/context.js';
import type { FastHandler } from '../module.js';
import { peekLink, recordScan, resolveLink, type Link, type LinkKind } from '../services/links/index.js';
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

/**
 * The redirect of a cached url link, answered before the framework: a scan is the one request a
 * printed code makes millions of times, and it needs nothing Fastify adds. Same status and headers
 * as the route below; anything else (unknown or uncached code, other kinds, HEAD, odd paths) is left
 * to the route.
 */
export function fastScan(ctx: Ctx): FastHandler {
  return (req, res, ip) => {
    const url = req.url!;
    if (req.method !== 'GET' || !url.startsWith('/s/')) return null;
    const q = url.indexOf('?', 3);
    const link = peekLink(ctx, q < 0 ? url.slice(3) : url.slice(3, q));
    if (!link || link.kind !== 'url') return null;
    const ref = req.headers.referer;
    recordScan(ctx, link, { ua: req.headers['user-agent'], referrer: typeof ref === 'string' ? ref : undefined, ip: ip() });
    res.writeHead(302, { location: link.url!, 'cache-control': 'no-store', 'content-length': '0' });
    res.end();
    return '/s/:code';
  };
}

export function mountScan(app: FastifyInstance, ctx: Ctx): void {
  const answer = (link: Link | null, req: FastifyRequest, reply: FastifyReply): FastifyReply | Promise<unknown> => {
    if (!link) return sendNotFoundPage(reply);
    if (req.method === 'GET') {
      const ref = req.headers.referer;
      recordScan(ctx, link, { ua: req.headers['user-agent'], referrer: typeof ref === 'string' ? ref : undefined, ip: req.ip });
    }
    if (link.kind === 'url') {
      // no-store: every scan reaches the server, so it is counted and an edited target applies at once.
      return reply.code(302).headers({ location: link.url!, 'cache-control': 'no-store' }).send();
    }
    const page = pages.get(link.kind);
    if (!page) return sendNotFoundPage(reply);
    return page(ctx, link, req, reply);
  };
  // Not async: a cached code is answered without a promise or a database round trip.
  app.get<{ Params: { code: string } }>('/s/:code', (req, reply) => {
    const code = req.params.code;
    const cached = peekLink(ctx, code);
    if (cached !== undefined) return answer(cached, req, reply);
    return resolveLink(ctx, code).then((link) => answer(link, req, reply));
  });
}
