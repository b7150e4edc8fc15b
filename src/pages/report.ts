/**
 * The report verification page, behind a scanned report link (`/s/<code>`, kind 'report'):
 * one status badge (valid / superseded / recalled / unknown), issuer, metadata, registration time,
 * SHA-256, a download of the registered copy (`/s/<code>/file`), the inclusion proof of the latest
 * log entry against the latest checkpoint (re-computed in the browser), and a local file check
 * (SHA-256 in the browser; the file never leaves the device). `/s/<code>/proof` is the proof
 * bundle for `menhu verify`. No external assets; the one inline script is allowed by its hash.
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Ctx } from '../core/context.js';
import { checkpointCovering, getEntry, inclusionProof, logInfo } from '../core/tlog/index.js';
import { attachment } from '../dialects/rest/reports.js';
import { getTenant } from '../services/accounts/index.js';
import { resolveLink, type Link } from '../services/links/index.js';
import { buildBundle } from '../services/reports/bundle.js';
import { getReport, listVersions, reportFile, type Report, type ReportVersion } from '../services/reports/index.js';
import { REPORT_PAGE_SCRIPT } from './report-script.js';
import { escapeHtml, htmlPage } from './html.js';
import { registerScanPage, sendNotFoundPage } from './scan.js';

const SCRIPT_HASH = createHash('sha256').update(REPORT_PAGE_SCRIPT).digest('base64');
export const REPORT_PAGE_CSP = `default-src 'none'; script-src 'sha256-${SCRIPT_HASH}'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;

export type PageStatus = 'valid' | 'superseded' | 'recalled' | 'unknown';

const T = {
  valid: '有效 · Valid',
  superseded: '已被新版本取代 · Superseded by a newer version',
  recalled: '已召回 · Recalled',
  unknown: '未登记 · Not registered',
  unknownText: '这个报告编号还没有登记的文件。 No file has been registered under this report ID yet.',
  issuer: '发布方 Issuer',
  reportId: '报告编号 Report ID',
  title: '标题 Title',
  type: '类型 Type',
  period: '周期 Period',
  geom: '地区 Geography',
  registered: '登记时间 Registered',
  version: '版本 Version',
  sha: 'SHA-256',
  size: '大小 Size',
  download: '下载登记副本 Download the registered copy',
  check: '核对手中的文件 Check your copy',
  dropHint: '把文件拖到这里，或点击选择文件。文件只在本机计算哈希，不会上传。 Drop the file here or pick it; it is hashed on this device and never uploaded.',
  proof: '透明日志证明 Transparency log proof',
  hashing: '正在计算… Hashing…',
  noMatch: '✗ 不一致：这个文件不是任何登记的版本。 No match: this file is not a registered version.',
  matchOk: '✓ 一致：这是登记的第 {v} 版（当前版本）。 Match: this is registered version {v}, the current one.',
  matchOld: '⚠ 这是第 {v} 版，已被第 {n} 版取代。 This is version {v}; version {n} replaced it.',
  matchRecalled: '✗ 这是第 {v} 版，但报告已召回。 This is version {v}, but the report was recalled.',
  proofOk: '✓ 浏览器已验证：该记录包含在日志检查点中。 Checked in your browser: the entry is in the checkpointed log.',
  proofBad: '✗ 证明验证失败。 The proof does not verify.',
  proofPending: '正在验证… Checking…',
  versions: '历史版本 Versions',
} as const;

const CSS = `
.badge{display:block;padding:14px 16px;border-radius:12px;font-weight:600;font-size:1.1rem;color:#fff;margin:8px 0 16px}
.badge.valid{background:#1f8a3b}.badge.superseded{background:#b86e00}.badge.recalled{background:#c0262d}.badge.unknown{background:#6b6b70}
.card{background:#fff;border-radius:12px;padding:14px 16px;margin:0 0 14px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
.card h2{font-size:1rem;margin:0 0 10px}
dl{margin:0;display:grid;grid-template-columns:minmax(7em,auto) 1fr;gap:6px 12px}
dt{color:#6b6b70;font-size:.85rem}dd{margin:0;overflow-wrap:anywhere}
code,pre{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere;white-space:pre-wrap}
pre{background:#f5f5f7;padding:8px;border-radius:8px;margin:6px 0}
a.btn{display:block;text-align:center;padding:12px;border-radius:10px;background:#0a66d8;color:#fff;text-decoration:none;font-weight:600}
#drop{display:block;border:2px dashed #b0b0b8;border-radius:12px;padding:18px;text-align:center;color:#4a4a4f;cursor:pointer}
#drop.over{border-color:#0a66d8;background:#eef5ff}
#file{display:block;margin:10px auto 0;max-width:100%}
.note{margin:10px 0 0;padding:10px;border-radius:8px;background:#f5f5f7}
.note.ok{background:#e6f4ea;color:#135c27}.note.bad{background:#fde8e8;color:#8c1d22}.note.warn{background:#fff4e0;color:#7a4a00}
details summary{cursor:pointer;color:#0a66d8}
.muted{color:#6b6b70;font-size:.85rem}
`;

const fmtTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
const fmtSize = (n: number) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`);
/** JSON inside <script type="application/json">: no "</script>" or "<!--" can appear. */
const safeJson = (v: unknown) => JSON.stringify(v).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');

