/**
 * The web console (console/, built by `npm run build` into dist/console/) served at /console.
 * Hashed assets get a year-long immutable cache; index.html is never cached and answers every
 * other path below /console/ (the app routes in the browser). Without a build, /console answers
 * 503 with a page that says how to build it. The console speaks only the native REST API.
 */
import fastifyStatic from '@fastify/static';
import { existsSync, statSync } from 'node:fs';
import { join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Module } from '../module.js';

/** Where `vite build console` writes: <repo>/dist/console, from src/modules or dist/modules alike. */
export const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url));

const CSP = [
  "default-src 'self'",
  "img-src 'self' data: blob:",
  "style-src 'self' 'unsafe-inline'",
  "frame-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>menhu console not built</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;color:#1d2330}code{background:#eef0f4;padding:2px 6px;border-radius:4px}</style>
</head><body>
<h1>The console is not built</h1>
<p>控制台尚未构建。Run <code>npm run build</code> in the menhu folder (it builds the server and the console into <code>dist/</code>), then reload this page.</p>
<p>请在 menhu 目录运行 <code>npm run build</code>，然后刷新本页。The native API works meanwhile: <a href="/rest/v1/docs">/rest/v1/docs</a>.</p>
</body></html>
`;

export async function mountConsole(app: FastifyInstance, dir: string = CONSOLE_DIR): Promise<void> {
  const root = resolve(dir);
  await app.register(async (sub) => {
    await sub.register(fastifyStatic, { root, serve: false });

    const index = (reply: FastifyReply) => {
      if (!existsSync(join(root, 'index.html'))) {
        return reply.code(503).header('cache-control', 'no-store').header('retry-after', '60').type('text/html; charset=utf-8').send(NOT_BUILT);
      }
      return reply
        .header('cache-control', 'no-cache')
        .header('content-security-policy', CSP)
        .header('x-content-type-options', 'nosniff')
        .header('referrer-policy', 'same-origin')
        .sendFile('index.html', root, { cacheControl: false });
    };

    sub.get('/console', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/console/', 301));
    sub.get<{ Params: { '*': string } }>('/console/*', { schema: { hide: true } }, async (req, reply) => {
      const rel = req.params['*'] ?? '';
      if (rel && rel !== 'index.html') {
        const file = resolve(root, rel);
        const inside = file.startsWith(root + sep);
        const isFile = inside && existsSync(file) && statSync(file).isFile();
        if (isFile) {
          const hashed = rel.startsWith('assets/');
          reply.header('x-content-type-options', 'nosniff');
          return hashed ? reply.sendFile(rel, root, { cacheControl: true, maxAge: 365 * 24 * 3600 * 1000, immutable: true }) : reply.header('cache-control', 'no-cache').sendFile(rel, root, { cacheControl: false });
        }
        // A missing hashed asset is a stale page asking for an old build: say so, don't send HTML.
        if (rel.startsWith('assets/') || !inside) return reply.code(404).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send('not found');
      }
      return index(reply);
    });
  });
}

export const consoleModule: Module = {
  name: 'console',
  mount: (app) => mountConsole(app),
  banner: (ctx) => [`console     ${ctx.config.publicUrl}/console/  (log in as an operator or a developer)${existsSync(join(CONSOLE_DIR, 'index.html')) ? '' : ' — not built: run npm run build'}`],
};
