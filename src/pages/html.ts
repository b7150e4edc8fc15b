/** Small helpers for the public HTML pages: escaping and a mobile-first page shell. */

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and quoted attribute values. */
export const escapeHtml = (s: unknown): string => String(s ?? '').replace(/[&<>"']/g, (c) => ESC[c]);

/**
 * A complete HTML document. `body` must already be escaped. The CSP forbids scripts and allows
 * images from anywhere over http(s) (record images are external URLs), styles only inline.
 */
export function htmlPage(title: string, body: string, opts: { css?: string; lang?: string } = {}): string {
  return `<!doctype html>
<html lang="${escapeHtml(opts.lang ?? 'zh-CN')}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<style>
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;color:#1c1c1e;background:#f2f2f7}
main{max-width:640px;margin:0 auto;padding:16px}
h1{font-size:1.25rem;margin:8px 0 16px;overflow-wrap:anywhere}
${opts.css ?? ''}
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

export const PAGE_CSP = "default-src 'none'; img-src https: http: data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