function row(label: string, value: string, id?: string): string {
  return `<dt>${escapeHtml(label)}</dt><dd${id ? ` id="${id}"` : ''}>${value}</dd>`;
}

export interface PageModel {
  status: PageStatus;
  report: Report | null;
  versions: ReportVersion[];
  shown: ReportVersion | null;
  issuer: string;
}

export async function pageModel(ctx: Ctx, link: Link, askedVersion?: number): Promise<PageModel> {
  const [report, tenant] = await Promise.all([getReport(ctx, link.tenantId, link.targetRef), getTenant(ctx, link.tenantId)]);
  const issuer = tenant?.name ?? '';
  if (!report) return { status: 'unknown', report: null, versions: [], shown: null, issuer };
  const versions = (await listVersions(ctx, link.tenantId, report.reportId)) ?? [];
  const latest = versions[versions.length - 1] ?? null;
  const shown = (askedVersion !== undefined ? versions.find((v) => v.version === askedVersion) : undefined) ?? latest;
  const status: PageStatus = report.status === 'recalled' ? 'recalled' : shown && latest && shown.version < latest.version ? 'superseded' : 'valid';
  return { status, report, versions, shown, issuer };
}

async function renderPage(ctx: Ctx, link: Link, m: PageModel): Promise<string> {
  const base = `/s/${encodeURIComponent(link.code)}`;
  const badge = `<div id="badge" class="badge ${m.status}" data-status="${m.status}">${escapeHtml(T[m.status])}</div>`;
  const head = `<h1>${escapeHtml(m.report?.title ?? link.targetRef)}</h1>${badge}`;
  if (!m.report || !m.shown) {
    const body = `${head}<div class="card"><dl>${row(T.issuer, escapeHtml(m.issuer), 'issuer')}${row(T.reportId, escapeHtml(link.targetRef))}</dl><p>${escapeHtml(T.unknownText)}</p></div>`;
    return htmlPage(`${link.targetRef} · ${T.unknown}`, body, { css: CSS });
  }
  const r = m.report;
  const v = m.shown;
  const latest = m.versions[m.versions.length - 1];
  const details = `<div class="card"><dl>
${row(T.issuer, escapeHtml(m.issuer), 'issuer')}
${row(T.reportId, escapeHtml(r.reportId))}
${row(T.title, escapeHtml(v.title), 'title')}
${row(T.type, escapeHtml(v.type), 'type')}
${row(T.period, escapeHtml(v.period), 'period')}
${row(T.geom, escapeHtml(v.geom), 'geom')}
${row(T.version, `${v.version}${v.version === latest.version ? '' : ` / ${latest.version}`}`, 'version')}
${row(T.registered, escapeHtml(fmtTime(v.createdAt)), 'registered')}
${row(T.size, escapeHtml(fmtSize(v.size)))}
${row(T.sha, `<code id="sha256">${v.sha256}</code>`)}
</dl></div>
<p><a class="btn" id="download" href="${base}/file?v=${v.version}" download>${escapeHtml(T.download)}</a></p>`;

  const check = `<div class="card"><h2>${escapeHtml(T.check)}</h2>
<label id="drop" for="file">${escapeHtml(T.dropHint)}<input type="file" id="file"></label>
<div id="result" class="note" data-match="">—</div>
<p class="muted">SHA-256: <code id="file-hash"></code></p></div>`;

  // inclusion proof of the report's latest log entry, against the latest checkpoint
  const entry = await getEntry(ctx, r.lastTlogIndex);
  const cp = await checkpointCovering(ctx, r.lastTlogIndex + 1);
  const { proof } = await inclusionProof(ctx, r.lastTlogIndex, cp.size);
  const info = logInfo(ctx);
  const proofCard = `<div class="card"><h2>${escapeHtml(T.proof)}</h2>
<dl>${row('Leaf index', String(r.lastTlogIndex), 'leaf-index')}${row('Tree size', String(cp.size), 'tree-size')}${row('Root', `<code>${cp.root.toString('base64')}</code>`)}</dl>
<div id="proof-check" class="note" data-state="pending">${escapeHtml(T.proofPending)}</div>
<details><summary>Entry, audit path, checkpoint, log key</summary>
<pre id="entry">${escapeHtml(entry?.data ?? '')}</pre>
<pre id="audit-path">${proof.map((p) => p.toString('base64')).join('\n')}</pre>
<pre id="checkpoint">${escapeHtml(cp.note)}</pre>
<pre id="log-key">${escapeHtml(info.verifierKey)}</pre>
<p class="muted"><a href="${base}/proof">proof bundle (JSON)</a> · <code>menhu verify &lt;file&gt; --report ${escapeHtml(r.reportId)} --url ${escapeHtml(ctx.config.publicUrl + base)}</code></p>
</details></div>`;

  const history =
    m.versions.length > 1
      ? `<div class="card"><h2>${escapeHtml(T.versions)}</h2><dl>${m.versions
          .map((x) => row(`v${x.version}`, `<a href="${base}?v=${x.version}">${escapeHtml(fmtTime(x.createdAt))}</a> <code>${x.sha256.slice(0, 16)}…</code>`))
          .join('')}</dl></div>`
      : '';

  const data = {
    status: m.status,
    latest: latest.version,
    versions: m.versions.map((x) => ({ version: x.version, sha256: x.sha256 })),
    proof: entry ? { index: entry.index, treeSize: cp.size, entry: entry.data, leafHash: entry.leafHash, root: cp.root.toString('base64'), path: proof.map((p) => p.toString('base64')) } : null,
    t: { hashing: T.hashing, noMatch: T.noMatch, matchOk: T.matchOk, matchOld: T.matchOld, matchRecalled: T.matchRecalled, proofOk: T.proofOk, proofBad: T.proofBad },
  };
  const body = `${head}${details}${check}${proofCard}${history}
<script type="application/json" id="page-data">${safeJson(data)}</script>
<script>${REPORT_PAGE_SCRIPT}</script>`;
  return htmlPage(`${r.reportId} · ${T[m.status]}`, body, { css: CSS });
}

