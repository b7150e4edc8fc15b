/**
 * Public pages of dynamic codes: the landing page a scan of a code record shows (registered for
 * links of kind 'code'), and the signed, expiring QR image URLs (qrstyle_url) of the cli.im API.
 * Field values are untrusted: everything is escaped, URLs were checked to be http(s) on input,
 * and the page carries a CSP without scripts.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../core/context.js';
import { renderQrPng } from '../core/qr/index.js';
import { checkQrUrl, checkUrl, getTemplate, recordByLink, recordQrStyle, recordUrl, type FieldDef, type Location } from '../services/codes/index.js';
import { getLink, type Link } from '../services/links/index.js';
import { escapeHtml, htmlPage, PAGE_CSP } from './html.js';
import { sendNotFoundPage } from './scan.js';

const CSS = `
.card{background:#fff;border-radius:12px;padding:4px 16px;margin:0 0 16px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.head{border-top:4px solid var(--accent,#1677ff)}
.sub{color:#6b6b70;font-size:.875rem;margin:-8px 0 12px}
dl{margin:0}
.f{padding:12px 0;border-bottom:1px solid #ececf0}
.f:last-child{border-bottom:0}
dt{color:#6b6b70;font-size:.8125rem;margin-bottom:2px}
dd{margin:0;overflow-wrap:anywhere;word-break:break-word}
dd.ml{white-space:pre-wrap}
.empty{color:#b0b0b5}
.chip{display:inline-block;background:#eef4ff;color:#1d4ed8;border-radius:999px;padding:1px 10px;margin:2px 6px 2px 0;font-size:.875rem}
img.pic{display:block;max-width:100%;height:auto;border-radius:8px;margin-top:4px;background:#f2f2f7}
a{color:#1677ff}
a.btn{display:inline-block;margin-top:6px;padding:6px 14px;border:1px solid #1677ff;border-radius:8px;text-decoration:none}
footer{color:#8e8e93;font-size:.75rem;text-align:center;padding:8px 0 24px}
`;

function fileName(url: string): string {
  try {
    const last = new URL(url).pathname.split('/').filter(Boolean).pop();
    return last ? decodeURIComponent(last) : url;
  } catch {
    return url;
  }
}

function mapLink(loc: Location): string {
  const name = encodeURIComponent(loc.address);
  return loc.lat !== undefined && loc.log !== undefined
    ? `https://uri.amap.com/marker?position=${loc.log},${loc.lat}&name=${name}&callnative=1`
    : `https://uri.amap.com/search?keyword=${name}`;
}

/** One field's value as HTML (escaped). */
export function fieldHtml(f: FieldDef, v: string): string {
  if (!v) return '<dd class="empty">—</dd>';
  switch (f.type) {
    case 'multi_line':
      return `<dd class="ml">${escapeHtml(v)}</dd>`;
    case 'single_choice':
    case 'multi_choice':
      return `<dd>${v
        .split(',')
        .map((n) => `<span class="chip">${escapeHtml(f.options?.[Number(n) - 1] ?? n)}</span>`)
        .join('')}</dd>`;
    case 'location': {
      let loc: Location;
      try {
        loc = JSON.parse(v) as Location;
      } catch {
        return `<dd>${escapeHtml(v)}</dd>`;
      }
      return `<dd>${escapeHtml(loc.address)}<br><a class="btn map" href="${escapeHtml(mapLink(loc))}" rel="noopener noreferrer">${loc.lat !== undefined ? '导航' : '在地图中查看'}</a></dd>`;
    }
    case 'image':
      return checkUrl(v) ? `<dd><img class="pic" src="${escapeHtml(v)}" alt="${escapeHtml(f.name)}" loading="lazy" referrerpolicy="no-referrer"></dd>` : `<dd>${escapeHtml(v)}</dd>`;
    case 'file':
    case 'audio':
    case 'video':
      return checkUrl(v) ? `<dd><a class="file" href="${escapeHtml(v)}" download rel="noopener noreferrer">${escapeHtml(fileName(v))}</a></dd>` : `<dd>${escapeHtml(v)}</dd>`;
    default:
      return `<dd>${escapeHtml(v)}</dd>`;
  }
}

export async function codePage(ctx: Ctx, link: Link, _req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const rec = await recordByLink(ctx, link.id);
  const t = rec && (await getTemplate(ctx, rec.templateId));
  if (!rec || !t) return sendNotFoundPage(reply);
  const firstText = t.fields.findIndex((f, i) => f.type === 'single_line' && rec.values[i]);
  const title = firstText >= 0 ? rec.values[firstText] : t.title;
  const rows = t.fields
    .map((f, i) => `<div class="f" data-type="${f.type}"><dt>${escapeHtml(f.name)}</dt>${fieldHtml(f, rec.values[i] ?? '')}</div>`)
    .join('\n');
  const updated = new Date(rec.updatedAt).toISOString().slice(0, 10);
  const accent = t.style.accent ? `:root{--accent:${t.style.accent}}` : '';
  const body = `<section class="card head"><h1>${escapeHtml(title)}</h1><p class="sub">${escapeHtml(t.title)} · ${escapeHtml(t.templateNum)}</p></section>
<section class="card"><dl>
${rows}
</dl></section>
<footer>更新于 ${updated}</footer>`;
  return reply
    .code(200)
    .header('content-security-policy', PAGE_CSP)
    .header('cache-control', 'no-store')
    .header('x-content-type-options', 'nosniff')
    .type('text/html; charset=utf-8')
    .send(htmlPage(title, body, { css: CSS + accent }));
}

/** GET /qr/<code>.png?e=<unix s>&s=<sig>: the styled QR image of a code record, for one day. */
export function mountQrImages(app: FastifyInstance, ctx: Ctx): void {
  app.get<{ Params: { file: string }; Querystring: { e?: string; s?: string } }>('/qr/:file', async (req, reply) => {
    const m = /^([A-Za-z0-9_-]{4,32})\.png$/.exec(req.params.file);
    const text = (status: number, msg: string) => reply.code(status).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send(msg + '\n');
    if (!m) return text(404, 'not found');
    const code = m[1];
    const e = typeof req.query.e === 'string' ? req.query.e : undefined;
    const check = await checkQrUrl(ctx, code, e, typeof req.query.s === 'string' ? req.query.s : undefined);
    if (check === 'bad') return text(403, 'this QR image link is not valid (bad or missing signature)');
    if (check === 'expired') {
      return text(410, `这个二维码图片链接已过期 / This QR image link expired at ${new Date(Number(e) * 1000).toISOString()} (links are valid for one day). The code itself still works; ask the API for a new image link.`);
    }
    const link = await getLink(ctx, code);
    const rec = link && !link.disabled ? await recordByLink(ctx, link.id) : null;
    if (!rec) return text(404, 'this code does not exist or has been disabled');
    const png = await renderQrPng(recordUrl(ctx, rec), await recordQrStyle(ctx, rec));
    const left = Math.max(0, Number(e) * 1000 - ctx.clock.now());
    return reply.header('cache-control', `public, max-age=${Math.floor(left / 1000)}`).type('image/png').send(png);
  });
}