function askedVersion(req: FastifyRequest): number | undefined {
  const v = (req.query as Record<string, unknown> | undefined)?.v;
  const n = typeof v === 'string' && /^[1-9]\d{0,8}$/.test(v) ? Number(v) : undefined;
  return n;
}

export async function reportScanPage(ctx: Ctx, link: Link, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const m = await pageModel(ctx, link, askedVersion(req));
  const html = await renderPage(ctx, link, m);
  return reply.header('content-security-policy', REPORT_PAGE_CSP).header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').type('text/html; charset=utf-8').send(html);
}

async function reportLink(ctx: Ctx, code: string): Promise<Link | null> {
  const link = await resolveLink(ctx, code);
  return link && link.kind === 'report' ? link : null;
}

/** `/s/<code>/file` (the registered copy) and `/s/<code>/proof` (the proof bundle), and the page itself. */
export async function mountReportPages(app: FastifyInstance, ctx: Ctx): Promise<void> {
  registerScanPage('report', reportScanPage);
  app.get<{ Params: { code: string }; Querystring: { v?: string } }>('/s/:code/file', async (req, reply) => {
    const link = await reportLink(ctx, req.params.code);
    if (!link) return sendNotFoundPage(reply);
    const report = await getReport(ctx, link.tenantId, link.targetRef);
    if (!report) return sendNotFoundPage(reply, 'No file is registered under this report ID');
    const f = await reportFile(ctx, link.tenantId, link.targetRef, askedVersion(req)).catch(() => null);
    if (!f) return sendNotFoundPage(reply, 'No such version');
    return reply
      .type(f.version.contentType)
      .header('content-disposition', attachment(f.version.fileName ?? `${link.targetRef}-v${f.version.version}`))
      .header('cache-control', 'no-store')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "default-src 'none'; sandbox")
      .send(f.data);
  });
  app.get<{ Params: { code: string } }>('/s/:code/proof', async (req, reply) => {
    const link = await reportLink(ctx, req.params.code);
    if (!link || !(await getReport(ctx, link.tenantId, link.targetRef))) return reply.code(404).send({ error: 'not found' });
    return reply.header('cache-control', 'no-store').send(await buildBundle(ctx, link.tenantId, link.targetRef));
  });
}
